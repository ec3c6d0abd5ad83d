/**
 * Causal attention with key padding (kernels/ops/attention.ts, attention-flash.ts): a float64 reference
 * checked against central finite differences, then every version (v1, v2 with probs; v3 flash with the
 * log-sum-exp) against it on odd shapes, including a length-0 row; reruns bit-identical.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { createTensor, readTensor } from "../kernels/runtime.ts";
import {
  planAttentionBackwardV1,
  planAttentionBackwardV2,
  planAttentionForwardV1,
  planAttentionForwardV2,
} from "../kernels/ops/attention.ts";
import { planAttentionBackwardV3, planAttentionForwardV3 } from "../kernels/ops/attention-flash.ts";
import { assertBitIdentical, assertClose, placed, randoms, run, toF64 } from "./helpers/kernel-check.ts";

interface AttnShape {
  B: number;
  T: number;
  C: number;
  H: number;
  lengths: number[];
}

function attentionRef(qkv: ArrayLike<number>, s: AttnShape) {
  const { B, T, C, H } = s, hs = C / H, scale = 1 / Math.sqrt(hs);
  const out = new Float64Array(B * T * C), probs = new Float64Array(B * H * T * T);
  // Log-sum-exp of each row's allowed scores (NaN for a row with no allowed key).
  const lse = new Float64Array(B * H * T).fill(NaN);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const keys = Math.min(i + 1, Math.max(0, Math.min(T, s.lengths[b])));
        const p = probs.subarray(((b * H + h) * T + i) * T, ((b * H + h) * T + i + 1) * T);
        let max = -Infinity;
        for (let j = 0; j < keys; j++) {
          let dot = 0;
          for (let d = 0; d < hs; d++) {
            dot += qkv[(b * T + i) * 3 * C + h * hs + d] * qkv[(b * T + j) * 3 * C + C + h * hs + d];
          }
          p[j] = dot * scale;
          max = Math.max(max, p[j]);
        }
        let sum = 0;
        for (let j = 0; j < keys; j++) sum += p[j] = Math.exp(p[j] - max);
        if (keys > 0) lse[(b * H + h) * T + i] = max + Math.log(sum);
        for (let j = 0; j < keys; j++) p[j] /= sum;
        for (let d = 0; d < hs; d++) {
          let acc = 0;
          for (let j = 0; j < keys; j++) acc += p[j] * qkv[(b * T + j) * 3 * C + 2 * C + h * hs + d];
          out[(b * T + i) * C + h * hs + d] = acc;
        }
      }
    }
  }
  return { out, probs, lse };
}

/** Gradient of Σ out·dout w.r.t. qkv by the chain rule through scores S and softmax P (float64). */
function attentionBackwardRef(qkv: ArrayLike<number>, dout: ArrayLike<number>, s: AttnShape): Float64Array {
  const { B, T, C, H } = s, hs = C / H, scale = 1 / Math.sqrt(hs);
  const { probs } = attentionRef(qkv, s);
  const dqkv = new Float64Array(B * T * 3 * C);
  const at = (b: number, t: number, part: number, h: number, d: number) =>
    (b * T + t) * 3 * C + part * C + h * hs + d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const p = probs.subarray(((b * H + h) * T + i) * T);
        const dP = new Float64Array(T);
        for (let j = 0; j < T; j++) {
          if (p[j] === 0) continue;
          for (let d = 0; d < hs; d++) {
            dP[j] += dout[(b * T + i) * C + h * hs + d] * qkv[at(b, j, 2, h, d)];
            dqkv[at(b, j, 2, h, d)] += p[j] * dout[(b * T + i) * C + h * hs + d];
          }
        }
        // Softmax Jacobian: dS_j = Σ_k dP_k P_k (δ_jk − P_j).
        for (let j = 0; j < T; j++) {
          let dS = 0;
          for (let k = 0; k < T; k++) dS += dP[k] * p[k] * ((j === k ? 1 : 0) - p[j]);
          for (let d = 0; d < hs; d++) {
            dqkv[at(b, i, 0, h, d)] += dS * scale * qkv[at(b, j, 1, h, d)];
            dqkv[at(b, j, 1, h, d)] += dS * scale * qkv[at(b, i, 0, h, d)];
          }
        }
      }
    }
  }
  return dqkv;
}

