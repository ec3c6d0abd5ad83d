/**
 * The safetensors format, written here: an 8-byte little-endian header length n, n bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then raw
 * little-endian tensor data; offsets are relative to the end of the header.
 *
 * Decoding: F32 and F64 as is, F16 and BF16 widened to Float32Array, I32 as Int32Array, I64 as
 * BigInt64Array. Encoding: F32, F64, I32, I64. Every malformed file fails with an error naming the
 * tensor and what is wrong (truncation, offsets out of range, overlapping, size ≠ shape × dtype).
 */

export type DType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32";

export type TensorData = Float64Array | Float32Array | Int32Array | BigInt64Array;

export interface Tensor {
  /** The dtype stored in the file (F16/BF16 data is decoded to Float32Array). */
  dtype: DType;
  shape: number[];
  data: TensorData;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata?: Record<string, string>;
}

const BYTES_PER_ELEMENT: Record<DType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Decodes IEEE half precision bits to a number. */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Copies `count` little-endian elements out of `bytes` (any alignment) into a typed array. */
function readElements(bytes: Uint8Array, dtype: DType, count: number): TensorData {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F64":
    case "F32":
    case "I32":
    case "I64": {
      // slice() gives a fresh, aligned buffer; on a big-endian host bytes would need swapping.
      if (HOST_IS_LITTLE_ENDIAN) {
        const copy = bytes.slice().buffer;
        if (dtype === "F64") return new Float64Array(copy);
        if (dtype === "F32") return new Float32Array(copy);
        if (dtype === "I32") return new Int32Array(copy);
        return new BigInt64Array(copy);
      }
      if (dtype === "F64") {
        return Float64Array.from({ length: count }, (_, i) => view.getFloat64(i * 8, true));
      }
      if (dtype === "F32") {
        return Float32Array.from({ length: count }, (_, i) => view.getFloat32(i * 4, true));
      }
      if (dtype === "I32") return Int32Array.from({ length: count }, (_, i) => view.getInt32(i * 4, true));
      return BigInt64Array.from({ length: count }, (_, i) => view.getBigInt64(i * 8, true));
    }
    case "F16": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case "BF16": {
      // bfloat16 is the top half of a float32.
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
  }
}

export function decodeSafetensors(bytes: Uint8Array, source = "safetensors file"): SafetensorsFile {
  if (bytes.length < 8) {
    throw new Error(`${source} is truncated: ${bytes.length} bytes, the 8-byte header length is incomplete`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    throw new Error(`${source}: header length ${headerLength} goes beyond the file (${bytes.length} bytes)`);
  }
  const headerEnd = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, headerEnd)));
  } catch (err) {
    throw new Error(`${source}: header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new Error(`${source}: header must be a JSON object`);
  }
  const data = bytes.subarray(headerEnd);
  let metadata: Record<string, string> | undefined;
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        throw new Error(`${source}: __metadata__ must be an object of strings`);
      }
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== "string") throw new Error(`${source}: __metadata__.${key} is not a string`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) {
      throw new Error(`${source}: tensor ${name}: entry is not an object`);
    }
    if (typeof e.dtype !== "string" || !(e.dtype in BYTES_PER_ELEMENT)) {
      throw new Error(`${source}: tensor ${name}: unsupported dtype ${JSON.stringify(e.dtype)}`);
    }
    const dtype = e.dtype as DType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`${source}: tensor ${name}: shape ${JSON.stringify(e.shape)} is not a list of sizes`);
    }
    const shape = e.shape as number[];
    const offsets = e.data_offsets;
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw new Error(
        `${source}: tensor ${name}: data_offsets ${JSON.stringify(offsets)} must be [begin, end]`,
      );
    }
    const [begin, end] = offsets as number[];
    if (end > data.length) {
      throw new Error(
        `${source}: tensor ${name}: data_offsets [${begin}, ${end}] are out of range ` +
          `(data section has ${data.length} bytes; file truncated?)`,
      );
    }
    const needed = elementCount(shape) * BYTES_PER_ELEMENT[dtype];
    if (end - begin !== needed) {
      throw new Error(
        `${source}: tensor ${name}: data_offsets span ${end - begin} bytes but shape ` +
          `[${shape.join(", ")}] of ${dtype} needs ${needed}`,
      );
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  const byBegin = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byBegin.length; i++) {
    const previous = byBegin[i - 1], current = byBegin[i];
    if (current.begin < previous.end) {
      throw new Error(
        `${source}: tensors ${previous.name} [${previous.begin}, ${previous.end}] and ` +
          `${current.name} [${current.begin}, ${current.end}] overlap`,
      );
    }
  }
  const tensors = new Map<string, Tensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    tensors.set(name, {
      dtype,
      shape,
      data: readElements(data.subarray(begin, end), dtype, elementCount(shape)),
    });
  }
  return { tensors, metadata };
}

export interface TensorToWrite {
  dtype: "F64" | "F32" | "I32" | "I64";
  shape: number[];
  data: TensorData;
}

const ARRAY_FOR_DTYPE = {
  F64: Float64Array,
  F32: Float32Array,
  I32: Int32Array,
  I64: BigInt64Array,
} as const;

/** Encodes tensors in insertion order; the header is padded with spaces to an 8-byte boundary. */
export function encodeSafetensors(
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of list) {
    if (name === "__metadata__") throw new Error("a tensor cannot be named __metadata__");
    if (!(t.data instanceof ARRAY_FOR_DTYPE[t.dtype])) {
      throw new Error(
        `tensor ${name}: data is ${t.data.constructor.name}, dtype ${t.dtype} needs ${
          ARRAY_FOR_DTYPE[t.dtype].name
        }`,
      );
    }
    if (t.data.length !== elementCount(t.shape)) {
      throw new Error(`tensor ${name}: ${t.data.length} elements do not fill shape [${t.shape.join(", ")}]`);
    }
    const size = t.data.length * BYTES_PER_ELEMENT[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  if (padded !== headerBytes.length) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(headerBytes);
    headerBytes = spaced;
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, t] of list) {
    const size = t.data.length * BYTES_PER_ELEMENT[t.dtype];
    if (HOST_IS_LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, size), at);
    } else {
      for (let i = 0; i < t.data.length; i++) {
        const p = at + i * BYTES_PER_ELEMENT[t.dtype];
        if (t.dtype === "F64") view.setFloat64(p, t.data[i] as number, true);
        else if (t.dtype === "F32") view.setFloat32(p, t.data[i] as number, true);
        else if (t.dtype === "I32") view.setInt32(p, t.data[i] as number, true);
        else view.setBigInt64(p, t.data[i] as bigint, true);
      }
    }
    at += size;
  }
  return out;
}
