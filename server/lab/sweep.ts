/**
 * Sweeps: every task × (weak, strong) pair with weak smaller than strong × method × seed, run through
 * runExperiment (which caches weak models and ceilings, so each is trained once per task and seed).
 * Each cell (task, pair, method) is summarized across seeds — mean and 95 % t-interval of every
 * accuracy and of PGR — and flagged "gap too small" when ceiling − weak is within noise (test-sampling
 * noise of the mean accuracies, or the seed-to-seed spread of the gap, whichever is larger); flagged
 * cells are left out of the median PGR per task × method and per method, the paper's summary statistic.
 * summarizeResults is that rule's one home: the CLI's sweep, the API's results summary and the dashboard
 * all show what it returns.
 */

import { expandWorldSuite, isWorldSuite } from "../tasks/world-tasks.ts";
import { optionConflicts } from "../contract/experiments.ts";
import { resultRecord, resultsCsv } from "../contract/result-record.ts";
import { pairError, sortModelRefs, sweepSizesError } from "../contract/ladder-rule.ts";
import {
  gapNoise,
  gapTooSmall,
  mean,
  medianPgr,
  pgr,
  shareInterval,
  shareTInterval95,
  suiteMedianInterval,
  sum,
  tInterval95,
} from "./metrics.ts";
import type { MethodName } from "../contract/methods.ts";
import type {
  Agreement,
  CellSummary,
  ExperimentResult,
  FinetuneRecipe,
  MeanCi,
  MedianSummary,
  ResultsSummary,
} from "../contract/results.ts";
import { type ExperimentDeps, type ExperimentOptions, runExperiment } from "./w2s.ts";

export interface SweepOptions extends FinetuneRecipe {
  tasks: string[];
  sizes: string[];
  methods: MethodName[];
  seeds: number[];
  mode?: ExperimentOptions["mode"];
  epochs?: number;
  lr?: number;
  batchSize?: number;
  alphaMax?: number;
  probes?: boolean;
  maxExamples?: number;
  evaluateOn?: "test" | "validation";
  /** Train the random-init control for each strong size (cached: once per task, seed and size). */
  control?: boolean;
  /** The ladder saw the tasks' test items in pretraining (checked per size; default false). */
  leakage?: boolean;
  /**
   * Where the aux-confidence loss runs: every pair (default), or only the pair with the largest gap in
   * size (the smallest weak, the largest strong) — the paper's finding is about large gaps.
   */
  auxconfAt?: "all" | "largest-gap";
}

/** A sweep's cell keeps its experiments. */
export interface SweepCell extends CellSummary {
  results: ExperimentResult[];
}

export interface SweepResult {
  cells: SweepCell[];
  medians: MedianSummary[];
  experiments: number;
  seconds: number;
}

/** All (weak, strong) pairs with weak before strong in the given size order. */
export function sizePairs(sizes: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < sizes.length; i++) {
    for (let j = i + 1; j < sizes.length; j++) pairs.push([sizes[i], sizes[j]]);
  }
  return pairs;
}

/** The mean over seeds with its t-interval. */
function meanCi(values: number[]): MeanCi {
  const t = tInterval95(values);
  return { mean: t.mean, lo: t.lo, hi: t.hi };
}

/** The mean of a share (an accuracy) over seeds with its t-interval cut to [0, 1] (shareTInterval95). */
function shareMeanCi(values: number[]): MeanCi {
  const t = shareTInterval95(values);
  return { mean: t.mean, lo: t.lo, hi: t.hi };
}

function meanAgreement(list: Agreement[]): Agreement {
  const avg = (key: keyof Agreement) => {
    const values = list.map((a) => a[key]).filter((v): v is number => v !== null);
    return values.length ? mean(values) : null;
  };
  return {
    all: avg("all"),
    supervisor_correct: avg("supervisor_correct"),
    supervisor_wrong: avg("supervisor_wrong"),
  };
}

/**
 * Each agreement's 95 % interval: over several seeds the t-interval of the per-seed shares (cut to [0, 1]);
 * for one seed the Wilson interval over its test examples of that subset (those the supervisor got right
 * number weak accuracy × test size, since the subsets are read on the same final weak model's test
 * predictions).
 */
export function agreementIntervals(results: ExperimentResult[]): CellSummary["agreement_ci"] {
  const interval = (key: keyof Agreement) => {
    if (results.length > 1) {
      const t = shareTInterval95(results.map((r) => r.agreement[key]).filter((v): v is number => v !== null));
      return Number.isFinite(t.lo) ? { lo: t.lo, hi: t.hi } : null;
    }
    const [r] = results;
    const share = r.agreement[key];
    const right = Math.round(r.weak_acc * r.n.test);
    const n = key === "all" ? r.n.test : key === "supervisor_correct" ? right : r.n.test - right;
    return share === null || !(n > 0) ? null : shareInterval(share, n);
  };
  return {
    all: interval("all"),
    supervisor_correct: interval("supervisor_correct"),
    supervisor_wrong: interval("supervisor_wrong"),
  };
}

