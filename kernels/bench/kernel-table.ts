/**
 * The kernel table: every version of every kernel family side by side at realistic shapes (matmul
 * S×S×S, and its weight gradients at the model's shape; the model's other kernels at the width-192,
 * batch 32 × 64 training shape), time per call and GFLOP/s or GB/s, after the adapter's fma ceiling
 * (ceiling.ts) that the GFLOP/s figures are read against. Versions are named by
 * versionLabel (kernels/versions.ts), e.g. "v4 (tiled 16×16)".
 */
import type { Gpu } from "../device.ts";
import { createTensor, type Dispatch, type Tensor } from "../runtime.ts";
import { mulberry32 } from "../random.ts";
import { DEFAULT_ADAMW, type GptConfig, initParameters, paramLayout } from "../config.ts";
import { STATS_LENGTH } from "../stats.ts";
import { versionLabel } from "../versions.ts";
import {
  type MatmulVersion,
  planMatmul,
  planMatmulSplitK,
  splitKSlices,
  type TiledBlock,
} from "../ops/matmul.ts";
import { planMatmulTextures } from "../ops/matmul-texture.ts";
import {
  type AttentionVersion,
  planAttentionBackward,
  planAttentionForward,
  savesLogSumExp,
} from "../ops/attention.ts";
import { type LayernormVersion, planLayernormForward } from "../ops/layernorm.ts";
import { planGeluForward } from "../ops/elementwise.ts";
import { type CrossEntropyVersion, planLmCrossEntropy } from "../ops/crossentropy.ts";
import { gradNormPartials, planAdamW, planGradNorm } from "../ops/optimizer.ts";
import { type BiasGradVersion, planBiasGrad } from "../ops/bias-grad.ts";
import { measureCeiling } from "./ceiling.ts";
import type { KernelResult } from "./report.ts";
import type { Timer } from "./timer.ts";

/** Uniform floats in [−0.5, 0.5), seeded: the benchmarks' operands. */
export function randomFloats(n: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => next() - 0.5);
}

/**
 * The square matmul sizes the table and the peer comparison use. On a hardware adapter the full table adds
 * 2048³ and 4096³, the sizes issue 15's GPU target compares with cuBLAS (scripts/gpu/check.sh); llvmpipe
 * would spend minutes on them.
 */
export function matmulSizes(quick: boolean, software = true): number[] {
  if (quick) return [256, 512];
  return software ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096];
}

/** Median time of one dispatch after a compiling warm-up, with its rates, appended to `results`. */
async function record(
  results: KernelResult[],
  timer: Timer,
  row: { kernel: string; version: string; shape: string },
  d: Dispatch,
  reps: number,
): Promise<KernelResult> {
  await timer.wall([d], 1); // warm-up: compiles the pipeline
  const ms = await timer.median(d, reps);
  const r: KernelResult = { ...row, ms, timer: timer.kind };
  if (d.flops) r.gflops = d.flops / ms / 1e6;
  if (d.bytes) r.gbps = d.bytes / ms / 1e6;
  results.push(r);
  return r;
}

/** Median over `reps` of a multi-dispatch kernel's summed per-dispatch time, after a compiling warm-up. */
async function medianOfList(timer: Timer, list: readonly Dispatch[], reps: number): Promise<number> {
  await timer.wall(list, 1);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push((await timer.each(list)).reduce((s, x) => s + x, 0));
  return times.sort((x, y) => x - y)[Math.floor(reps / 2)];
}

/**
 * record for a list of steps (a kernel's packs and its launch): the median of five timings of the whole
 * list; GFLOP/s and GB/s from its launch (the last step), so they count the packs' time but not their bytes.
 */
async function recordList(
  results: KernelResult[],
  timer: Timer,
  row: { kernel: string; version: string; shape: string },
  steps: readonly Dispatch[],
): Promise<void> {
  const ms = await medianOfList(timer, steps, 5);
  const { flops, bytes } = steps[steps.length - 1];
  results.push({
    ...row,
    ms,
    timer: timer.kind,
    ...(flops ? { gflops: flops / ms / 1e6 } : {}),
    ...(bytes ? { gbps: bytes / ms / 1e6 } : {}),
  });
}

