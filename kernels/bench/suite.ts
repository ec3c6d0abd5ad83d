/**
 * The benchmark suite on this process's WebGPU adapter, as one BenchReport: the per-adapter matmul
 * autotune (cached), the kernel table, the training steps, the memory each size needs and, when asked,
 * the predictions at a sweep's shape and the peers. `deno task bench` (scripts/bench.ts) prints it; the server's bench job
 * (server/jobs/bench-job.ts) stores it.
 */
import { getGpu } from "../device.ts";
import { autotuneMatmul } from "../ops/matmul-autotune.ts";
import { adapterMemoryLimits } from "../memory.ts";
import { benchKernels } from "./kernel-table.ts";
import { memoryTable } from "./memory-table.ts";
import { benchPeers } from "./peers/compare.ts";
import type { BenchReport } from "./report.ts";
import { Timer } from "./timer.ts";
import { benchEvaluation, type EvalSize } from "./evaluation.ts";
import { benchTraining, GPT2_CONFIG } from "./training.ts";

export interface BenchOptions {
  /** Smaller shapes and fewer steps. */
  quick?: boolean;
  /** The kernel table (default true). */
  kernels?: boolean;
  /** The training steps (default true). */
  training?: boolean;
  /** The sizes whose predictions at a sweep's evaluator shape are timed (default none). */
  evaluation?: readonly EvalSize[];
  /** tfjs and PyTorch in subprocesses, with ratios (default false). */
  peers?: boolean;
  /** Run (or read the cached) matmul autotune first (default true). */
  autotune?: boolean;
  /** Only the GPT-2-124M-sized training step. */
  gpt2?: boolean;
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
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
    memory: memoryTable(adapterMemoryLimits(gpu)),
  };
  if (opts.evaluation?.length && !opts.gpt2) {
    report.evaluation = await benchEvaluation(gpu, timer, quick, opts.evaluation);
  }
  if (opts.peers) report.peers = await benchPeers(gpu, timer, quick, report.training);
  return report;
}
