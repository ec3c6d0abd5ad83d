/**
 * The safetensors codec: files built byte by byte here, a round trip, and each malformed-file error.
 */
import assert from "node:assert/strict";
import { decodeSafetensors, encodeSafetensors } from "../kernels/safetensors.ts";

/** Builds a file from a header object and raw data bytes, exactly as the format says. */
function buildFile(header: unknown, data: number[], headerLengthOverride?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLengthOverride ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("decodes a hand-built file with every supported dtype", () => {
  const file = buildFile(
    {
      __metadata__: { format: "pt" },
      f32: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      f16: { dtype: "F16", shape: [2, 2], data_offsets: [8, 16] },
      bf16: { dtype: "BF16", shape: [2], data_offsets: [16, 20] },
      i32: { dtype: "I32", shape: [1], data_offsets: [20, 24] },
      i64: { dtype: "I64", shape: [1], data_offsets: [24, 32] },
      f64: { dtype: "F64", shape: [], data_offsets: [32, 40] },
      empty: { dtype: "F32", shape: [0, 3], data_offsets: [40, 40] },
    },
    [
      ...[0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc1], // 1.0, -10.0
      ...[0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x01, 0x00], // 1, -2, 0.5, 2^-24 (subnormal)
      ...[0x80, 0x3f, 0x49, 0x40], // bf16 1.0, 3.140625
      ...[0xfe, 0xff, 0xff, 0xff], // -2
      ...[0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00], // 2^32
      ...[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f], // 1.5
    ],
  );
  const { tensors, metadata } = decodeSafetensors(file);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual(Array.from(tensors.get("f32")!.data as Float32Array), [1, -10]);
  assert.deepEqual(tensors.get("f16")!.shape, [2, 2]);
  assert.deepEqual(Array.from(tensors.get("f16")!.data as Float32Array), [1, -2, 0.5, 2 ** -24]);
  assert.equal(tensors.get("f16")!.dtype, "F16");
  assert.deepEqual(Array.from(tensors.get("bf16")!.data as Float32Array), [1, 3.140625]);
  assert.deepEqual(Array.from(tensors.get("i32")!.data as Int32Array), [-2]);
  assert.deepEqual(Array.from(tensors.get("i64")!.data as BigInt64Array), [2n ** 32n]);
  assert.deepEqual(Array.from(tensors.get("f64")!.data as Float64Array), [1.5]);
  assert.equal(tensors.get("empty")!.data.length, 0);
});

Deno.test("F16 infinities and NaN decode", () => {
  const file = buildFile({ h: { dtype: "F16", shape: [3], data_offsets: [0, 6] } }, [
    0x00,
    0x7c,
    0x00,
    0xfc,
    0x01,
    0x7c,
  ]);
  const values = Array.from(decodeSafetensors(file).tensors.get("h")!.data as Float32Array);
  assert.deepEqual(values.slice(0, 2), [Infinity, -Infinity]);
  assert.ok(Number.isNaN(values[2]));
});

Deno.test("round trip keeps names, order, shapes, values and metadata", () => {
  const tensors = new Map([
    ["b.weight", { dtype: "F32" as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 0.1]) }],
    ["a", { dtype: "F64" as const, shape: [3], data: Float64Array.from([Math.PI, -0, 1e-300]) }],
    ["ids", { dtype: "I32" as const, shape: [2], data: Int32Array.from([-1, 7]) }],
    ["big", { dtype: "I64" as const, shape: [1], data: BigInt64Array.from([-(2n ** 40n)]) }],
  ]);
  const bytes = encodeSafetensors(tensors, { note: "x" });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLength % 8, 0, "header padded to 8 bytes");
  const decoded = decodeSafetensors(bytes);
  assert.deepEqual([...decoded.tensors.keys()], ["b.weight", "a", "ids", "big"]);
  for (const [name, t] of tensors) {
    const d = decoded.tensors.get(name)!;
    assert.equal(d.dtype, t.dtype);
    assert.deepEqual(d.shape, t.shape);
    assert.deepEqual(d.data, t.data, name);
  }
  assert.deepEqual(decoded.metadata, { note: "x" });
  // The F32 bytes are little-endian at the declared offsets.
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  assert.deepEqual(header["b.weight"].data_offsets, [0, 24]);
  assert.deepEqual(Array.from(bytes.subarray(8 + headerLength, 8 + headerLength + 4)), [0, 0, 0x80, 0x3f]);
});

Deno.test("encoding refuses mismatched data", () => {
  assert.throws(
    () => encodeSafetensors({ w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }),
    /tensor w: 3 elements do not fill shape \[2, 2\]/,
  );
  assert.throws(
    () => encodeSafetensors({ w: { dtype: "F64", shape: [1], data: new Float32Array(1) } }),
    /tensor w: data is Float32Array/,
  );
});

Deno.test("malformed files give errors that say what and which tensor", () => {
  assert.throws(() => decodeSafetensors(new Uint8Array(5)), /truncated: 5 bytes/);
  assert.throws(() => decodeSafetensors(buildFile({}, [], 1000)), /header length 1000 goes beyond the file/);
  assert.throws(() => decodeSafetensors(buildFile({}, []).fill(0x41, 8)), /not valid JSON/);
  assert.throws(
    () =>
      decodeSafetensors(
        buildFile({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, [0, 0, 0, 0, 0, 0, 0, 0]),
      ),
    /tensor w: data_offsets \[0, 16\] are out of range \(data section has 8 bytes/,
  );
  assert.throws(
    () =>
      decodeSafetensors(
        buildFile({ w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 12] } }, new Array(16).fill(0)),
      ),
    /tensor w: data_offsets span 12 bytes but shape \[2, 2\] of F32 needs 16/,
  );
  assert.throws(
    () =>
      decodeSafetensors(
        buildFile(
          {
            a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
            b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
          },
          new Array(12).fill(0),
        ),
      ),
    /tensors a \[0, 8\] and b \[4, 12\] overlap/,
  );
  assert.throws(
    () => decodeSafetensors(buildFile({ w: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, [0])),
    /tensor w: unsupported dtype "Q4"/,
  );
  assert.throws(
    () =>
      decodeSafetensors(buildFile({ w: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, [0, 0, 0, 0])),
    /tensor w: data_offsets \[4,0\] must be \[begin, end\]/,
  );
  assert.throws(
    () =>
      decodeSafetensors(buildFile({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, [0, 0, 0, 0])),
    /tensor w: shape \[-1\] is not a list of sizes/,
  );
  // A real file cut short: the last tensor's data is gone.
  const whole = encodeSafetensors({ a: { dtype: "F32", shape: [4], data: new Float32Array(4) } });
  assert.throws(
    () => decodeSafetensors(whole.subarray(0, whole.length - 3), "model.safetensors"),
    /model.safetensors: tensor a: .* out of range/,
  );
});