export function summarizeCell(results: ExperimentResult[], settings = ""): CellSummary {
  const first = results[0];
  const controls = results.flatMap((r) => (r.control ? [r.control.ceiling_acc] : []));
  const weak = shareMeanCi(results.map((r) => r.weak_acc));
  const ceiling = shareMeanCi(results.map((r) => r.ceiling_acc));
  const student = shareMeanCi(results.map((r) => r.student_acc));
  const gaps = results.map((r) => r.ceiling_acc - r.weak_acc);
  const gapSpread = results.length >= 2 ? (meanCi(gaps).hi - meanCi(gaps).lo) / 2 : 0;
  const noise = Math.max(gapNoise(weak.mean, ceiling.mean, first.n.test), gapSpread);
  return {
    task: first.task,
    weak: first.weak,
    strong: first.strong,
    method: first.method,
    seeds: results.map((r) => r.seed),
    weak_acc: weak,
    ceiling_acc: ceiling,
    student_acc: student,
    pgr: pgr(weak.mean, ceiling.mean, student.mean),
    // Several seeds: the t-interval over seeds; one seed: that experiment's paired bootstrap over test examples.
    pgr_ci: results.length === 1 && first.ci
      ? { mean: first.pgr, ...first.ci.pgr }
      : meanCi(results.map((r) => r.pgr)),
    gap_too_small: gapTooSmall(weak.mean, ceiling.mean, noise),
    gap_noise: noise,
    agreement: meanAgreement(results.map((r) => r.agreement)),
    agreement_ci: agreementIntervals(results),
    oracle_student_acc: mean(results.map((r) => r.oracle.student_acc)),
    oracle_pgr: pgr(
      mean(results.map((r) => r.oracle.weak_acc)),
      mean(results.map((r) => r.oracle.ceiling_acc)),
      mean(results.map((r) => r.oracle.student_acc)),
    ),
    control_acc: controls.length > 0 ? shareMeanCi(controls) : null,
    ...settings ? { settings } : {},
  };
}

/**
 * The median PGR of each task × method and of each method over all tasks (flagged cells left out), per
 * settings (cells of different settings are never pooled), with the suite's interval (suiteMedianInterval:
 * each cell's PGR drawn from its own interval; over one cell, that cell's own).
 */
export function summarizeMedians(cells: readonly CellSummary[]): MedianSummary[] {
  const median = (task: string | null, method: MethodName, group: readonly CellSummary[]): MedianSummary => {
    const pairs = group.map((c) => ({
      weakAcc: c.weak_acc.mean,
      ceilingAcc: c.ceiling_acc.mean,
      studentAcc: c.student_acc.mean,
      gapTooSmall: c.gap_too_small,
    }));
    const { median, used, skipped } = medianPgr(pairs);
    const usable = group.filter((c) => !c.gap_too_small && Number.isFinite(c.pgr));
    const median_ci = suiteMedianInterval(
      usable.map((c) => ({ pgr: c.pgr, interval: c.pgr_ci, seeds: c.seeds.length })),
    );
    const settings = group[0]?.settings;
    return {
      task,
      method,
      median_pgr: median,
      median_ci,
      cells: used,
      skipped,
      ...settings ? { settings } : {},
    };
  };
  const groups = (list: readonly CellSummary[], by: (c: CellSummary) => string) => [
    ...Map.groupBy(list, by).values(),
  ];
  return groups(cells, (c) => c.settings ?? "").flatMap((same) => {
    const byTask = groups(same, (c) => `${c.task}\u0000${c.method}`)
      .map((group) => median(group[0].task, group[0].method, group));
    const byMethod = groups(same, (c) => c.method).map((group) => median(null, group[0].method, group));
    return [...byTask, ...byMethod];
  });
}

/**
 * Groups experiments into cells (task, pair, method and settings; seeds pooled) and summarizes them: the
 * one rule. `settingsOf` tells stored experiments' settings apart (contract settingsLabel; a sweep's share
 * one). A seed run again with the same settings counts once, by its latest result: pooling repeats would
 * narrow the interval over seeds with copies of one run.
 */
