/**
 * The demo: what a new user runs first to see weak-to-strong generalization with full finetuning. It
 * pretrains the CPU ladder's four smallest sizes on the lab's world (cached: a size already pretrained is
 * not trained again) and sweeps every world task over every pair, naive students everywhere and the
 * aux-confidence loss at the largest gap, with the default finetuning recipe (ladder.ts), over two seeds
 * (one seed fits 20 minutes on 2 cores but leaves the median's interval across zero: README).
 * The headline is the paper's statistic: the median PGR over the suite's cells, final checkpoint, with
 * its bootstrap interval, beside the count of pairs per task whose gap is real and the aux-confidence
 * loss against naive at the largest gap.
 */

import type { CellSummary, MedianSummary } from "../contract/results.ts";
import type { MethodName } from "../contract/methods.ts";
import {
  type PretrainOptions,
  type PretrainProgress,
  type PretrainResult,
  pretrainSize,
} from "./pretrain.ts";
import { runSweep, type SweepDeps, type SweepOptions, type SweepResult } from "./sweep.ts";

export const DEMO_SWEEP: SweepOptions = {
  tasks: ["world"],
  sizes: ["nano", "micro", "mini", "small"],
  methods: ["naive", "auxconf"],
  auxconfAt: "largest-gap",
  seeds: [0, 1],
};

export interface DemoProgress {
  phase: "pretrain" | "sweep";
  /** Done and total of this phase, in `unit`: tokens while pretraining a size, then the sweep's experiments. */
  step: number;
  total: number;
  stage: string;
  unit?: string;
}

export interface DemoHeadline {
  /** Median PGR of the naive students over every task's cells (gap too small left out). */
  naive: MedianSummary | null;
  auxconf: MedianSummary | null;
  /** The aux-confidence loss beside naive at the largest gap, per task. */
  largestGap: { weak: string; strong: string; naive: CellSummary[]; auxconf: CellSummary[] };
  /** Pairs whose gap is real (not "gap too small"), per task, among the naive cells. */
  realPairs: Record<string, number>;
  /** The figures the issue asks of the demo. */
  checks: { naiveAboveZero: boolean; threeRealPairsPerTask: boolean };
}

export interface DemoResult {
  sweep: SweepResult;
  headline: DemoHeadline;
  seconds: { pretrain: number; sweep: number; total: number };
  /** Sizes that were already pretrained (not trained again). */
  cachedSizes: string[];
}

export interface DemoDeps extends Omit<SweepDeps, "onProgress"> {
  dataDir: string;
  onProgress?: (p: DemoProgress) => void;
  /** Pretrains one size (default pretrainSize): the demo job records it in the store, tests stand in. */
  pretrain?: (opts: PretrainOptions & { size: string; dataDir: string }) => Promise<PretrainResult>;
  /** Runs the sweep (default runSweep); tests stand in. */
  sweep?: typeof runSweep;
}

/** The headline of a demo sweep: medians, real pairs per task, aux-confidence at the largest gap. */
export function demoHeadline(sweep: SweepResult, sizes: readonly string[]): DemoHeadline {
  const overall = (method: MethodName) =>
    sweep.medians.find((m) => m.task === null && m.method === method) ?? null;
  const naiveCells = sweep.cells.filter((c) => c.method === "naive");
  const realPairs: Record<string, number> = {};
  for (const c of naiveCells) realPairs[c.task] = (realPairs[c.task] ?? 0) + (c.gap_too_small ? 0 : 1);
  const [weak, strong] = [sizes[0], sizes[sizes.length - 1]];
  const atGap = (method: MethodName) =>
    sweep.cells.filter((c) => c.method === method && c.weak === weak && c.strong === strong);
  const naive = overall("naive");
  return {
    naive,
    auxconf: overall("auxconf"),
    largestGap: { weak, strong, naive: atGap("naive"), auxconf: atGap("auxconf") },
    realPairs,
    checks: {
      naiveAboveZero: naive !== null && naive.median_ci.lo > 0,
      threeRealPairsPerTask: Object.values(realPairs).length > 0 &&
        Object.values(realPairs).every((n) => n >= 3),
    },
  };
}

/** Pretrains what is missing, runs the demo sweep, and reads the headline. */
export async function runDemo(deps: DemoDeps, sweep: SweepOptions = DEMO_SWEEP): Promise<DemoResult> {
  const started = performance.now();
  const cachedSizes: string[] = [];
  for (const size of sweep.sizes) {
    const result = await (deps.pretrain ?? pretrainSize)({
      size,
      dataDir: deps.dataDir,
      signal: deps.signal,
      onProgress: (p: PretrainProgress) =>
        deps.onProgress?.({
          phase: "pretrain",
          step: p.tokens,
          total: p.totalTokens,
          stage: `pretrain ${size}`,
          unit: "tokens",
        }),
    });
    if (result.cached) cachedSizes.push(size);
  }
  const pretrained = performance.now();
  const result = await (deps.sweep ?? runSweep)(sweep, {
    ...deps,
    onProgress: (p) => deps.onProgress?.({ phase: "sweep", ...p }),
  });
  const done = performance.now();
  return {
    sweep: result,
    headline: demoHeadline(result, sweep.sizes),
    seconds: {
      pretrain: (pretrained - started) / 1000,
      sweep: (done - pretrained) / 1000,
      total: (done - started) / 1000,
    },
    cachedSizes,
  };
}
