/**
 * `deno task bench [--json] [--quick]`: kernel and training benchmarks on this machine's WebGPU adapter.
 *
 * Kernels: time per call and GFLOP/s or GB/s at realistic shapes, matmul versions side by side
 * (naive / blocked / vec4), measured with GPU timestamps where the adapter has them, else wall time
 * over many calls in one submit. Training: tokens/s of a full step (forward, backward, AdamW in one
 * command encoder, no read-back) for three GPT sizes, the share of step time spent in matmul,
 * dispatches per step and CPU encoding time per step. With --json the last line is one JSON object.
 */
import { getGpu, type Gpu } from "../kernels/device.ts";
import { createTensor, type Dispatch, encodeDispatches } from "../kernels/runtime.ts";
import { type MatmulVersion, planMatmul } from "../kernels/ops/matmul.ts";
import {
  planAttentionBackward,
  planAttentionBackwardV2,
  planAttentionForward,
  planAttentionForwardV2,
} from "../kernels/ops/attention.ts";
import { planLayernormForward } from "../kernels/ops/layernorm.ts";
import { planGeluForward } from "../kernels/ops/elementwise.ts";
import { planLmCrossEntropy } from "../kernels/ops/crossentropy.ts";
import { planAdamW } from "../kernels/ops/optimizer.ts";
import { type GptConfig, initParameters, parameterCount, paramLayout } from "../kernels/config.ts";
import { GptModel } from "../kernels/gpt.ts";

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

export interface BenchReport {
  device: string;
  timer: "gpu" | "wall";
  kernels: KernelResult[];
  training: TrainingResult[];
}

/** Times a list of dispatches; per-dispatch GPU times when timestamps exist. */
class Timer {
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
    const versions: MatmulVersion[] = S <= 512 ? ["naive", "blocked", "vec4"] : ["blocked", "vec4"];
    for (const version of versions) {
      for (
        const [layout, transA, transB] of [["NN", false, false], ["NT", false, true], [
          "TN",
          true,
          false,
        ]] as const
      ) {
        const d = planMatmul(gpu, { label: "matmul", a, b, c, M: S, N: S, K: S, transA, transB, version });
        await record("matmul " + layout, version, `${S}×${S}×${S}`, d, version === "naive" ? 2 : 5);
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
  const shape = `B${B} T${T} C${C} H${H}`;
  const dout = createTensor(gpu, N * C, "dout", random(N * C, 4));
  const dqkv = createTensor(gpu, N * 3 * C, "dqkv");
  const attnFlops = 2 * 2 * B * H * T * T * (C / H); // QKᵀ and PV, full (unmasked) count
  const spec = { qkv, lengths, out, probs, B, T, C, H, label: "attention" };
  const attention = [
    ["v1", [planAttentionForward(gpu, spec)], planAttentionBackward(gpu, { ...spec, dout, dqkv })],
    ["v2", planAttentionForwardV2(gpu, spec), planAttentionBackwardV2(gpu, { ...spec, dout, dqkv })],
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
  await record(
    "layernorm forward",
    "v1",
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
    }),
    5,
  );
  const wide = createTensor(gpu, N * 4 * C, "wide", random(N * 4 * C, 6));
  const wide2 = createTensor(gpu, N * 4 * C, "wide2");
  await record("gelu forward", "v1", `${N * 4 * C}`, planGeluForward(gpu, wide, wide2, N * 4 * C, "gelu"), 5);
  const logits = createTensor(gpu, N * V, "logits", random(N * V, 7));
  const targets = createTensor(gpu, N, "targets", Int32Array.from({ length: N }, (_, i) => i % V));
  const rowLoss = createTensor(gpu, N, "row loss");
  const stats = createTensor(gpu, 8, "stats");
  const ce = planLmCrossEntropy(gpu, { logits, targets, rowLoss, stats, rows: N, V, label: "ce" });
  const ceMs = (await timer.each(ce)).reduce((s, x) => s + x, 0);
  results.push({
    kernel: "lm cross-entropy fwd+bwd",
    version: "v1",
    shape: `N${N} V${V}`,
    ms: ceMs,
    timer: timer.kind,
  });
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

async function benchTraining(gpu: Gpu, timer: Timer, quick: boolean): Promise<TrainingResult[]> {
  const configs = [
    { name: "64/2", width: 64, layers: 2, heads: 2 },
    { name: "128/4", width: 128, layers: 4, heads: 4 },
    { name: "192/4", width: 192, layers: 4, heads: 6 },
  ];
  const B = 32, T = 64, V = 256;
  const results: TrainingResult[] = [];
  for (const c of configs) {
    const cfg: GptConfig = {
      vocabSize: V,
      contextLength: T,
      width: c.width,
      layers: c.layers,
      heads: c.heads,
    };
    const model = new GptModel(gpu, cfg, initParameters(cfg, 1), { batchSize: B, seqLen: T });
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
  console.log(`device: ${report.device} (timer: ${report.timer})\n`);
  console.log("kernel                       version  shape                 ms/call   GFLOP/s    GB/s");
  for (const k of report.kernels) {
    console.log(
      `${k.kernel.padEnd(28)} ${k.version.padEnd(8)} ${k.shape.padEnd(20)} ${k.ms.toFixed(3).padStart(9)} ${
        (k.gflops?.toFixed(2) ?? "").padStart(9)
      } ${(k.gbps?.toFixed(2) ?? "").padStart(7)}`,
    );
  }
  console.log("\ntraining step (batch 32 × 64, byte vocabulary 256, AdamW)");
  console.log("model   params     tokens/s   ms/step  matmul share  dispatches  encode ms");
  for (const t of report.training) {
    console.log(
      `${t.name.padEnd(7)} ${String(t.params).padEnd(10)} ${t.tokensPerSecond.toFixed(0).padStart(8)} ${
        t.msPerStep.toFixed(1).padStart(9)
      } ${(100 * t.matmulShare).toFixed(1).padStart(11)} % ${String(t.dispatchesPerStep).padStart(10)} ${
        t.encodeMsPerStep.toFixed(2).padStart(10)
      }`,
    );
  }
}

export async function runBench(opts: { quick?: boolean; kernels?: boolean; training?: boolean } = {}) {
  const gpu = await getGpu();
  const timer = new Timer(gpu);
  const report: BenchReport = {
    device: gpu.adapterName,
    timer: timer.kind,
    kernels: opts.kernels === false ? [] : await benchKernels(gpu, timer, opts.quick ?? false),
    training: opts.training === false ? [] : await benchTraining(gpu, timer, opts.quick ?? false),
  };
  return report;
}

if (import.meta.main) {
  const args = Deno.args;
  const report = await runBench({
    quick: args.includes("--quick"),
    kernels: !args.includes("--training-only"),
    training: !args.includes("--kernels-only"),
  });
  if (args.includes("--json")) console.log(JSON.stringify(report));
  else printTable(report);
}
