/** Experiments and sweeps: one router factory for both (they differ in config schema and job type). */
import { isWorldSuite } from "../../tasks/world-tasks.ts";
import { and, desc, eq, inArray } from "drizzle-orm";
import { Hono } from "hono";
import type { LabDb } from "../../../db/client.ts";
import { experiments, jobs, probeResults, results, runs } from "../../../db/schema.ts";
import { cancelJob, enqueueJob } from "../../jobs/queue.ts";
import { ExperimentCreate, SweepCreate } from "../../contract/experiments.ts";
import { bootstrapChainError, pairError, sweepSizesError } from "../../contract/ladder-rule.ts";
import { refSize } from "../../contract/model-ref.ts";
import { LADDER } from "../../lab/ladder.ts";
import { missingSnapshotError } from "../../lab/model-source.ts";
import { ownLadder, ownLadderRefusal } from "../../lab/own-models.ts";
import { requireSize, requireTask } from "../catalog.ts";
import type { ApiDeps } from "../deps.ts";
import { z } from "zod";
import { ApiError, notFound } from "../errors.ts";
import { defineOperation, serve } from "../operation.ts";
import {
  Deleted,
  ExperimentCancelled,
  ExperimentCreated,
  ExperimentDetail,
  ExperimentWithJob,
} from "../responses.ts";
import { ExperimentListQuery, IdParam } from "../schemas.ts";

/** A 400 naming the field when a snapshot reference (SIZE@PCT) has no snapshot on disk. */
async function requireSnapshots(dataDir: string, refs: readonly string[], field: string): Promise<void> {
  for (const ref of refs) {
    const missing = await missingSnapshotError(dataDir, ref);
    if (missing) throw new ApiError(400, "missing_snapshot", `${field}: ${missing}`, { field });
  }
}

async function checkExperiment(db: LabDb, dataDir: string, config: ExperimentCreate): Promise<void> {
  const format = await requireTask(db, dataDir, config.task);
  if (format === "pairwise" && config.promptingShots !== undefined) {
    throw new ApiError(
      400,
      "prompting_on_pairwise",
      `promptingShots: ${config.task} is a pairwise task; the prompting baselines read a class word, which a ` +
        `comparison does not have: leave promptingShots out`,
      { field: "promptingShots" },
    );
  }
  if (config.ladder) {
    await requireOwnLadder(dataDir, config.ladder, {
      task: config.task,
      leakage: config.leakage,
      refs: [
        ...config.supervisor === "given" ? [] : [config.weak],
        config.strong,
        ...config.bootstrapSizes ?? [],
      ],
    });
  } else {
    if (config.supervisor !== "given") requireSize(refSize(config.weak), "weak");
    requireSize(refSize(config.strong), "strong");
  }
  const sizes = config.ladder ? (await ownLadder(dataDir, config.ladder)).sizes : LADDER.map((s) => s.name);
  // With given labels weak is "given", no size (contract/experiments.ts refuses any other).
  const notSmaller = config.supervisor === "given" ? undefined : pairError(sizes, config.weak, config.strong);
  if (notSmaller) throw new ApiError(400, "weak_not_smaller", notSmaller);
  const chain = config.bootstrapSizes ?? [];
  if (!config.ladder) { for (const size of chain) requireSize(size, "bootstrapSizes"); }
  const badChain = bootstrapChainError(sizes, config.weak, config.strong, chain);
  if (badChain) throw new ApiError(400, "bad_bootstrap_chain", badChain);
  if (!config.ladder) await requireSnapshots(dataDir, [config.strong], "strong");
}

/** A 400 naming the ladder when its models are unknown, mix tokenizers or cannot run the request. */
async function requireOwnLadder(
  dataDir: string,
  ladder: readonly string[],
  request: Parameters<typeof ownLadderRefusal>[0],
): Promise<void> {
  const refused = await ownLadder(dataDir, ladder).then(
    () => ownLadderRefusal(request),
    (err: Error) => err.message,
  );
  if (refused) throw new ApiError(400, "bad_ladder", refused, { field: "ladder" });
}

async function checkSweep(db: LabDb, dataDir: string, config: SweepCreate): Promise<void> {
  for (const task of config.tasks) if (!isWorldSuite(task)) await requireTask(db, dataDir, task);
  if (config.ladder) {
    for (const task of config.tasks) {
      await requireOwnLadder(dataDir, config.ladder, { task, leakage: config.leakage, refs: config.sizes });
    }
  } else for (const size of config.sizes) requireSize(refSize(size), "sizes");
  if (new Set(config.sizes).size !== config.sizes.length) {
    throw new ApiError(400, "duplicate_sizes", "sizes must not repeat a size");
  }
  const ladder = config.ladder ? (await ownLadder(dataDir, config.ladder)).sizes : LADDER.map((s) => s.name);
  const unpaired = sweepSizesError(ladder, config.sizes);
  if (unpaired) throw new ApiError(400, "unpaired_size", `sizes: ${unpaired}`, { field: "sizes" });
  if (!config.ladder) await requireSnapshots(dataDir, config.sizes, "sizes");
}

/**
 * Inserts an experiment (or sweep) row and the job that runs it, linked both ways, in one transaction;
 * `check` runs inside it first (a conflict it throws leaves nothing behind).
 */
export async function createExperimentJob(
  { db, bus }: Pick<ApiDeps, "db" | "bus">,
  kind: "experiment" | "sweep",
  jobType: string,
  config: { name?: string },
  check?: (tx: LabDb) => Promise<void>,
) {
  const created = await db.transaction(async (tx) => {
    const txDb = tx as unknown as LabDb;
    await check?.(txDb);
    const [experiment] = await txDb.insert(experiments).values({ kind, name: config.name ?? null, config })
      .returning();
    const job = await enqueueJob(txDb, jobType, { experimentId: experiment.id, ...config });
    const [linked] = await txDb.update(experiments).set({ jobId: job.id }).where(
      eq(experiments.id, experiment.id),
    )
      .returning();
    return { experiment: linked, job };
  });
  bus.publish({ jobId: created.job.id, type: jobType, status: "queued" });
  return created;
}