/** Summed per-dispatch time of a multi-dispatch kernel after a compiling warm-up. */
async function timeList(timer: Timer, list: readonly Dispatch[]): Promise<number> {
  await timer.wall(list, 1);
  return (await timer.each(list)).reduce((s, x) => s + x, 0);
}

async function benchMatmul(gpu: Gpu, timer: Timer, quick: boolean, results: KernelResult[]): Promise<void> {
  for (const S of matmulSizes(quick, gpu.isSoftware)) {
    const a = createTensor(gpu, S * S, "a", randomFloats(S * S, 1));
    const b = createTensor(gpu, S * S, "b", randomFloats(S * S, 2));
    const c = createTensor(gpu, S * S, "c");
    const versions: [MatmulVersion, string?, TiledBlock?][] = [
      ...(S <= 512 ? [["v1"] as [MatmulVersion]] : []),
      ["v2"],
      ["v3"],
      ["v4", "16×16", [16, 16]],
      ["v4", "24×24", [24, 24]],
      // The block the model uses for the layout: the autotune's choice (or the default without it).
      ["v4", "auto"],
    ];
    for (const [version, detail, block] of versions) {
      const layouts = [["NN", false, false], ["NT", false, true], ["TN", true, false]] as const;
      for (const [layout, transA, transB] of layouts) {
        const d = planMatmul(gpu, {
          label: "matmul",
          a,
          b,
          c,
          M: S,
          N: S,
          K: S,
          transA,
          transB,
          version,
          block,
        });
        const row = { kernel: "matmul " + layout, version: versionLabel("matmul", version, detail) };
        await record(results, timer, { ...row, shape: `${S}×${S}×${S}` }, d, version === "v1" ? 2 : 5);
      }
    }
    // v6: v4's automatic block reading textures, its time the packing of both operands plus the product.
    for (
      const [layout, transA, transB] of [["NN", false, false], ["NT", false, true], [
        "TN",
        true,
        false,
      ]] as const
    ) {
      const list = planMatmulTextures(gpu, { label: "matmul", a, b, c, M: S, N: S, K: S, transA, transB });
      const ms = await medianOfList(timer, list, 5);
      results.push({
        kernel: "matmul " + layout,
        version: versionLabel("matmul", "v6", "auto"),
        shape: `${S}×${S}×${S}`,
        ms,
        timer: timer.kind,
        gflops: (2 * S ** 3) / ms / 1e6,
      });
    }
    for (const t of [a, b, c]) t.buffer.destroy();
  }
}

/** The training shape of the width-192 model, batch 32 × 64, vocabulary 256. */
const B = 32, T = 64, C = 192, H = 6, V = 256;
const N = B * T;

async function benchAttention(gpu: Gpu, timer: Timer, results: KernelResult[]): Promise<void> {
  const spec = {
    qkv: createTensor(gpu, N * 3 * C, "qkv", randomFloats(N * 3 * C, 3)),
    lengths: createTensor(gpu, B, "lengths", new Int32Array(B).fill(T)),
    out: createTensor(gpu, N * C, "out"),
    B,
    T,
    C,
    H,
    label: "attention",
  };
  const probs = createTensor(gpu, B * H * T * T, "probs");
  const lse = createTensor(gpu, B * H * T, "lse");
  const dout = createTensor(gpu, N * C, "dout", randomFloats(N * C, 4));
  const dqkv = createTensor(gpu, N * 3 * C, "dqkv");
  const shape = `B${B} T${T} C${C} H${H}`;
  const flops = 2 * 2 * B * H * T * T * (C / H); // QKᵀ and PV, full (unmasked) count
  for (const version of ["v1", "v2", "v3", "v4"] as AttentionVersion[]) {
    // v3 and v4 (flash) save lse instead of probs; the backward reads the out written by its forward.
    // v4's times include its packs of qkv (and dout).
    const full = { ...spec, version, saved: savesLogSumExp(version) ? lse : probs };
    const passes = [
      ["attention forward", planAttentionForward(gpu, full), flops],
      ["attention backward", planAttentionBackward(gpu, { ...full, dout, dqkv }), 2 * flops],
    ] as const;
    for (const [kernel, list, passFlops] of passes) {
      const ms = await timeList(timer, list);
      const label = versionLabel("attention", version);
      results.push({ kernel, version: label, shape, ms, gflops: passFlops / ms / 1e6, timer: timer.kind });
    }
  }
}

