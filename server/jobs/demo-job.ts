/**
 * `demo`: the demo (server/lab/demo.ts, runDemo) as one job. Its params are the demo sweep's request
 * (SweepCreate) plus the experimentId of the sweep row the API created with it, so the dashboard lists and
 * shows it as any sweep. Each size not yet pretrained is pretrained the way the pretrain job does it
 * (pretrainInJob: its models row, a pretrain run with its curves); then the sweep's experiments are stored
 * the way the sweep job stores them (sweepRecording). Progress goes one phase at a time — pretraining in
 * tokens over every size still to pretrain, then the sweep's steps — so the ETA is the current phase's
 * and the message names the phase. The result is the sweep's summary with the demo's headline.
 */
import { and, eq } from "drizzle-orm";
import { models } from "../../db/schema.ts";
import { SweepCreate } from "../contract/experiments.ts";
import type { CellSummary } from "../contract/results.ts";
import { type DemoHeadline, runDemo } from "../lab/demo.ts";
import { ladderSize } from "../lab/ladder.ts";
import { readStatus } from "../lab/model-store.ts";
import { type PretrainProgress, pretrainSize } from "../lab/pretrain.ts";
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

/** The sizes the demo pretrains: those not pretrained on disk (a partial one resumes). */
export async function sizesToPretrain(dataDir: string, sizes: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const size of sizes) {
    if ((await readStatus(dataDir, size))?.status !== "pretrained") missing.push(size);
  }
  return missing;
}

const tokenCount = (n: number) => n.toLocaleString("en-US");

/**
 * Progress of the pretraining phase: tokens done over the token budgets of every size to pretrain, so the
 * worker's ETA (rate since the phase began) covers the sizes still to come, not only the current one.
 */
function pretrainPhaseProgress(ctx: JobContext, toPretrain: readonly string[]) {
  const budgets = new Map(toPretrain.map((size) => [size, ladderSize(size).tokens]));
  return (size: string): PretrainReport => (p: PretrainProgress, live, runId) => {
    budgets.set(size, p.totalTokens);
    const index = toPretrain.indexOf(size);
    const before = toPretrain.slice(0, index).reduce((sum, s) => sum + budgets.get(s)!, 0);
    ctx.progress({
      step: before + p.tokens,
      total: [...budgets.values()].reduce((sum, n) => sum + n, 0),
      unit: "tokens",
      message: `phase 1/2, pretraining ${size} (${index + 1} of ${toPretrain.length}): ` +
        `${tokenCount(p.tokens)} / ${tokenCount(p.totalTokens)} tokens; the sweep follows`,
      metrics: live,
      runIds: [runId],
    });
  };
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
  const pretrain = runners.pretrain ?? pretrainSize;
  return async (ctx: JobContext) => {
    const { experimentId, config } = parseExperimentParams<SweepCreate>(SweepCreate, ctx.params, "demo");
    const options = sweepOptions(config);
    const toPretrain = await sizesToPretrain(ctx.dataDir, options.sizes);
    const pretrainProgress = pretrainPhaseProgress(ctx, toPretrain);
    const { onProgress: sweepProgress, ...recording } = await sweepRecording(ctx, experimentId);
    const demo = await runDemo({
      ...recording,
      dataDir: ctx.dataDir,
      sweep: runners.sweep,
      pretrain: async (opts) => {
        // A size pretrained before takes the cached path, which checks that its checkpoint still loads.
        if (!toPretrain.includes(opts.size)) return await pretrain(opts);
        const params = PretrainJobParams.parse({ size: opts.size });
        const { result } = await pretrainInJob(ctx, params, pretrainProgress(opts.size), pretrain);
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