export function summarizeResults(
  results: readonly ExperimentResult[],
  settingsOf: (index: number) => string = () => "",
): ResultsSummary & { groups: ExperimentResult[][] } {
  const groups = new Map<string, { settings: string; bySeed: Map<number, ExperimentResult> }>();
  results.forEach((r, i) => {
    const settings = settingsOf(i);
    const key = [r.task, r.weak, r.strong, r.method, settings].join("\u0000");
    const group = groups.get(key) ?? { settings, bySeed: new Map() };
    group.bySeed.set(r.seed, r);
    groups.set(key, group);
  });
  const cellGroups = [...groups.values()].map((g) => ({
    settings: g.settings,
    results: [...g.bySeed.values()],
  }));
  const cells = cellGroups.map((g) => summarizeCell(g.results, g.settings));
  return { cells, medians: summarizeMedians(cells), groups: cellGroups.map((g) => g.results) };
}

export interface SweepDeps extends ExperimentDeps {
  /** After each experiment (index counts from 0). */
  onExperiment?: (result: ExperimentResult, index: number, total: number) => void | Promise<void>;
  /** Skip experiments already finished (a resumed sweep job): index → result. */
  finished?: Map<number, ExperimentResult>;
  /** Run the sweep's groups of experiments several at a time (runInLanes); absent: one after another. */
  lanes?: SweepLanes;
}

/** What a lane reports through, its own: a job's recorder keeps one run in training per lane. */
export type LaneCallbacks = Pick<SweepDeps, "onStart" | "onEval" | "onRun" | "onExperiment">;

/** Runs some of a plan's experiments (runPlanned's shape): in this process, or in a worker (sweep-pool.ts). */
export type PlanRunner = (
  plan: readonly ExperimentOptions[],
  deps: SweepDeps,
  indices: readonly number[],
) => Promise<ExperimentResult[]>;

/**
 * A lane as runInLanes opens it: what runs its groups, its own callbacks (called instead of the sweep's:
 * a job's recorder per lane), and how it is closed.
 */
export interface SweepLane {
  run: PlanRunner;
  callbacks?: LaneCallbacks;
  close?: () => void;
}

export interface SweepLanes {
  /** Lanes at once; each runs whole groups (experiments that share roles), one after another. */
  concurrency: number;
  /** Opens lane `n` (0 … concurrency − 1). */
  open: (n: number) => SweepLane;
}

/**
 * The experiments a sweep runs, in order (task, pair, method, seed), after the checks a sweep needs: the
 * one list both the one-job sweep and the fanned-out sweep jobs index.
 */
export async function sweepPlan(
  opts: SweepOptions,
  models: ExperimentDeps["models"],
): Promise<ExperimentOptions[]> {
  if (opts.sizes.length < 2) throw new Error("a sweep needs at least two sizes");
  const order = models.sizes;
  const badSizes = sweepSizesError(order, opts.sizes);
  if (badSizes) throw new Error(badSizes);
  const conflicts = optionConflicts({ ...opts, studentMode: opts.mode });
  if (conflicts.length > 0) throw new Error(conflicts.map((c) => `${c.field}: ${c.message}`).join("; "));
  const sizes = sortModelRefs(order, opts.sizes);
  // The pairs the ladder rule allows: a snapshot (SIZE@PCT) is only ever the strong model.
  const pairs = sizePairs(sizes).filter(([weak, strong]) => pairError(order, weak, strong) === null);
  const plan: ExperimentOptions[] = [];
  const suite = opts.tasks.some(isWorldSuite) ? await models.world?.() : undefined;
  for (const task of expandWorldSuite(opts.tasks, suite)) {
    for (const [weak, strong] of pairs) {
      const largestGap = weak === pairs[0][0] && strong === pairs.at(-1)![1];
      for (const method of opts.methods) {
        if (method === "auxconf" && opts.auxconfAt === "largest-gap" && !largestGap) continue;
        for (const seed of opts.seeds) {
          plan.push({
            task,
            weak,
            strong,
            method,
            seed,
            mode: opts.mode,
            epochs: opts.epochs,
            lr: opts.lr,
            batchSize: opts.batchSize,
            // α_max belongs to the aux-confidence loss; the sweep's other methods do not take it.
            alphaMax: method === "auxconf" ? opts.alphaMax : undefined,
            probes: opts.probes,
            maxExamples: opts.maxExamples,
            evaluateOn: opts.evaluateOn,
            control: opts.control,
            leakage: opts.leakage,
            embeddings: opts.embeddings,
            headInit: opts.headInit,
            decayTo: opts.decayTo,
          });
        }
      }
    }
  }
  return plan;
}

/** A sweep's result from its experiments in plan order. */
export function sweepResult(results: readonly ExperimentResult[], seconds: number): SweepResult {
  const summary = summarizeResults(results);
  return {
    cells: summary.cells.map((cell, i) => ({ ...cell, results: summary.groups[i] })),
    medians: summary.medians,
    experiments: results.length,
    seconds,
  };
}

