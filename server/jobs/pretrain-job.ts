/**
 * `pretrain`: pretrains one ladder size with server/lab/pretrain.ts (`pretrainSize`), reporting progress
 * and the loss / validation loss / knowledge curves as metrics of a run with role "pretrain", and keeps the
 * `models` row in step (status, validation loss, checkpoint directory, pretraining facts): pretrainInJob,
 * which the demo job shares. The checkpoint on disk is the source of truth and resumable: a requeued job
 * continues where the files stopped. With a shared artifact store (artifact-store.ts) the files are pulled
 * first and published after every checkpoint, so a job requeued to another machine continues there.
 */
import { and, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { models, runs } from "../../db/schema.ts";
import { SIZE_NAME } from "../contract/fields.ts";
import { PretrainCreate } from "../contract/jobs.ts";
import { METRIC_SERIES } from "../contract/series.ts";
import { publishModel, pullModel } from "../lab/artifact-store.ts";
import { type Curves, modelKey } from "../lab/model-store.ts";
import {
  type PretrainOptions,
  type PretrainProgress,
  type PretrainResult,
  pretrainSize,
} from "../lab/pretrain.ts";
import { markRunDone } from "./job-context.ts";
import type { JobContext, JobHandler, MetricRow } from "./registry.ts";

export const PretrainJobParams = PretrainCreate.extend({ size: SIZE_NAME });

/** The pretraining run the handler calls: server/lab/pretrain.ts's `pretrainSize`, or a test's stand-in. */
export type PretrainSize = (
  opts: PretrainOptions & { size: string; dataDir: string },
) => Promise<PretrainResult>;

/** Metric names of the pretraining curves (one series each, by optimizer step). */
export const CURVE_METRICS = {
  train: METRIC_SERIES.trainLoss,
  val: METRIC_SERIES.valLoss,
  knowledge: METRIC_SERIES.knowledge,
} as const;

/** The curves of a status as metric rows. */
export function curveRows(curves: Curves): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const [curve, name] of Object.entries(CURVE_METRICS) as [keyof typeof CURVE_METRICS, string][]) {
    for (const point of curves[curve] ?? []) rows.push({ name, step: point.step, value: point.value });
  }
  return rows;
}

/** Where a pretraining inside a job reports: the size's progress, its live figures, and its run. */
export type PretrainReport = (p: PretrainProgress, live: Record<string, number>, runId: number) => void;

/**
 * Pretrains one size as part of job `ctx`: the `models` row follows it (pretraining, then pretrained,
 * partial or failed), its curves go to the job's pretrain run for that size (found again after a requeue,
 * so they stay one series), and each progress update goes to `report`. The pretrain and demo jobs share it;
 * the demo passes the signal that also stops a size when the size training beside it fails.
 */