Deno.test("attention CPU reference backward matches central finite differences", () => {
  const shape: AttnShape = { B: 2, T: 3, C: 4, H: 2, lengths: [3, 2] };
  const qkv = toF64(randoms(2 * 3 * 12, 3, 1.5));
  const dout = toF64(randoms(2 * 3 * 4, 4));
  const grad = attentionBackwardRef(qkv, dout, shape);
  const loss = (x: Float64Array) => attentionRef(x, shape).out.reduce((acc, o, i) => acc + o * dout[i], 0);
  const fd = new Float64Array(qkv.length);
  for (let i = 0; i < qkv.length; i++) {
    const plus = qkv.slice(), minus = qkv.slice();
    plus[i] += 1e-6;
    minus[i] -= 1e-6;
    fd[i] = (loss(plus) - loss(minus)) / 2e-6;
  }
  assertClose(grad, fd, "attention reference vs finite differences", 1e-7, 1e-6);
});

const ATTENTION_SHAPES: AttnShape[] = [
  { B: 1, T: 1, C: 1, H: 1, lengths: [1] },
  { B: 3, T: 5, C: 8, H: 2, lengths: [5, 2, 0] },
  { B: 2, T: 7, C: 9, H: 3, lengths: [7, 4] },
  { B: 2, T: 33, C: 6, H: 1, lengths: [33, 17] },
  { B: 1, T: 13, C: 130, H: 5, lengths: [9] },
];

for (const version of ["v1", "v2"] as const) {
  Deno.test(`attention ${version} forward/backward with padding (incl. a length-0 row) on odd shapes; deterministic`, async () => {
    const gpu = await getGpu();
    const forward = version === "v1"
      ? (s: Parameters<typeof planAttentionForwardV1>[1]) => [planAttentionForwardV1(gpu, s)]
      : (s: Parameters<typeof planAttentionForwardV1>[1]) => planAttentionForwardV2(gpu, s);
    const backward = version === "v1" ? planAttentionBackwardV1 : planAttentionBackwardV2;
    for (const shape of ATTENTION_SHAPES) {
      const { B, T, C, H } = shape, N = B * T;
      const qkv = randoms(N * 3 * C, N + C, 1.2);
      const dout = randoms(N * C, 2 * N + C);
      const qkvT = placed(gpu, qkv, "qkv");
      const lengths = placed(gpu, Int32Array.from(shape.lengths), "lengths");
      const out = placed(gpu, randoms(N * C, 1), "out");
      const probs = placed(gpu, randoms(B * H * T * T, 2), "probs");
      await run(gpu, forward({ qkv: qkvT, lengths, out, probs, B, T, C, H, label: "attn" }));
      const ref = attentionRef(qkv, shape);
      const tag = `B=${B} T=${T} C=${C} H=${H}`;
      assertClose(await readTensor(gpu, out), ref.out, `attention forward out ${tag}`, 1e-5, 1e-4);
      // Masked probabilities must be exactly 0 (absolute tolerance 0 where the reference is 0).
      const gotProbs = await readTensor(gpu, probs);
      ref.probs.forEach((p, i) => {
        if (p === 0) assert.equal(gotProbs[i], 0, `attention probs [${i}] must be exactly 0 (masked) ${tag}`);
      });
      assertClose(gotProbs, ref.probs, `attention forward probs ${tag}`, 1e-6, 1e-4);

      const doutT = placed(gpu, dout, "dout");
      const dqkv = placed(gpu, randoms(N * 3 * C, 5), "dqkv"); // garbage: must be overwritten
      const back = backward(gpu, {
        dout: doutT,
        qkv: qkvT,
        probs,
        lengths,
        dqkv,
        B,
        T,
        C,
        H,
        label: "attn bw",
      });
      await run(gpu, back);
      const first = await readTensor(gpu, dqkv);
      assertClose(
        first,
        attentionBackwardRef(qkv, dout, shape),
        `attention backward dqkv ${tag}`,
        1e-5,
        1e-4,
      );
      await run(gpu, back);
      assertBitIdentical(first, await readTensor(gpu, dqkv), `attention backward ${tag}`);
    }
  });
}

