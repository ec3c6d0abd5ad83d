/**
 * `bench`: runs the kernel and training benchmarks of kernels/bench/ in the worker's process and stores
 * one bench_results row per measured kernel version and per training size (kernel "train step", its
 * tokens/s and the rest in `details`). The WebGPU adapter is requested when a job runs, not when the
 * server starts, so a machine without one still serves the API; the peers (tfjs, PyTorch) never run here.
 */
import { eq } from "drizzle-orm";
import { benchResults } from "../../db/schema.ts";
import { BenchCreate } from "../contract/jobs.ts";
import type { JobContext, JobHandler } from "./registry.ts";
import {
  type BenchReport,
  type KernelResult,
  TRAIN_STEP_KERNEL,
  type TrainingResult,
} from "../../kernels/bench/report.ts";
import { runBench } from "../../kernels/bench/suite.ts";

/** The parts of the benchmark report this job stores. */
export type BenchKernelFigure = KernelResult;
export type BenchTrainingFigure = TrainingResult;
export type BenchReportLike = Pick<BenchReport, "device" | "timer" | "kernels" | "training">;

export type RunBench = (opts: { quick?: boolean; kernels?: boolean; training?: boolean }) => Promise<
  BenchReportLike
>;

/** A kernel is kept when the filter is absent or names it, or names the first word of it ("matmul"). */
export function kernelSelected(kernel: string, filter: readonly string[] | undefined): boolean {
  if (filter === undefined) return true;
  return filter.some((name) => kernel === name || kernel.startsWith(name + " "));
}

export type BenchRow = typeof benchResults.$inferInsert;

/** The rows one report becomes: kernel versions first, then one "train step" row per training size. */
export function benchRows(
  report: BenchReportLike,
  jobId: number | null,
  filter?: readonly string[],
): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const k of report.kernels) {
    if (!kernelSelected(k.kernel, filter)) continue;
    rows.push({
      jobId,
      device: report.device,
      kernel: k.kernel,
      version: k.version,
      shape: k.shape,
      ms: k.ms,
      gflops: k.gflops ?? null,
      gbps: k.gbps ?? null,
      details: { timer: k.timer },
    });
  }
  for (const t of report.training) {
    rows.push({
      jobId,
      device: report.device,
      kernel: TRAIN_STEP_KERNEL,
      version: t.name,
      shape: `batch ${t.batchSize}×${t.contextLength}, vocab ${t.vocabSize}`,
      ms: t.msPerStep,
      gflops: null,
      gbps: null,
      details: {
        timer: report.timer,
        tokensPerSecond: t.tokensPerSecond,
        params: t.params,
        width: t.width,
        layers: t.layers,
        matmulShare: t.matmulShare,
        dispatchesPerStep: t.dispatchesPerStep,
        encodeMsPerStep: t.encodeMsPerStep,
      },
    });
  }
  return rows;
}

/** The handler; tests pass a stand-in for runBench, workers the benchmark suite. */
export function makeBenchHandler(run: RunBench = runBench): JobHandler {
  return async (ctx: JobContext) => {
    const parsed = BenchCreate.safeParse(ctx.params ?? {});
    if (!parsed.success) {
      throw new Error(
        `invalid bench params: ${
          parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
        }`,
      );
    }
    const { quick, kernels: filter, training } = parsed.data;
    const runKernels = filter === undefined || filter.length > 0;
    const total = (runKernels ? 1 : 0) + (training ? 1 : 0);
    if (total === 0) throw new Error("bench: nothing to run (kernels is empty and training is false)");

    // A retried job measures again: its rows from an earlier attempt are replaced, not doubled.
    await ctx.db.delete(benchResults).where(eq(benchResults.jobId, ctx.jobId));
    const parts: BenchReportLike[] = [];
    let step = 0;
    const phases: { message: string; opts: { kernels: boolean; training: boolean } }[] = [];
    if (runKernels) phases.push({ message: "kernels", opts: { kernels: true, training: false } });
    if (training) phases.push({ message: "training step", opts: { kernels: false, training: true } });
    for (const phase of phases) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      ctx.progress({ step, total, message: `measuring ${phase.message}` });
      const report = await run({ quick, ...phase.opts });
      parts.push(report);
      // Each measured row is written as soon as its phase ends, and shows up in the live event.
      const rows = benchRows(report, ctx.jobId, filter);
      for (const [i, row] of rows.entries()) {
        await ctx.db.insert(benchResults).values(row);
        ctx.progress({
          step: step + (i + 1) / rows.length,
          total,
          message: `${row.kernel} ${row.version} ${row.shape}: ${row.ms.toFixed(3)} ms`,
          metrics: { ms: row.ms, ...(row.gflops != null ? { gflops: row.gflops } : {}) },
        });
      }
      step++;
    }
    ctx.progress({ step: total, total, message: "done" });
    const stored = parts.flatMap((p) => benchRows(p, ctx.jobId, filter));
    return {
      device: parts[0].device,
      timer: parts[0].timer,
      quick,
      rows: stored.length,
      kernels: stored.filter((r) => r.kernel !== TRAIN_STEP_KERNEL).length,
      training: stored.filter((r) => r.kernel === TRAIN_STEP_KERNEL).length,
    };
  };
}

export const benchHandler: JobHandler = makeBenchHandler();
