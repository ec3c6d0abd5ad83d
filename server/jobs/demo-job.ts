/**
 * `demo`: the demo (server/lab/demo.ts, runDemo) as one job. Its params are the demo sweep's request
 * (SweepCreate) plus the experimentId of the sweep row the API created with it, so the dashboard lists and
 * shows it as any sweep. Each size not yet pretrained is pretrained the way the pretrain job does it
 * (pretrainInJob: its models row, a pretrain run with its curves), two sizes at a time, each in a worker
 * of its own (pretrain-pool.ts); then the sweep's experiments are stored the way the sweep job stores them
 * (sweepRecording), two groups of experiments at a time, each in a worker with a recorder of its own
 * (sweep-pool.ts). Progress goes one phase at a time — pretraining in tokens over every size still to
 * pretrain, then the sweep's steps — so the ETA is the current phase's and the message names the phase.
 * The result is the sweep's summary with the demo's headline.
 */
import { and, eq } from "drizzle-orm";
import { models } from "../../db/schema.ts";
import { SweepCreate } from "../contract/experiments.ts";
import type { CellSummary } from "../contract/results.ts";
import { type DemoHeadline, runDemo } from "../lab/demo.ts";
import { ladderSize } from "../lab/ladder.ts";
import { sizesNotPretrained } from "../lab/model-store.ts";
import { sum } from "../lab/metrics.ts";
import type { PretrainProgress } from "../lab/pretrain.ts";
import { pretrainInWorker } from "../lab/pretrain-pool.ts";
import { SWEEP_CONCURRENCY } from "../lab/sweep-pool.ts";
import type { runSweep } from "../lab/sweep.ts";
import {
  finite,
  parseExperimentParams,
  sweepOptions,
  sweepRecording,
  sweepSummary,
} from "./experiment-jobs.ts";
import { pretrainInJob, PretrainJobParams, type PretrainReport, type PretrainSize } from "./pretrain-job.ts";
import type { JobContext, JobHandler } from "./registry.ts";

/** What the demo job runs: the real pretraining and sweep, or a test's stand-ins. */
export interface DemoRunners {
  pretrain?: PretrainSize;
  sweep?: typeof runSweep;
}

const tokenCount = (n: number) => n.toLocaleString("en-US");

/**
 * Progress of the pretraining phase, whose sizes train two at a time: tokens done over the token budgets of
 * every size to pretrain, so the worker's ETA (rate since the phase began) covers the sizes still to come.
 * The message names the sizes training now; the figures are their latest training losses, the runIds their
 * runs. `report(size)` is a size's PretrainReport; `finished(size)` takes it off the running list.
 */
function pretrainPhaseProgress(ctx: JobContext, toPretrain: readonly string[]) {
  const budgets = new Map(toPretrain.map((size) => [size, ladderSize(size).tokens]));
  const done = new Map(toPretrain.map((size) => [size, 0]));
  const running = new Map<string, { runId: number; loss?: number }>();
  const finished = new Set<string>();
  const report = (size: string): PretrainReport => (p: PretrainProgress, live, runId) => {
    budgets.set(size, p.totalTokens);
    done.set(size, p.tokens);
    running.set(size, { runId, loss: live.loss ?? running.get(size)?.loss });
    const [step, total] = [sum(done.values()), sum(budgets.values())];
    const losses = [...running].flatMap(([s, r]) => r.loss === undefined ? [] : [[`${s} loss`, r.loss]]);
    const now = [...running.keys()].join(" and ");
    const sizes = `${now} (${finished.size} of ${toPretrain.length} sizes done)`;
    ctx.progress({
      step,
      total,
      unit: "tokens",
      message: `phase 1/2, pretraining ${sizes}: ${tokenCount(step)} / ${tokenCount(total)} tokens; ` +
        "the sweep follows",
      metrics: Object.fromEntries(losses),
      runIds: [...running.values()].map((r) => r.runId),
    });
  };
  const finishedSize = (size: string) => {
    running.delete(size);
    finished.add(size);
  };
  return { report, finished: finishedSize };
}

/** The headline as a job result: cells without their experiments, NaN as null. */
function headlineSummary(h: DemoHeadline) {
  const cell = ({ results: _, ...c }: CellSummary & { results?: unknown }) => ({ ...c, pgr: finite(c.pgr) });
  const median = (m: DemoHeadline["naive"]) => m && { ...m, median_pgr: finite(m.median_pgr) };
  return {
    ...h,
    naive: median(h.naive),
    auxconf: median(h.auxconf),
    largestGap: {
      ...h.largestGap,
      naive: h.largestGap.naive.map(cell),
      auxconf: h.largestGap.auxconf.map(cell),
    },
  };
}

export function makeDemoHandler(runners: DemoRunners = {}): JobHandler {
  const pretrain = runners.pretrain ?? pretrainInWorker;
  return async (ctx: JobContext) => {
    const { experimentId, config } = parseExperimentParams<SweepCreate>(SweepCreate, ctx.params, "demo");
    const options = sweepOptions(config);
    const toPretrain = await sizesNotPretrained(ctx.dataDir, options.sizes);
    const phase = pretrainPhaseProgress(ctx, toPretrain);
    const { onProgress: sweepProgress, ...recording } = await sweepRecording(ctx, experimentId, {
      lanes: SWEEP_CONCURRENCY,
    });
    const demo = await runDemo({
      ...recording,
      dataDir: ctx.dataDir,
      sweep: runners.sweep,
      pretrain: async (opts) => {
        // A size pretrained before takes the cached path, which checks that its checkpoint still loads.
        if (!toPretrain.includes(opts.size)) return await pretrain(opts);
        const params = PretrainJobParams.parse({ size: opts.size });
        const { result } = await pretrainInJob(ctx, params, phase.report(opts.size), pretrain, opts.signal)
          .finally(() => phase.finished(opts.size));
        // The job goes on after this size: its models row must not keep saying it is being pretrained.
        await ctx.db.update(models).set({ jobId: null })
          .where(and(eq(models.name, opts.size), eq(models.jobId, ctx.jobId)));
        return result;
      },
      // The pretraining phase reports through pretrainInJob, which knows the size and its run.
      onProgress: (p) => {
        if (p.phase === "sweep") {
          sweepProgress?.({ ...p, stage: `phase 2/2, sweep: ${p.stage}` });
        }
      },
    }, options);
    return {
      experimentId,
      ...sweepSummary(demo.sweep),
      headline: headlineSummary(demo.headline),
      seconds: demo.seconds,
      cachedSizes: demo.cachedSizes,
      pretrainedNow: toPretrain,
    };
  };
}

export const demoHandler: JobHandler = makeDemoHandler();