export async function pretrainInJob(
  ctx: JobContext,
  params: PretrainJobParams,
  report: PretrainReport,
  pretrain: PretrainSize = pretrainSize,
  signal: AbortSignal = ctx.signal,
): Promise<{ result: PretrainResult; runId: number }> {
  const { size, seed, tokens, force, realShare, leakage, splitSeeds } = params;
  await ctx.db.insert(models).values({ name: size, status: "pretraining", jobId: ctx.jobId })
    .onConflictDoUpdate({
      target: models.name,
      set: { status: "pretraining", jobId: ctx.jobId, updatedAt: sql`now()` },
    });
  let [run] = await ctx.db.select().from(runs).where(
    and(eq(runs.jobId, ctx.jobId), eq(runs.role, "pretrain"), eq(runs.modelSize, size)),
  );
  if (!run) {
    [run] = await ctx.db.insert(runs).values({
      jobId: ctx.jobId,
      role: "pretrain",
      modelSize: size,
      status: "running",
      config: params,
    }).returning();
  }

  try {
    // Another machine may have trained it further (or finished it) before this one leased the job.
    if (!force) await pullModel(ctx.dataDir, size);
    const result = await pretrain({
      size,
      dataDir: ctx.dataDir,
      onCheckpoint: async () => {
        await publishModel(ctx.dataDir, size);
      },
      seed,
      tokens,
      force,
      corpus: { realShare, leakage, splitSeeds },
      signal,
      onProgress(p) {
        const live: Record<string, number> = {};
        const rows: MetricRow[] = [];
        if (p.trainLoss !== undefined) {
          live.loss = p.trainLoss;
          rows.push({ name: CURVE_METRICS.train, step: p.step, value: p.trainLoss });
        }
        if (p.valLoss !== undefined) {
          live.valLoss = p.valLoss;
          rows.push({ name: CURVE_METRICS.val, step: p.step, value: p.valLoss });
        }
        if (p.knowledge !== undefined) {
          live.knowledge = p.knowledge;
          rows.push({ name: CURVE_METRICS.knowledge, step: p.step, value: p.knowledge });
        }
        if (rows.length > 0) ctx.metrics(run.id, rows);
        report(p, live, run.id);
      },
    });
    const status = result.status;
    // The saved curves are complete (a cached or resumed run reported only part of them live).
    ctx.metrics(run.id, curveRows(status.curves));
    await ctx.flushMetrics();
    if (result.cached) await publishModel(ctx.dataDir, size); // trained before the store was there
    await ctx.db.update(models).set({
      params: status.params,
      status: status.status === "pretrained" ? "pretrained" : "partial",
      checkpointKey: modelKey(ctx.dataDir, size),
      valLoss: status.val_loss,
      pretrainInfo: {
        tokens: status.tokens,
        steps: status.step,
        totalSteps: status.totalSteps,
        wallSeconds: status.wallSeconds,
        tokensPerSecond: status.tokensPerSecond,
        knowledge: status.knowledge,
        seed: status.seed,
        corpusHash: status.corpusHash,
        corpus: status.corpus,
        tokenizerId: status.tokenizerId,
        cached: result.cached,
      },
      updatedAt: sql`now()`,
    }).where(eq(models.name, size));
    await markRunDone(ctx.db, run.id);
    return { result, runId: run.id };
  } catch (err) {
    // Stopped (cancel, shutdown, lost lease): the checkpoint on disk is partial and resumable.
    const stopped = signal.aborted;
    await ctx.db.update(models).set({ status: stopped ? "partial" : "failed", updatedAt: sql`now()` })
      .where(and(eq(models.name, size), eq(models.jobId, ctx.jobId)));
    await ctx.db.update(runs).set({ status: stopped ? "cancelled" : "failed", finishedAt: sql`now()` })
      .where(eq(runs.id, run.id));
    throw err;
  }
}

/** The job's parameters, or an error naming each bad field. */
export function parsePretrainParams(params: unknown): PretrainJobParams {
  const parsed = PretrainJobParams.safeParse(params ?? {});
  if (!parsed.success) {
    throw new Error(
      `invalid pretrain params: ${
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
      }`,
    );
  }
  return parsed.data;
}

export function makePretrainHandler(pretrain: PretrainSize = pretrainSize): JobHandler {
  return async (ctx: JobContext) => {
    const params = parsePretrainParams(ctx.params);
    const report: PretrainReport = (p, live, runId) =>
      ctx.progress({
        step: p.step,
        total: p.totalSteps,
        unit: "steps",
        message: `${p.tokens.toLocaleString("en-US")} / ${p.totalTokens.toLocaleString("en-US")} tokens`,
        metrics: live,
        runIds: [runId],
      });
    const { result, runId } = await pretrainInJob(ctx, params, report, pretrain);
    const status = result.status;
    return {
      size: params.size,
      runId,
      dir: result.dir,
      cached: result.cached,
      resumedFromStep: result.resumedFromStep,
      valLoss: status.val_loss,
      knowledge: status.knowledge,
      params: status.params,
      steps: status.step,
    };
  };
}

export const pretrainHandler: JobHandler = makePretrainHandler();

/** Validates what a pretrain job needs before it is queued (the API checks the size name). */
export type PretrainJobParams = z.infer<typeof PretrainJobParams>;