/** Runs the plan's experiments at `indices` (default all) in order, with progress counted over the plan. */
export async function runPlanned(
  plan: readonly ExperimentOptions[],
  deps: SweepDeps,
  indices: readonly number[] = plan.map((_, i) => i),
): Promise<ExperimentResult[]> {
  const results: ExperimentResult[] = [];
  for (const [k, i] of indices.entries()) {
    if (deps.signal?.aborted) throw deps.signal.reason ?? new Error("aborted");
    let result = deps.finished?.get(i);
    if (!result) {
      result = await runExperiment(plan[i], {
        ...deps,
        onProgress: (p) =>
          deps.onProgress?.({
            // Experiments done, the current one's share included: "93.1/112 experiments".
            step: k + p.step / Math.max(1, p.total),
            total: indices.length,
            unit: "experiments",
            stage: `${i + 1}/${plan.length} ${plan[i].task} ${plan[i].weak}→${plan[i].strong} ${
              plan[i].method
            } s${plan[i].seed}: ${p.stage}`,
          }),
      });
      await deps.onExperiment?.(result, i, plan.length);
    }
    results.push(result);
  }
  return results;
}

/**
 * The plan's indices grouped by task and seed, in plan order: the experiments that share roles (a weak
 * model and its labels, a ceiling, each cached per task, seed and size), so that no two lanes train one.
 */
export function roleGroups(plan: readonly ExperimentOptions[], indices: readonly number[]): number[][] {
  return [...Map.groupBy(indices, (i) => JSON.stringify([plan[i].task, plan[i].seed])).values()];
}

/**
 * Runs the plan's experiments `lanes.concurrency` groups at a time (roleGroups; each lane takes the next
 * group when its last is done), results in plan order. Progress counts experiments over every lane, each
 * running one's share included, and names what each lane runs. Experiments in `deps.finished` are not run
 * again. The first failure stops the other lanes (through their signal) and rejects with that failure.
 */
export async function runInLanes(
  plan: readonly ExperimentOptions[],
  deps: SweepDeps & { lanes: SweepLanes },
): Promise<ExperimentResult[]> {
  const results: ExperimentResult[] = new Array(plan.length);
  const todo = plan.map((_, i) => i).filter((i) => {
    const finished = deps.finished?.get(i);
    if (finished) results[i] = finished;
    return !finished;
  });
  const groups = roleGroups(plan, todo);
  const count = Math.min(deps.lanes.concurrency, groups.length);
  const share = new Array<number>(count).fill(0);
  const stages = new Array<string>(count).fill("");
  let done = plan.length - todo.length;
  const report = () =>
    deps.onProgress?.({
      step: done + sum(share),
      total: plan.length,
      unit: "experiments",
      stage: stages.filter(Boolean).join(" · "),
    });
  const stop = new AbortController();
  const signal = deps.signal ? AbortSignal.any([deps.signal, stop.signal]) : stop.signal;
  let failure: { error: unknown } | undefined;
  const lane = async (n: number) => {
    const opened = deps.lanes.open(n);
    const own = { ...deps, ...opened.callbacks };
    try {
      for (let group = groups.shift(); group && !failure; group = groups.shift()) {
        let groupDone = 0;
        const laneDeps: SweepDeps = {
          ...own,
          lanes: undefined,
          finished: undefined,
          signal,
          onProgress: (p) => {
            // runPlanned counts from the group's start: the experiments this lane finished, then a share.
            share[n] = Math.max(0, p.step - groupDone);
            stages[n] = p.stage;
            report();
          },
          onExperiment: async (result, index, total) => {
            await own.onExperiment?.(result, index, total);
            [done, share[n]] = [done + 1, 0];
            groupDone++;
            report();
          },
        };
        const ran = await opened.run(plan, laneDeps, group);
        group.forEach((i, k) => results[i] = ran[k]);
      }
    } catch (error) {
      failure ??= { error };
      stop.abort(error);
    } finally {
      stages[n] = "";
      opened.close?.();
    }
  };
  await Promise.all(Array.from({ length: count }, (_, n) => lane(n)));
  if (failure) throw deps.signal?.aborted ? deps.signal.reason ?? failure.error : failure.error;
  return results;
}

export async function runSweep(opts: SweepOptions, deps: SweepDeps): Promise<SweepResult> {
  const started = performance.now();
  const plan = await sweepPlan(opts, deps.models);
  const results = deps.lanes && deps.lanes.concurrency > 1
    ? await runInLanes(plan, { ...deps, lanes: deps.lanes })
    : await runPlanned(plan, deps);
  return sweepResult(results, (performance.now() - started) / 1000);
}

/** One CSV row per experiment (task, pair, method, seed): the export shape the API writes too. */
export function sweepCsv(result: SweepResult): string {
  return resultsCsv(result.cells.flatMap((c) => c.results.map(resultRecord)));
}