// v3 (flash) saves lse instead of probs: checked against the reference's log-sum-exp; head sizes up
// to 128 (the largest it supports), several tilings incl. partial last blocks, and both the scalar
// path (tensors at odd offsets, pad 37) and the vec4 path (offsets, C and hs multiples of 4, pad 40).
interface FlashCase {
  shape: AttnShape;
  tiling?: { lanes?: number; rowsPerLane?: number };
  pad?: number;
}
const FLASH_CASES: FlashCase[] = [
  ...ATTENTION_SHAPES.slice(0, 4).map((shape) => ({ shape })),
  { shape: ATTENTION_SHAPES[4], tiling: { rowsPerLane: 1 } }, // hs 26 (one row per lane keeps compiles short)
  { shape: { B: 2, T: 37, C: 128, H: 2, lengths: [37, 20] }, pad: 40 },
  { shape: { B: 3, T: 21, C: 24, H: 3, lengths: [21, 0, 9] }, pad: 40 },
  { shape: { B: 3, T: 21, C: 24, H: 3, lengths: [21, 0, 9] }, pad: 40, tiling: { lanes: 4, rowsPerLane: 3 } },
  { shape: { B: 2, T: 11, C: 256, H: 2, lengths: [0, 10] }, pad: 40, tiling: { lanes: 4 } },
  { shape: { B: 3, T: 9, C: 8, H: 2, lengths: [9, 3, 1] }, tiling: { lanes: 1, rowsPerLane: 1 } },
  { shape: { B: 2, T: 70, C: 12, H: 3, lengths: [70, 65] }, tiling: { lanes: 64, rowsPerLane: 2 } },
];

Deno.test("attention v3 (flash) forward out and lse, backward dqkv with padding (incl. a length-0 row) on odd shapes; deterministic", async () => {
  const gpu = await getGpu();
  for (const { shape, tiling, pad = 37 } of FLASH_CASES) {
    const { B, T, C, H } = shape, N = B * T;
    const qkv = randoms(N * 3 * C, N + C, 1.2);
    const dout = randoms(N * C, 2 * N + C);
    const qkvT = placed(gpu, qkv, "qkv", pad);
    const lengths = placed(gpu, Int32Array.from(shape.lengths), "lengths");
    const out = placed(gpu, randoms(N * C, 1), "out", pad); // garbage: must be overwritten
    const lse = placed(gpu, randoms(B * H * T, 2), "lse");
    const common = { lengths, B, T, C, H, ...tiling };
    const forward = planAttentionForwardV3(gpu, { ...common, qkv: qkvT, out, lse, label: "attn v3" });
    await run(gpu, forward);
    const ref = attentionRef(qkv, shape);
    const tag = `B=${B} T=${T} C=${C} H=${H} pad ${pad} tiling ${JSON.stringify(tiling ?? "default")}`;
    const gotOut = await readTensor(gpu, out);
    assertClose(gotOut, ref.out, `attention v3 forward out ${tag}`, 1e-5, 1e-4);
    const gotLse = await readTensor(gpu, lse);
    ref.lse.forEach((want, r) => {
      // A row with no allowed key saves FLT_MAX, which makes every recomputed probability 0.
      if (Number.isNaN(want)) {
        assert.equal(gotLse[r], 3.4028234663852886e38, `lse [${r}] of an empty row ${tag}`);
      }
    });
    assertClose(
      gotLse.filter((_, r) => !Number.isNaN(ref.lse[r])),
      ref.lse.filter((v) => !Number.isNaN(v)),
      `attention v3 lse ${tag}`,
      1e-5,
      1e-5,
    );
    await run(gpu, forward);
    assertBitIdentical(gotOut, await readTensor(gpu, out), `attention v3 forward ${tag}`);

    const doutT = placed(gpu, dout, "dout", pad);
    const dqkv = placed(gpu, randoms(N * 3 * C, 5), "dqkv"); // garbage: must be overwritten
    const back = planAttentionBackwardV3(gpu, {
      ...common,
      dout: doutT,
      qkv: qkvT,
      out,
      lse,
      dqkv,
      label: "attn v3 bw",
    });
    await run(gpu, back);
    const first = await readTensor(gpu, dqkv);
    assertClose(
      first,
      attentionBackwardRef(qkv, dout, shape),
      `attention v3 backward dqkv ${tag}`,
      1e-5,
      1e-4,
    );
    await run(gpu, back);
    assertBitIdentical(first, await readTensor(gpu, dqkv), `attention v3 backward ${tag}`);
  }
});

Deno.test("attention v3 rejects a head size above 128 and a bad tiling by name", async () => {
  const gpu = await getGpu();
  const t = (n: number) => createTensor(gpu, n, "t");
  const spec = { qkv: t(3 * 258), lengths: t(1), out: t(258), lse: t(1), B: 1, T: 1, C: 258, H: 1 };
  assert.throws(() => planAttentionForwardV3(gpu, { ...spec, label: "wide" }), /wide: head size 258/);
  assert.throws(
    () => planAttentionForwardV3(gpu, { ...spec, C: 8, label: "odd", lanes: 12 }),
    /odd: lanes must be a power of two/,
  );
});