/** LayerNorm forward, GELU forward and the LM cross-entropy: the row and elementwise kernels. */
async function benchRowKernels(gpu: Gpu, timer: Timer, results: KernelResult[]): Promise<void> {
  const cfg: GptConfig = { vocabSize: V, contextLength: T, width: C, layers: 1, heads: H };
  const params = createTensor(gpu, paramLayout(cfg).total, "params", initParameters(cfg, 1));
  const ln = paramLayout(cfg).byName.get("h.0.ln_1.weight")!;
  const x = createTensor(gpu, N * C, "x", randomFloats(N * C, 5));
  const y = createTensor(gpu, N * C, "y");
  const mean = createTensor(gpu, N, "mean");
  const rstd = createTensor(gpu, N, "rstd");
  for (const version of ["v1", "v2", "v3", "v4"] as LayernormVersion[]) {
    const d = planLayernormForward(gpu, {
      x,
      params,
      gammaOffset: ln.offset,
      betaOffset: ln.offset + 64,
      y,
      mean,
      rstd,
      N,
      C,
      label: "ln",
      version,
    });
    const row = {
      kernel: "layernorm forward",
      version: versionLabel("layernorm", version),
      shape: `N${N} C${C}`,
    };
    await recordList(results, timer, row, d);
  }
  const wide = createTensor(gpu, N * 4 * C, "wide", randomFloats(N * 4 * C, 6));
  const wide2 = createTensor(gpu, N * 4 * C, "wide2");
  const gelu = planGeluForward(gpu, wide, wide2, N * 4 * C, "gelu");
  await record(
    results,
    timer,
    { kernel: "gelu forward", version: versionLabel("gelu", "v1"), shape: `${N * 4 * C}` },
    gelu,
    5,
  );
  const logits = createTensor(gpu, N * V, "logits", randomFloats(N * V, 7));
  const targets = createTensor(gpu, N, "targets", Int32Array.from({ length: N }, (_, i) => i % V));
  const rowLoss = createTensor(gpu, N, "row loss");
  const stats = createTensor(gpu, STATS_LENGTH, "stats");
  for (const version of ["v1", "v2", "v3"] as CrossEntropyVersion[]) {
    const ce = planLmCrossEntropy(gpu, { logits, targets, rowLoss, stats, rows: N, V, label: "ce", version });
    results.push({
      kernel: "lm cross-entropy fwd+bwd",
      version: versionLabel("crossEntropy", version),
      shape: `N${N} V${V}`,
      ms: await timeList(timer, ce),
      timer: timer.kind,
    });
  }
}

/**
 * The optimizer over two million parameters: the gradient norm's partial sums and AdamW under the
 * default settings (DEFAULT_ADAMW), v1 beside v2 (vec4) each.
 */
async function benchOptimizer(gpu: Gpu, timer: Timer, results: KernelResult[]): Promise<void> {
  const P = 2_000_000;
  const [params, grads, m, v] = [1, 2, 3, 4].map((i) => createTensor(gpu, P, `adam${i}`, randomFloats(P, i)));
  const stats: Tensor = createTensor(gpu, STATS_LENGTH, "stats");
  const partials = createTensor(gpu, gradNormPartials(P), "partials");
  for (const version of ["v1", "v2"] as const) {
    const [sums] = planGradNorm(gpu, { grads, n: P, stats, partials, label: "grad norm", version });
    const row = {
      kernel: "gradient norm partials",
      version: versionLabel("gradNorm", version),
      shape: `${P} params`,
    };
    await record(results, timer, row, sums, 5);
  }
  for (const version of ["v1", "v2"] as const) {
    const [adam] = planAdamW(
      gpu,
      { params, grads, m, v, n: P, decayEnd: P / 2, stats, label: "adamw", version },
      DEFAULT_ADAMW,
    );
    const row = { kernel: "adamw", version: versionLabel("adamw", version), shape: `${P} params` };
    const result = await record(results, timer, row, adam, 5);
    result.gbps = (P * 4 * 7) / result.ms / 1e6;
  }
  for (const t of [params, grads, m, v, stats, partials]) t.buffer.destroy();
}

