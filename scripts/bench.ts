/**
 * `deno task bench [--json] [--quick] [--kernels-only|--training-only] [--peers] [--no-autotune] [--gpt2]
 * [--profile [W/L]]`: kernel and training
 * benchmarks on this machine's WebGPU adapter.
 *
 * Kernels: time per call and GFLOP/s or GB/s at realistic shapes, matmul versions side by side
 * (naive / blocked / vec4), measured with GPU timestamps where the adapter has them, else wall time
 * over many calls in one submit. Training: tokens/s of a full step (forward, backward, AdamW in one
 * command encoder, no read-back) for three GPT sizes, the share of step time spent in matmul,
 * dispatches per step and CPU encoding time per step. With --json the last line is one JSON object.
 *
 * --peers adds, measured in the same run: tfjs-backend-webgpu on the same adapter (matmul 256/512/1024
 * NN, GPT 128/4 and 192/4 training steps) and PyTorch on the CPU (the same GPT step, 1 and 2 threads),
 * each with the ratio ours / theirs. Our matmul side of that ratio is timed like tfjs's (wall time over
 * calls ended by one wait), next to our GPU-timestamp figure.
 *
 * --profile [W/L] breaks one training step of the W/L model (default 128/4, batch 32 × 64) down by
 * kernel: GPU time per dispatch label (layer indices merged), its share of the step and GFLOP/s.
 *
 * --gpt2 times only the GPT-2-124M-sized training step (vocabulary 50257, context 1024, width 768,
 * 12 layers, batch 4 × 1024): the GPU-session comparison with PyTorch (scripts/gpu/check.sh). It needs
 * an adapter whose storage bindings hold the 154 MB embedding; llvmpipe's 128 MiB limit refuses it
 * with a named error.
 */
import { getGpu, type Gpu } from "../kernels/device.ts";
import { createTensor, type Dispatch, encodeDispatches } from "../kernels/runtime.ts";
import { type MatmulVersion, planMatmul, type TiledBlock } from "../kernels/ops/matmul.ts";
import {
  planAttentionBackward,
  planAttentionBackwardV2,
  planAttentionForward,
  planAttentionForwardV2,
} from "../kernels/ops/attention.ts";
import { planAttentionBackwardV3, planAttentionForwardV3 } from "../kernels/ops/attention-flash.ts";
import { planLayernormForward } from "../kernels/ops/layernorm.ts";
import { planGeluForward } from "../kernels/ops/elementwise.ts";
import { planLmCrossEntropy } from "../kernels/ops/crossentropy.ts";
import { planAdamW } from "../kernels/ops/optimizer.ts";
import { type GptConfig, initParameters, parameterCount, paramLayout } from "../kernels/config.ts";
import { GptModel } from "../kernels/gpt.ts";
import { autotuneMatmul, type TuneResult } from "../kernels/ops/matmul-autotune.ts";
import { type PeerResults, runPeers } from "./peers/run.ts";

export interface KernelResult {
  kernel: string;
  version: string;
  shape: string;
  ms: number;
  gflops?: number;
  gbps?: number;
  timer: "gpu" | "wall";
}

export interface TrainingResult {
  name: string;
  width: number;
  layers: number;
  contextLength: number;
  batchSize: number;
  vocabSize: number;
  params: number;
  tokensPerSecond: number;
  msPerStep: number;
  matmulShare: number;
  dispatchesPerStep: number;
  encodeMsPerStep: number;
}

export interface PeerMatmul {
  size: number;
  /** Our matmul (automatic version), wall ms per call over repeated calls in one submit. */
  oursMs: number;
  oursGflops: number;
  /** Our GPU-timestamp figure for the same dispatch (median), when timestamps exist. */
  oursGpuGflops?: number;
  tfjsGflops?: number;
  /** ours / tfjs, both timed by wall clock. */
  ratio?: number;
}

export interface PeerTraining {
  name: string;
  oursTokensPerSecond: number;
  tfjsTokensPerSecond?: number;
  torch1TokensPerSecond?: number;
  torch2TokensPerSecond?: number;
  ratioTfjs?: number;
  ratioTorch1?: number;
  ratioTorch2?: number;
}

