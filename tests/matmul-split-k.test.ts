/**
 * matmul v5 (split-K) against a float64 reference: TN (the weight gradients it serves), NN and NT on
 * odd 4-aligned shapes, accumulating into a C at an offset inside a larger buffer with a row stride
 * wider than N; the refusals of shapes it cannot split; and the model's weight gradients through it.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { checked, createTensor, readTensor, slice, submit } from "../kernels/runtime.ts";
import { planMatmulSplitK, splitKSlices } from "../kernels/ops/matmul.ts";
import { type GptConfig, initParameters } from "../kernels/config.ts";
import { GptModel, nextTokenTargets } from "../kernels/gpt.ts";
import { paramsFromFlat, refBackward, refForward } from "../kernels/reference.ts";
import { randoms } from "./helpers/kernel-check.ts";
import { relError } from "./helpers/tiny-gpt.ts";

interface Case {
  M: number;
  N: number;
  K: number;
  splits: number;
  transA?: boolean;
  transB?: boolean;
}

/** C = alpha · op(A) · op(B) + beta · C0 in float64, C0 and the result with row stride ldc. */
function reference(c: Case, A: Float32Array, B: Float32Array, C0: Float32Array, ldc: number, alpha: number) {
  const out = Float64Array.from(C0);
  for (let m = 0; m < c.M; m++) {
    for (let n = 0; n < c.N; n++) {
      let acc = 0;
      for (let k = 0; k < c.K; k++) {
        acc += (c.transA ? A[k * c.M + m] : A[m * c.K + k]) * (c.transB ? B[n * c.K + k] : B[k * c.N + n]);
      }
      out[m * ldc + n] = alpha * acc + C0[m * ldc + n];
    }
  }
  return out;
}

async function maxError(c: Case): Promise<number> {
  const gpu = await getGpu();
  const ldc = c.N + 4;
  const A = randoms(c.M * c.K, c.M + c.K, 0.5);
  const B = randoms(c.K * c.N, c.N + 3 * c.K, 0.5);
  const C0 = randoms(c.M * ldc, 17, 0.5);
  const whole = createTensor(gpu, 8 + C0.length, "C buffer");
  const C = slice(whole, 8, C0.length, "C");
  gpu.device.queue.writeBuffer(C.buffer, 4 * C.offset, C0);
  const dispatches = await checked(gpu, () =>
    planMatmulSplitK(gpu, {
      label: "split-K test",
      a: createTensor(gpu, A.length, "A", A),
      b: createTensor(gpu, B.length, "B", B),
      c: C,
      M: c.M,
      N: c.N,
      K: c.K,
      transA: c.transA,
      transB: c.transB,
      ldc,
      alpha: 0.5,
      beta: 1,
      splits: c.splits,
    }));
  await checked(gpu, () => submit(gpu, dispatches));
  const got = await readTensor(gpu, C);
  const want = reference(c, A, B, C0, ldc, 0.5);
  return want.reduce((worst, w, i) => Math.max(worst, Math.abs(got[i] - w)), 0);
}

Deno.test("matmul v5 (split-K): TN, NN and NT on odd shapes match float64, accumulating into C", async () => {
  const cases: Case[] = [
    { M: 12, N: 20, K: 72, splits: 3, transA: true },
    { M: 36, N: 8, K: 96, splits: 2, transA: true },
    { M: 4, N: 4, K: 16, splits: 4, transA: true },
    { M: 20, N: 12, K: 48, splits: 2 },
    { M: 20, N: 12, K: 48, splits: 3, transB: true },
  ];
  for (const c of cases) {
    const error = await maxError(c);
    assert.ok(error < 1e-5, `${JSON.stringify(c)}: max error ${error}`);
  }
});

Deno.test("matmul v5 (split-K): K that does not split into 4-aligned slices is refused, naming the fix", async () => {
  const gpu = await getGpu();
  const t = createTensor(gpu, 64 * 64, "t");
  const spec = { label: "dW", a: t, b: t, c: t, M: 8, N: 8, K: 40, transA: true };
  assert.throws(() => planMatmulSplitK(gpu, { ...spec, splits: 4 }), /multiple of 4 · splits \(16\)/);
  assert.throws(() => planMatmulSplitK(gpu, { ...spec, splits: 0 }), /positive integer/);
});

Deno.test("matmul v5 (split-K): weight gradients over many rows split; short or unaligned K and tall outputs do not", () => {
  assert.equal(splitKSlices(128, 512, 2048), 2);
  assert.equal(splitKSlices(512, 128, 2048), 1);
  assert.equal(splitKSlices(512, 512, 512), 1);
  assert.equal(splitKSlices(128, 128, 2052), 1);
});

Deno.test("gpt: weight gradients over 1024 rows go through split-K (unless splitK: false) and match float64", async () => {
  const gpu = await getGpu();
  // 16 rows × 64 positions: K = 1024 rows, long beside the width-16 weights, so the model splits them.
  const cfg: GptConfig = { vocabSize: 11, contextLength: 64, width: 16, layers: 1, heads: 2 };
  const B = 16, T = 64;
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + (i >> 5)) % cfg.vocabSize);
  const lengths = new Int32Array(B).fill(T);
  const flat = initParameters(cfg, 3);
  const params = paramsFromFlat(cfg, flat);
  const batch = { B, T, tokens, lengths, targets: nextTokenTargets(tokens, lengths, T) };
  const want = refBackward(cfg, params, batch, "lm", refForward(cfg, params, batch, "lm"));
  for (const splitK of [true, false]) {
    const model = new GptModel(gpu, cfg, flat, { batchSize: B, seqLen: T, splitK });
    model.setBatch({ tokens, lengths });
    model.setOptimizer({ lr: 0 });
    model.trainStep("lm");
    const sums = model.dispatches("lm").filter((d) => d.label.endsWith("(split-K sum)")).length;
    // c_attn, attn.c_proj and c_fc split; mlp.c_proj's dW is taller than wide and stays v4.
    assert.equal(sums, splitK ? 3 : 0, `splitK ${splitK}: split-K reductions planned`);
    const grads = paramsFromFlat(cfg, await model.readGrads());
    for (
      const name of [
        "h.0.attn.c_attn.weight",
        "h.0.attn.c_proj.weight",
        "h.0.mlp.c_fc.weight",
        "h.0.mlp.c_proj.weight",
      ]
    ) {
      const err = relError(grads.get(name)!, want.get(name)!);
      assert.ok(err <= 1e-3, `splitK ${splitK}: ${name} rel error ${err}`);
    }
    model.destroy();
  }
});