/**
 * The bias gradient of the MLP's first layer (column sums of N × 4C): v1 (matmul), v2 (vec4), v3 (v2 from a
 * texture, its pack included), each the median of five timings.
 */
async function benchBiasGradient(gpu: Gpu, timer: Timer, results: KernelResult[]): Promise<void> {
  const width = 4 * C;
  const dy = createTensor(gpu, N * width, "dy", randomFloats(N * width, 8));
  const db = createTensor(gpu, width, "db");
  const ones = createTensor(gpu, N, "ones", new Float32Array(N).fill(1));
  for (const version of ["v1", "v2", "v3"] as BiasGradVersion[]) {
    const steps = planBiasGrad(gpu, { label: "db", dy, db, rows: N, width, ones, version });
    const row = {
      kernel: "bias gradient",
      version: versionLabel("biasGrad", version),
      shape: `N${N} C${width}`,
    };
    await recordList(results, timer, row, steps);
  }
  for (const t of [dy, db, ones]) t.buffer.destroy();
}

/**
 * The weight gradients dW += xᵀ · dy of the width-192 training shape (K = the batch's rows), v4 beside
 * v5 (split-K), taking turns over five rounds (median each), v5's time summed over its two dispatches.
 */
async function benchWeightGradients(gpu: Gpu, timer: Timer, results: KernelResult[]): Promise<void> {
  for (const [name, M, width] of [["c_attn", C, 3 * C], ["c_fc", C, 4 * C], ["c_proj", 4 * C, C]] as const) {
    const x = createTensor(gpu, N * M, "x", randomFloats(N * M, 5));
    const dy = createTensor(gpu, N * width, "dy", randomFloats(N * width, 6));
    const dW = createTensor(gpu, M * width, "dW");
    const spec = { label: "dW", a: x, b: dy, c: dW, M, N: width, K: N, transA: true, beta: 1 };
    const splits = Math.max(2, splitKSlices(M, width, N));
    const plans = [
      { version: versionLabel("matmul", "v4"), list: [planMatmul(gpu, spec)] },
      {
        version: versionLabel("matmul", "v5", `×${splits}`),
        list: planMatmulSplitK(gpu, { ...spec, splits }),
      },
      { version: versionLabel("matmul", "v6"), list: planMatmulTextures(gpu, spec) },
    ];
    const times: number[][] = plans.map(() => []);
    for (const p of plans) await timer.wall(p.list, 1); // compiles
    for (let round = 0; round < 5; round++) {
      for (const [i, p] of plans.entries()) {
        times[i].push((await timer.each(p.list)).reduce((a, b) => a + b, 0));
      }
    }
    for (const [i, p] of plans.entries()) {
      const ms = times[i].sort((a, b) => a - b)[2];
      results.push({
        kernel: `matmul TN dW ${name}`,
        version: p.version,
        shape: `${M}×${width}×${N}`,
        ms,
        timer: timer.kind,
        gflops: (2 * M * width * N) / ms / 1e6,
      });
    }
    for (const t of [x, dy, dW]) t.buffer.destroy();
  }
}

/**
 * The whole table: the fma ceiling, matmul (its weight gradients, the bias gradient), attention, the row
 * kernels, the gradient norm and AdamW.
 */
export async function benchKernels(gpu: Gpu, timer: Timer, quick: boolean): Promise<KernelResult[]> {
  const results: KernelResult[] = [];
  results.push(await measureCeiling(gpu, timer));
  await benchMatmul(gpu, timer, quick, results);
  await benchWeightGradients(gpu, timer, results);
  await benchBiasGradient(gpu, timer, results);
  await benchAttention(gpu, timer, results);
  await benchRowKernels(gpu, timer, results);
  await benchOptimizer(gpu, timer, results);
  return results;
}