export interface PeerReport {
  matmul: PeerMatmul[];
  training: PeerTraining[];
  notes: string[];
  raw: PeerResults;
}

export interface BenchReport {
  device: string;
  timer: "gpu" | "wall";
  /** 1-minute load average when the run started (the machine is shared). */
  loadAverage?: number;
  /** The tiled matmul's blocks per layout chosen by the per-adapter autotune (cached). */
  matmulTune?: TuneResult;
  kernels: KernelResult[];
  training: TrainingResult[];
  peers?: PeerReport;
}

/** Times a list of dispatches; per-dispatch GPU times when timestamps exist. */
export class Timer {
  private querySet?: GPUQuerySet;
  private resolve?: GPUBuffer;
  private readback?: GPUBuffer;
  private capacity = 512;

  constructor(readonly gpu: Gpu) {
    if (gpu.features.timestamps) {
      const d = gpu.device;
      this.querySet = d.createQuerySet({ type: "timestamp", count: this.capacity * 2 });
      this.resolve = d.createBuffer({
        size: this.capacity * 16,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      this.readback = d.createBuffer({
        size: this.capacity * 16,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    }
  }

  get kind(): "gpu" | "wall" {
    return this.querySet ? "gpu" : "wall";
  }

  /** Milliseconds per dispatch (GPU) for each dispatch, run once each in its own pass. */
  async each(dispatches: readonly Dispatch[]): Promise<number[]> {
    const out: number[] = [];
    for (let start = 0; start < dispatches.length; start += this.capacity) {
      const chunk = dispatches.slice(start, start + this.capacity);
      out.push(...await this.eachChunk(chunk));
    }
    return out;
  }

  private async eachChunk(chunk: readonly Dispatch[]): Promise<number[]> {
    const d = this.gpu.device;
    if (!this.querySet) {
      const times: number[] = [];
      for (const dispatch of chunk) times.push(await this.wall([dispatch], 1));
      return times;
    }
    const encoder = d.createCommandEncoder();
    chunk.forEach((dispatch, i) => {
      const pass = encoder.beginComputePass({
        timestampWrites: {
          querySet: this.querySet!,
          beginningOfPassWriteIndex: 2 * i,
          endOfPassWriteIndex: 2 * i + 1,
        },
      });
      encodeDispatches(pass, [dispatch]);
      pass.end();
    });
    encoder.resolveQuerySet(this.querySet, 0, chunk.length * 2, this.resolve!, 0);
    encoder.copyBufferToBuffer(this.resolve!, 0, this.readback!, 0, chunk.length * 16);
    d.queue.submit([encoder.finish()]);
    await this.readback!.mapAsync(GPUMapMode.READ);
    const stamps = new BigUint64Array(this.readback!.getMappedRange().slice(0));
    this.readback!.unmap();
    return chunk.map((_, i) => Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6);
  }

  /** Wall milliseconds per repetition of `dispatches`, `reps` times in one pass of one submit. */
  async wall(dispatches: readonly Dispatch[], reps: number): Promise<number> {
    const d = this.gpu.device;
    const encoder = d.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let r = 0; r < reps; r++) encodeDispatches(pass, dispatches);
    pass.end();
    const t0 = performance.now();
    d.queue.submit([encoder.finish()]);
    await d.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / reps;
  }

  /** Median milliseconds of one dispatch over `reps` runs. */
  async median(dispatch: Dispatch, reps: number): Promise<number> {
    if (!this.querySet) return await this.wall([dispatch], reps);
    const times = await this.each(Array(reps).fill(dispatch));
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }
}

function random(n: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from(
    { length: n },
    () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5,
  );
}

async function benchKernels(gpu: Gpu, timer: Timer, quick: boolean): Promise<KernelResult[]> {
  const results: KernelResult[] = [];
  const record = async (kernel: string, version: string, shape: string, d: Dispatch, reps: number) => {
    await timer.wall([d], 1); // warm-up: compiles the pipeline
    const ms = await timer.median(d, reps);
    const r: KernelResult = { kernel, version, shape, ms, timer: timer.kind };
    if (d.flops) r.gflops = d.flops / ms / 1e6;
    if (d.bytes) r.gbps = d.bytes / ms / 1e6;
    results.push(r);
    return r;
  };

  const sizes = quick ? [256, 512] : [256, 512, 1024];
  for (const S of sizes) {
    const a = createTensor(gpu, S * S, "a", random(S * S, 1));
    const b = createTensor(gpu, S * S, "b", random(S * S, 2));
    const c = createTensor(gpu, S * S, "c");
    const versions: [MatmulVersion, string, TiledBlock?][] = [
      ...(S <= 512 ? [["naive", "naive"] as [MatmulVersion, string]] : []),
      ["blocked", "blocked"],
      ["vec4", "vec4"],
      ["tiled", "tiled16", [16, 16]],
      ["tiled", "tiled24", [24, 24]],
      // The block the model uses for the layout: the autotune's choice (or the default without it).
      ["tiled", "tuned"],
    ];
    for (const [version, name, block] of versions) {
      for (
        const [layout, transA, transB] of [["NN", false, false], ["NT", false, true], [
          "TN",
          true,
          false,
        ]] as const
      ) {
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
        await record("matmul " + layout, name, `${S}×${S}×${S}`, d, version === "naive" ? 2 : 5);
      }
    }
    for (const t of [a, b, c]) t.buffer.destroy();
  }

  // The model's other kernels at the width-192, batch 32 × 64 training shape.
  const B = 32, T = 64, C = 192, H = 6, V = 256;
  const N = B * T;
  const qkv = createTensor(gpu, N * 3 * C, "qkv", random(N * 3 * C, 3));
  const lengths = createTensor(gpu, B, "lengths", new Int32Array(B).fill(T));
  const out = createTensor(gpu, N * C, "out");
  const probs = createTensor(gpu, B * H * T * T, "probs");
  const lse = createTensor(gpu, B * H * T, "lse");
  const shape = `B${B} T${T} C${C} H${H}`;
  const dout = createTensor(gpu, N * C, "dout", random(N * C, 4));
  const dqkv = createTensor(gpu, N * 3 * C, "dqkv");
  const attnFlops = 2 * 2 * B * H * T * T * (C / H); // QKᵀ and PV, full (unmasked) count
  const spec = { qkv, lengths, out, probs, B, T, C, H, label: "attention" };
  const attention = [
    ["v1", [planAttentionForward(gpu, spec)], planAttentionBackward(gpu, { ...spec, dout, dqkv })],
    ["v2", planAttentionForwardV2(gpu, spec), planAttentionBackwardV2(gpu, { ...spec, dout, dqkv })],
    // v3 (flash) reads the out written by its own forward, and saves lse instead of probs.
    [
      "v3",
      [planAttentionForwardV3(gpu, { ...spec, lse })],
      planAttentionBackwardV3(gpu, { ...spec, lse, dout, dqkv }),
    ],
  ] as const;
  for (const [version, fwd, bwd] of attention) {
    const passes = [["attention forward", fwd, attnFlops], [
      "attention backward",
      bwd,
      2 * attnFlops,
    ]] as const;
    for (const [kernel, list, flops] of passes) {
      await timer.wall(list, 1);
      const ms = (await timer.each(list)).reduce((s, x) => s + x, 0);
      results.push({ kernel, version, shape, ms, gflops: flops / ms / 1e6, timer: timer.kind });
    }
  }

  const cfgLn: GptConfig = { vocabSize: V, contextLength: T, width: C, layers: 1, heads: H };
  const params = createTensor(gpu, paramLayout(cfgLn).total, "params", initParameters(cfgLn, 1));
  const ln = paramLayout(cfgLn).byName.get("h.0.ln_1.weight")!;
  const x = createTensor(gpu, N * C, "x", random(N * C, 5));
  const y = createTensor(gpu, N * C, "y");
  const mean = createTensor(gpu, N, "mean");
  const rstd = createTensor(gpu, N, "rstd");
  for (const version of ["v1", "v2"] as const) {
    await record(
      "layernorm forward",
      version,
      `N${N} C${C}`,
      planLayernormForward(gpu, {
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
      }),
      5,
    );
  }
  const wide = createTensor(gpu, N * 4 * C, "wide", random(N * 4 * C, 6));
  const wide2 = createTensor(gpu, N * 4 * C, "wide2");
  await record("gelu forward", "v1", `${N * 4 * C}`, planGeluForward(gpu, wide, wide2, N * 4 * C, "gelu"), 5);
  const logits = createTensor(gpu, N * V, "logits", random(N * V, 7));
  const targets = createTensor(gpu, N, "targets", Int32Array.from({ length: N }, (_, i) => i % V));
  const rowLoss = createTensor(gpu, N, "row loss");
  const stats = createTensor(gpu, 8, "stats");
  for (const version of ["v1", "v2"] as const) {
    const ce = planLmCrossEntropy(gpu, { logits, targets, rowLoss, stats, rows: N, V, label: "ce", version });
    await timer.wall(ce, 1);
    const ceMs = (await timer.each(ce)).reduce((s, x) => s + x, 0);
    results.push({
      kernel: "lm cross-entropy fwd+bwd",
      version,
      shape: `N${N} V${V}`,
      ms: ceMs,
      timer: timer.kind,
    });
  }
  const P = 2_000_000;
  const big = [1, 2, 3, 4].map((i) => createTensor(gpu, P, `adam${i}`, random(P, i)));
  const adam = planAdamW(gpu, {
    params: big[0],
    grads: big[1],
    m: big[2],
    v: big[3],
    n: P,
    decayEnd: P / 2,
    stats,
    label: "adamw",
  });
  adam.setParams({
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weight_decay: 0.1,
    bc1: 0.1,
    bc2: 0.05,
    max_norm: 0,
  });
  const adamResult = await record("adamw", "v1", `${P} params`, adam, 5);
  adamResult.gbps = (P * 4 * 7) / adamResult.ms / 1e6;
  return results;
}

interface TrainingConfig {
  name: string;
  width: number;
  layers: number;
  heads: number;
  fuse?: boolean;
  /** Batch rows × tokens and vocabulary; default 32 × 64 and bytes (256). */
  batch?: number;
  context?: number;
  vocab?: number;
}

// "unfused" runs the residual adds and GELU as separate dispatches: the fusions' before/after.
const TRAINING_CONFIGS: TrainingConfig[] = [
  { name: "64/2", width: 64, layers: 2, heads: 2 },
  { name: "128/4 unfused", width: 128, layers: 4, heads: 4, fuse: false },
  { name: "128/4", width: 128, layers: 4, heads: 4 },
  { name: "192/4", width: 192, layers: 4, heads: 6 },
];

const GPT2_CONFIG: TrainingConfig = {
  name: "gpt2-124m",
  width: 768,
  layers: 12,
  heads: 12,
  batch: 4,
  context: 1024,
  vocab: 50257,
};

async function benchTraining(
  gpu: Gpu,
  timer: Timer,
  quick: boolean,
  configs = TRAINING_CONFIGS,
): Promise<TrainingResult[]> {
  const results: TrainingResult[] = [];
  for (const c of configs) {
    const B = c.batch ?? 32, T = c.context ?? 64, V = c.vocab ?? 256;
    const cfg: GptConfig = {
      vocabSize: V,
      contextLength: T,
      width: c.width,
      layers: c.layers,
      heads: c.heads,
    };
    const model = new GptModel(gpu, cfg, initParameters(cfg, 1), { batchSize: B, seqLen: T, fuse: c.fuse });
    const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 31 + 7) % V);
    model.setBatch({ tokens, lengths: new Int32Array(B).fill(T) });
    model.trainStep("lm");
    await model.readStats();
    const steps = quick ? 2 : 5;
    let encodeMs = 0;
    const start = performance.now();
    for (let i = 0; i < steps; i++) {
      model.trainStep("lm");
      encodeMs += model.lastEncodeMs;
    }
    await model.readStats();
    const msPerStep = (performance.now() - start) / steps;
    encodeMs /= steps;
    const dispatches = model.dispatches("lm");
    const each = await timer.each(dispatches);
    const total = each.reduce((s, x) => s + x, 0);
    const matmul = each.reduce((s, x, i) => s + (dispatches[i].family === "matmul" ? x : 0), 0);
    results.push({
      name: c.name,
      width: c.width,
      layers: c.layers,
      contextLength: T,
      batchSize: B,
      vocabSize: V,
      params: parameterCount(cfg),
      tokensPerSecond: (B * T) / (msPerStep / 1000),
      msPerStep,
      matmulShare: matmul / total,
      dispatchesPerStep: dispatches.length,
      encodeMsPerStep: encodeMs,
    });
    model.destroy();
  }
  return results;
}

function printTable(report: BenchReport): void {
  console.log(
    `device: ${report.device} (timer: ${report.timer}, load average ${report.loadAverage?.toFixed(2)})`,
  );
  if (report.matmulTune) {
    const t = report.matmulTune;
    const chosen = Object.entries(t.blocks).map(([layout, b]) => `${layout} ${b.join("×")}`).join(", ");
    console.log(`tiled matmul blocks (autotune${t.fromCache ? ", cached" : ""}): ${chosen}`);
  }
  console.log("");
  console.log("kernel                       version  shape                 ms/call   GFLOP/s    GB/s");
  for (const k of report.kernels) {
    console.log(
      `${k.kernel.padEnd(28)} ${k.version.padEnd(8)} ${k.shape.padEnd(20)} ${k.ms.toFixed(3).padStart(9)} ${
        (k.gflops?.toFixed(2) ?? "").padStart(9)
      } ${(k.gbps?.toFixed(2) ?? "").padStart(7)}`,
    );
  }
  const shapes = [
    ...new Set(
      report.training.map((t) => `batch ${t.batchSize} × ${t.contextLength}, vocabulary ${t.vocabSize}`),
    ),
  ];
  console.log(`\ntraining step (${shapes.join("; ")}, AdamW)`);
  console.log("model          params     tokens/s   ms/step  matmul share  dispatches  encode ms");
  for (const t of report.training) {
    console.log(
      `${t.name.padEnd(14)} ${String(t.params).padEnd(10)} ${t.tokensPerSecond.toFixed(0).padStart(8)} ${
        t.msPerStep.toFixed(1).padStart(9)
      } ${(100 * t.matmulShare).toFixed(1).padStart(11)} % ${String(t.dispatchesPerStep).padStart(10)} ${
        t.encodeMsPerStep.toFixed(2).padStart(10)
      }`,
    );
  }
}

/** Our side of the peer table, then the peers (subprocesses), then the ratios. */
async function benchPeers(gpu: Gpu, timer: Timer, quick: boolean, training: TrainingResult[]) {
  const sizes = quick ? [256, 512] : [256, 512, 1024];
  const matmul: PeerMatmul[] = [];
  for (const S of sizes) {
    const a = createTensor(gpu, S * S, "a", random(S * S, 1));
    const b = createTensor(gpu, S * S, "b", random(S * S, 2));
    const c = createTensor(gpu, S * S, "c");
    const d = planMatmul(gpu, { label: "matmul", a, b, c, M: S, N: S, K: S });
    await timer.wall([d], 1);
    const reps = Math.max(3, Math.round(6e9 / (2 * S ** 3)));
    const ms = await timer.wall([d], reps);
    const gpuMs = timer.kind === "gpu" ? await timer.median(d, 3) : undefined;
    matmul.push({
      size: S,
      oursMs: ms,
      oursGflops: d.flops / ms / 1e6,
      oursGpuGflops: gpuMs ? d.flops / gpuMs / 1e6 : undefined,
    });
    for (const t of [a, b, c]) t.buffer.destroy();
  }
  const wanted = TRAINING_CONFIGS.filter((c) => c.name === "128/4" || c.name === "192/4");
  const ours = wanted.map((c) => training.find((t) => t.name === c.name));
  const measured = ours.every((t) => t)
    ? ours as TrainingResult[]
    : await benchTraining(gpu, timer, quick, wanted);

  const raw = await runPeers({ quick, sizes, widths: wanted.map((c) => c.width) });
  const notes: string[] = [];
  if (raw.tfjsError) notes.push("tfjs: " + raw.tfjsError);
  if (raw.torchNote) notes.push("torch skipped: " + raw.torchNote);
  for (const m of matmul) {
    m.tfjsGflops = raw.tfjs?.matmul.find((x) => x.size === m.size)?.gflops;
    if (m.tfjsGflops) m.ratio = m.oursGflops / m.tfjsGflops;
  }
  const rows: PeerTraining[] = measured.map((t) => {
    const tfjs = raw.tfjs?.training.find((x) => x.width === t.width)?.tokensPerSecond;
    const torch = (threads: number) =>
      raw.torch?.training.find((x) => x.width === t.width && x.threads === threads)?.tokensPerSecond;
    const ratio = (x?: number) => (x ? t.tokensPerSecond / x : undefined);
    return {
      name: t.name,
      oursTokensPerSecond: t.tokensPerSecond,
      tfjsTokensPerSecond: tfjs,
      torch1TokensPerSecond: torch(1),
      torch2TokensPerSecond: torch(2),
      ratioTfjs: ratio(tfjs),
      ratioTorch1: ratio(torch(1)),
      ratioTorch2: ratio(torch(2)),
    };
  });
  return { matmul, training: rows, notes, raw };
}

function printPeers(p: PeerReport): void {
  const f = (x: number | undefined, digits = 2) => (x === undefined ? "–" : x.toFixed(digits));
  console.log("\npeers, measured in this run (matmul NN, wall time per call over repeated calls)");
  console.log("size    ours GFLOP/s  (GPU timer)  tfjs GFLOP/s  ours/tfjs");
  for (const m of p.matmul) {
    console.log(
      `${String(m.size).padEnd(7)} ${f(m.oursGflops).padStart(12)} ${f(m.oursGpuGflops).padStart(12)} ${
        f(m.tfjsGflops).padStart(13)
      } ${f(m.ratio).padStart(10)}`,
    );
  }
  console.log("\ntraining tokens/s (batch 32 × 64, vocabulary 256, AdamW)");
  console.log("model   ours    tfjs    ours/tfjs  torch 1T  ours/torch1  torch 2T  ours/torch2");
  for (const t of p.training) {
    console.log(
      `${t.name.padEnd(7)} ${f(t.oursTokensPerSecond, 0).padStart(5)} ${
        f(t.tfjsTokensPerSecond, 0).padStart(7)
      } ${f(t.ratioTfjs).padStart(11)} ${f(t.torch1TokensPerSecond, 0).padStart(9)} ${
        f(t.ratioTorch1, 3).padStart(12)
      } ${f(t.torch2TokensPerSecond, 0).padStart(9)} ${f(t.ratioTorch2, 3).padStart(12)}`,
    );
  }
  for (const n of p.notes) console.log("note: " + n);
}

export interface ProfileRow {
  kernel: string;
  family: string;
  dispatches: number;
  ms: number;
  share: number;
  gflops?: number;
}

/** Per-kernel GPU time of one training step (median of three timed runs per dispatch). */
export async function profileStep(gpu: Gpu, timer: Timer, model: string): Promise<ProfileRow[]> {
  const [width, layers] = model.split("/").map(Number);
  if (!(width > 0 && layers > 0 && width % 32 === 0)) {
    throw new Error(
      `--profile: model "${model}" must be WIDTH/LAYERS with WIDTH a multiple of 32, e.g. 128/4`,
    );
  }
  const B = 32, T = 64, V = 256;
  const cfg: GptConfig = { vocabSize: V, contextLength: T, width, layers, heads: width / 32 };
  const m = new GptModel(gpu, cfg, initParameters(cfg, 1), { batchSize: B, seqLen: T });
  m.setBatch({
    tokens: Int32Array.from({ length: B * T }, (_, i) => (i * 31 + 7) % V),
    lengths: new Int32Array(B).fill(T),
  });
  m.trainStep("lm");
  await m.readStats();
  const dispatches = m.dispatches("lm");
  const runs = [await timer.each(dispatches), await timer.each(dispatches), await timer.each(dispatches)];
  const rows = new Map<string, ProfileRow & { flops: number }>();
  dispatches.forEach((d, i) => {
    const ms = runs.map((r) => r[i]).sort((a, b) => a - b)[1];
    const kernel = d.label.replace(/\.\d+/g, "");
    const row = rows.get(kernel) ??
      { kernel, family: d.family ?? "other", dispatches: 0, ms: 0, share: 0, flops: 0 };
    row.dispatches++;
    row.ms += ms;
    row.flops += d.flops ?? 0;
    rows.set(kernel, row);
  });
  m.destroy();
  const total = [...rows.values()].reduce((sum, r) => sum + r.ms, 0);
  return [...rows.values()].sort((a, b) => b.ms - a.ms).map(({ flops, ...r }) => ({
    ...r,
    share: r.ms / total,
    gflops: flops ? flops / r.ms / 1e6 : undefined,
  }));
}

function printProfile(model: string, rows: ProfileRow[]): void {
  const total = rows.reduce((sum, r) => sum + r.ms, 0);
  console.log(
    `training step ${model}, batch 32 × 64: ${total.toFixed(1)} ms of GPU time in ${
      rows.reduce((n, r) => n + r.dispatches, 0)
    } dispatches`,
  );
  console.log("kernel                                  family   dispatches     ms   share  GFLOP/s");
  for (const r of rows) {
    console.log(
      `${r.kernel.padEnd(40)}${r.family.padEnd(9)}${String(r.dispatches).padStart(10)} ${
        r.ms.toFixed(2).padStart(7)
      } ${(100 * r.share).toFixed(1).padStart(6)} % ${(r.gflops?.toFixed(1) ?? "").padStart(7)}`,
    );
  }
}

export async function runBench(
  opts: {
    quick?: boolean;
    kernels?: boolean;
    training?: boolean;
    peers?: boolean;
    autotune?: boolean;
    gpt2?: boolean;
  } = {},
) {
  const gpu = await getGpu();
  const timer = new Timer(gpu);
  const quick = opts.quick ?? false;
  const loadAverage = Deno.loadavg()[0];
  const matmulTune = opts.autotune === false ? undefined : await autotuneMatmul(gpu);
  const report: BenchReport = {
    device: gpu.adapterName,
    timer: timer.kind,
    loadAverage,
    matmulTune,
    kernels: opts.kernels === false || opts.gpt2 ? [] : await benchKernels(gpu, timer, quick),
    training: opts.gpt2
      ? await benchTraining(gpu, timer, quick, [GPT2_CONFIG])
      : opts.training === false
      ? []
      : await benchTraining(gpu, timer, quick),
  };
  if (opts.peers) report.peers = await benchPeers(gpu, timer, quick, report.training);
  return report;
}

if (import.meta.main) {
  const args = Deno.args;
  const profileAt = args.indexOf("--profile");
  if (profileAt >= 0) {
    const next = args[profileAt + 1];
    const model = next && !next.startsWith("--") ? next : "128/4";
    const gpu = await getGpu();
    if (!args.includes("--no-autotune")) await autotuneMatmul(gpu);
    const rows = await profileStep(gpu, new Timer(gpu), model).catch((err) => {
      console.error(`bench: ${(err as Error).message}`);
      Deno.exit(1);
    });
    if (args.includes("--json")) {
      console.log(JSON.stringify({ model, device: gpu.adapterName, kernels: rows }));
    } else printProfile(model, rows);
    Deno.exit(0);
  }
  const report = await runBench({
    quick: args.includes("--quick"),
    kernels: !args.includes("--training-only"),
    training: !args.includes("--kernels-only"),
    peers: args.includes("--peers"),
    autotune: !args.includes("--no-autotune"),
    gpt2: args.includes("--gpt2"),
  }).catch((err) => {
    // A model too large for this adapter (e.g. --gpt2 on llvmpipe) ends with its named error alone.
    console.error(`bench: ${(err as Error).message}`);
    Deno.exit(1);
  });
  if (args.includes("--json")) console.log(JSON.stringify(report));
  else {
    printTable(report);
    if (report.peers) printPeers(report.peers);
  }
}
