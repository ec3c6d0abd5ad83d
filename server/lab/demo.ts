/**
 * The demo: what a new user runs first to see weak-to-strong generalization with full finetuning. It
 * pretrains the CPU ladder's four smallest sizes on the lab's world, two at a time (pretrain-pool.ts;
 * cached: a size already pretrained is not trained again) and sweeps every world task over every pair,
 * naive students everywhere and the aux-confidence loss at the largest gap, with the default finetuning
 * recipe (ladder.ts), over two seeds (one seed is faster but leaves the median's interval across zero:
 * README).
 * The headline is the paper's statistic: the median PGR over the suite's cells, final checkpoint, with
 * its bootstrap interval, beside the count of pairs per task whose gap is real and the aux-confidence
 * loss against naive at the largest gap.
 */

import type { CellSummary, MedianSummary } from "../contract/results.ts";
import type { MethodName } from "../contract/methods.ts";
import { ladderSize } from "./ladder.ts";
import { sum } from "./metrics.ts";
import type { PretrainProgress, PretrainResult } from "./pretrain.ts";
import { type PretrainRequest, pretrainSizes } from "./pretrain-pool.ts";
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
  /**
   * Pretrains one size (default pretrainInWorker); the sizes go two at a time either way (pretrain-pool.ts).
   * The demo job records each size in the store through it; tests stand in.
   */
  pretrain?: (opts: PretrainRequest & { size: string }) => Promise<PretrainResult>;
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

/**
 * The sizes PRETRAIN_CONCURRENCY at a time (pretrain-pool.ts; by default each in a worker): the same models,
 * sooner. Progress is the tokens of every size over all their budgets, so one bar and one ETA cover the phase.
 */
function pretrainAll(deps: DemoDeps, sizes: readonly string[]): Promise<PretrainResult[]> {
  const budgets = sizes.map((size) => ladderSize(size).tokens);
  const done = sizes.map(() => 0);
  return pretrainSizes(
    sizes.map((size, i) => ({
      size,
      dataDir: deps.dataDir,
      signal: deps.signal,
      onProgress: (p: PretrainProgress) => {
        [done[i], budgets[i]] = [p.tokens, p.totalTokens];
        deps.onProgress?.({
          phase: "pretrain",
          step: sum(done),
          total: sum(budgets),
          stage: `pretrain ${sizes.join(", ")}`,
          unit: "tokens",
        });
      },
    })),
    { run: deps.pretrain },
  );
}

/** Pretrains what is missing, runs the demo sweep, and reads the headline. */
export async function runDemo(deps: DemoDeps, sweep: SweepOptions = DEMO_SWEEP): Promise<DemoResult> {
  const started = performance.now();
  const results = await pretrainAll(deps, sweep.sizes);
  const cachedSizes = sweep.sizes.filter((_, i) => results[i].cached);
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