// v4 is v3 reading qkv (and, in the backward, dout) from textures: the same sums in the same order, so
// v3's bits, and float64 like v3. Rows 256 bytes apart (C = 64: qkv 768 bytes, dout 256) are packed by a
// copy, others (C = 24: 288 and 96 bytes) by the pack launch; the counts are checked.
const TEXTURE_CASES: { shape: AttnShape; copies: [number, number]; tiling?: FlashCase["tiling"] }[] = [
  { shape: { B: 3, T: 21, C: 24, H: 3, lengths: [21, 0, 9] }, copies: [0, 0] },
  {
    shape: { B: 2, T: 19, C: 64, H: 4, lengths: [19, 7] },
    copies: [1, 2],
    tiling: { lanes: 4, rowsPerLane: 3 },
  },
];

Deno.test("attention v4 (flash, texture operands) gives v3's bits and float64's values, packed or copied", async () => {
  const gpu = await getGpu();
  for (const { shape, copies, tiling } of TEXTURE_CASES) {
    const { B, T, C, H } = shape, N = B * T;
    const tag = `B=${B} T=${T} C=${C} H=${H}`;
    const qkv = randoms(N * 3 * C, N + C, 1.2);
    const dout = randoms(N * C, 2 * N + C);
    const lengths = placed(gpu, Int32Array.from(shape.lengths), "lengths");
    const results = [];
    for (const textures of [false, true]) {
      const qkvT = placed(gpu, qkv, "qkv", 40);
      const doutT = placed(gpu, dout, "dout", 40);
      const out = placed(gpu, randoms(N * C, 1), "out", 40);
      const lse = placed(gpu, randoms(B * H * T, 2), "lse");
      const dqkv = placed(gpu, randoms(N * 3 * C, 5), "dqkv");
      const common = { lengths, B, T, C, H, qkv: qkvT, out, lse, textures, ...tiling };
      const forward = planAttentionForwardV3(gpu, { ...common, label: `attn ${textures}` });
      const back = planAttentionBackwardV3(gpu, {
        ...common,
        dout: doutT,
        dqkv,
        label: `attn bw ${textures}`,
      });
      if (textures) {
        const counted = [forward, back].map((steps) => steps.filter((d) => "copy" in d).length);
        assert.deepEqual(counted, copies, `copies in the forward and backward ${tag}`);
        assert.equal(forward.length, 2, `v4 forward: a pack and the launch ${tag}`);
        assert.equal(back.length, 4, `v4 backward: two packs and two launches ${tag}`);
      }
      await run(gpu, forward);
      await run(gpu, back);
      results.push([await readTensor(gpu, out), await readTensor(gpu, lse), await readTensor(gpu, dqkv)]);
    }
    const [v3, v4] = results;
    const ref = attentionRef(qkv, shape);
    assertClose(v4[0], ref.out, `attention v4 forward out ${tag}`, 1e-5, 1e-4);
    assertClose(
      v4[2],
      attentionBackwardRef(qkv, dout, shape),
      `attention v4 backward dqkv ${tag}`,
      1e-5,
      1e-4,
    );
    ["out", "lse", "dqkv"].forEach((name, i) =>
      assertBitIdentical(v4[i], v3[i], `v4 ${name} against v3 ${tag}`)
    );
  }
});

Deno.test("attention v4 refuses a head size not divisible by 4 and rows off 4, naming v3", async () => {
  const gpu = await getGpu();
  const t = (n: number, label = "t", pad = 0) => placed(gpu, new Float32Array(n), label, pad);
  const spec = { lengths: t(1), lse: t(2), B: 1, T: 1, H: 2, textures: true };
  assert.throws(
    () => planAttentionForwardV3(gpu, { ...spec, qkv: t(3 * 12), out: t(12), C: 12, label: "odd head" }),
    /odd head: attention v4 \(texture operands\) needs C and the head size divisible by 4 \(C 12, head 6\); use v3/,
  );
  assert.throws(
    () =>
      planAttentionForwardV3(gpu, { ...spec, qkv: t(3 * 16, "qkv", 37), out: t(16), C: 16, label: "offset" }),
    /offset \(pack qkv\): qkv as a texture needs 4-aligned operand rows \(offset 37, stride 48\)/,
  );
});