/** The operations of /experiments or /sweeps (the same routes over a different config and job). */
export function experimentOperations(kind: "experiment" | "sweep") {
  const tag = kind === "experiment" ? "experiments" : "sweeps";
  const base = `/${tag}`;
  return {
    list: defineOperation({
      method: "get",
      path: base,
      tag,
      summary: `List ${tag}`,
      query: ExperimentListQuery,
      response: z.array(ExperimentWithJob),
    }),
    create: kind === "experiment"
      ? defineOperation({
        method: "post",
        path: base,
        tag,
        summary: "Create a weak→strong experiment (enqueues a w2s job)",
        body: ExperimentCreate,
        response: ExperimentCreated,
        created: true,
      })
      : defineOperation({
        method: "post",
        path: base,
        tag,
        summary: "Create a sweep over tasks × pairs × methods × seeds (enqueues a sweep job)",
        body: SweepCreate,
        response: ExperimentCreated,
        created: true,
      }),
    show: defineOperation({
      method: "get",
      path: `${base}/{id}`,
      tag,
      summary: kind === "experiment"
        ? "An experiment with runs, results, probes"
        : "A sweep with runs and results",
      param: IdParam,
      response: ExperimentDetail,
    }),
    cancel: defineOperation({
      method: "post",
      path: `${base}/{id}/cancel`,
      tag,
      summary: "Cancel its job",
      param: IdParam,
      response: ExperimentCancelled,
    }),
    delete: defineOperation({
      method: "delete",
      path: `${base}/{id}`,
      tag,
      summary: `Delete a finished ${kind}`,
      param: IdParam,
      response: Deleted,
    }),
  };
}

export function experimentRoutes(deps: ApiDeps, kind: "experiment" | "sweep"): Hono {
  const { db, bus } = deps;
  const label = kind === "experiment" ? "experiment" : "sweep";
  const jobType = kind === "experiment" ? "w2s" : "sweep";

  async function load(id: number) {
    const [row] = await db.select().from(experiments).where(eq(experiments.id, id));
    if (row?.kind === kind) return row;
    // Experiments and sweeps share their ids: one of the other kind is named where it is.
    const other = row
      ? ` (${id} is a ${row.kind}: /api/${row.kind === "sweep" ? "sweeps" : "experiments"}/${id})`
      : "";
    throw notFound(`${label} ${id}`, other);
  }

  async function withJobs<T extends { jobId: number | null }>(rows: T[]) {
    const ids = rows.map((r) => r.jobId).filter((id): id is number => id !== null);
    const jobRows = ids.length > 0
      ? await db.select({ id: jobs.id, status: jobs.status, progress: jobs.progress, error: jobs.error })
        .from(jobs).where(inArray(jobs.id, ids))
      : [];
    const byId = new Map(jobRows.map((j) => [j.id, j]));
    return rows.map((r) => ({ ...r, job: r.jobId !== null ? byId.get(r.jobId) ?? null : null }));
  }

  const create = (config: ExperimentCreate | SweepCreate) => createExperimentJob(deps, kind, jobType, config);

  const router = new Hono();
  const ops = experimentOperations(kind);
  const base = `/${ops.list.tag}`;
  serve(router, base, ops.list, async (c, { query: q }) => {
    const conditions = [eq(experiments.kind, kind)];
    if (q.status) conditions.push(eq(experiments.status, q.status));
    const rows = await db.select().from(experiments).where(and(...conditions)).orderBy(desc(experiments.id))
      .limit(q.limit).offset(q.offset);
    return c.json(await withJobs(rows));
  });

  serve(router, base, ops.create, async (c, { body: config }) => {
    if (kind === "experiment") await checkExperiment(db, deps.dataDir, config as ExperimentCreate);
    else await checkSweep(db, deps.dataDir, config as SweepCreate);
    return c.json(await create(config), 201);
  });

  serve(router, base, ops.show, async (c, { param }) => {
    const experiment = await load(param.id);
    const [withJob] = await withJobs([experiment]);
    const id = experiment.id;
    return c.json({
      ...withJob,
      runs: await db.select().from(runs).where(eq(runs.experimentId, id)).orderBy(runs.id),
      results: await db.select().from(results).where(eq(results.experimentId, id)).orderBy(results.id),
      probes: await db.select().from(probeResults).where(eq(probeResults.experimentId, id))
        .orderBy(probeResults.id),
    });
  });

  serve(router, base, ops.cancel, async (c, { param }) => {
    const experiment = await load(param.id);
    if (experiment.jobId === null) {
      throw new ApiError(409, "not_running", `${label} ${experiment.id} has no job`);
    }
    const outcome = await cancelJob(db, experiment.jobId, bus);
    if (outcome.conflict) {
      throw new ApiError(409, "already_finished", `${label} ${experiment.id} already ${outcome.conflict}`);
    }
    return c.json({ ...(await load(experiment.id)), job: outcome.job });
  });

  serve(router, base, ops.delete, async (c, { param }) => {
    const experiment = await load(param.id);
    if (experiment.status === "queued" || experiment.status === "running") {
      throw new ApiError(
        409,
        "still_active",
        `${label} ${experiment.id} is ${experiment.status}; cancel it before deleting`,
      );
    }
    await db.delete(experiments).where(eq(experiments.id, experiment.id));
    return c.json({ deleted: experiment.id });
  });

  return router;
}
