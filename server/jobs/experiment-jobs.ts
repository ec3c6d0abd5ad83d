/**
 * The `w2s` and `sweep` job handlers: params are the contract's ExperimentCreate / SweepCreate (plus the
 * experimentId the API adds). They run the pipeline (server/lab/w2s.ts, sweep.ts) and write what it
 * produces into the store: one `runs` row per trained role, with its experiment's task from its first
 * curve point on (its curve as metric series val_acc, test_acc, train_loss, lr, alpha — names from
 * METRIC_SERIES — streamed live in batches through ctx.metrics; progress events name the run being
 * trained), one `results` row per experiment and the per-layer `probe_results`. Progress carries
 * step/total and the worker adds the ETA; ctx.signal cancels between steps. A resumed job clears the rows
 * of its earlier attempt and runs again: weak models, ceilings and students that finished are read back
 * from <dataDir>/cache. The demo job records its sweep through the same sweepRecording.
 *
 * A `sweep` job fans out: it queues one `sweep-cell` job per (task, weak, strong, seed) — the methods of a
 * pair share its weak labels and ceiling through the cell's local cache, while pairs and seeds spread over
 * the workers — waits for them (JobWait), and when re-leased assembles the summary from their results.
 * Where no other worker leases from the queue (ctx.lanes > 1: the server's one worker on its embedded
 * database), it runs the whole sweep itself instead, in lanes, as the demo job does. Either way it first
 * waits for the pretraining of its sizes, as a w2s job does.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { join } from "node:path";
import { type LabDb, openDb } from "../../db/client.ts";
import { jobs, probeResults, results, runs } from "../../db/schema.ts";
import { readTaskExamples } from "../../db/task-examples.ts";
import { ExperimentCreate, SweepCreate } from "../contract/experiments.ts";
import { SWEEP_CELL_JOB } from "../contract/jobs.ts";
import { METRIC_SERIES, validationSeries } from "../contract/series.ts";
import { ExperimentCache } from "../lab/cache.ts";
import type { CurvePoint, ExperimentResult, Role, RoleRun } from "../contract/results.ts";
import {
  type LaneCallbacks,
  runPlanned,
  runSweep,
  type SweepDeps,
  type SweepOptions,
  sweepPlan,
  type SweepResult,
  sweepResult,
} from "../lab/sweep.ts";
import { refSize } from "../contract/model-ref.ts";
import { LADDER } from "../lab/ladder.ts";
import { modelDir } from "../lab/model-store.ts";
import { JobWait } from "./queue.ts";
import type { ModelSource } from "../lab/model-source.ts";
import { modelSourceFor } from "../lab/own-models.ts";
import { runExperiment } from "../lab/w2s.ts";
import { type SweepSource, workerLanes } from "../lab/sweep-pool.ts";
import type { LabCorpusOptions } from "../lab/lab-corpus.ts";
import type { ImportedTaskLookup } from "../tasks/load.ts";
import type { JobContext } from "./registry.ts";

/** Imported tasks from the tasks table. */
export function dbTaskLookup(db: LabDb): ImportedTaskLookup {
  return (name) => readTaskExamples(db, name);
}

/** The same for the command line: opens the store only when a task is not built in. */
export function importedTaskLookup(dataDir: string): ImportedTaskLookup {
  return async (name) => {
    const opened = await openDb({ dataDir, databaseUrl: Deno.env.get("DATABASE_URL") || undefined });
    try {
      return await dbTaskLookup(opened.db)(name);
    } finally {
      await opened.close();
    }
  };
}

/** A job's request (ExperimentCreate, SweepCreate) and the experimentId the API added, or what is wrong. */
export function parseExperimentParams<T>(
  schema: { safeParse(v: unknown): { success: boolean; data?: T; error?: unknown } },
  params: unknown,
  label: string,
) {
  const { experimentId, ...config } = (params ?? {}) as Record<string, unknown>;
  const parsed = schema.safeParse(config);
  if (!parsed.success) {
    const issues = (parsed.error as { issues: { path: PropertyKey[]; message: string }[] }).issues;
    throw new Error(
      `invalid ${label} params: ${issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  if (typeof experimentId !== "number") throw new Error(`${label} params need the experimentId`);
  return { experimentId, config: parsed.data as T };
}

/** A figure as JSON stores it: NaN and ±Infinity (no PGR, e.g.) become null. */
export const finite = (x: number) => (Number.isFinite(x) ? x : null);

function curveRows(role: Role, curve: CurvePoint[]) {
  return curve.flatMap((p) => [
    { name: validationSeries(role), step: p.step, value: p.valAcc },
    { name: METRIC_SERIES.testAcc, step: p.step, value: p.testAcc },
    { name: METRIC_SERIES.lr, step: p.step, value: p.lr },
    { name: METRIC_SERIES.alpha, step: p.step, value: p.alpha },
    ...(Number.isFinite(p.trainLoss)
      ? [{ name: METRIC_SERIES.trainLoss, step: p.step, value: p.trainLoss }]
      : []),
  ]);
}

/** Writes runs (live while training) and results of experiments into the store. */
class Recorder {
  private current?: { role: Role; size: string; runId: number };
  private roleRuns = new Map<string, number>();
  /** The task of the experiment being run (onStart): each run is written with it. */
  private task: string | null = null;

  constructor(private ctx: JobContext, private experimentId: number) {}

  /** The run being trained now, once its row exists (live events name it). */
  get liveRunId(): number | undefined {
    return this.current?.runId;
  }

  /** Removes what an earlier attempt of this job wrote (the cache makes the rerun cheap). */
  async clearEarlierAttempt(): Promise<void> {
    if (this.ctx.attempt <= 1) return;
    await this.ctx.db.delete(results).where(eq(results.experimentId, this.experimentId));
    await this.ctx.db.delete(probeResults).where(eq(probeResults.experimentId, this.experimentId));
    await this.ctx.db.delete(runs).where(eq(runs.experimentId, this.experimentId));
  }

  private async insertRun(role: Role, size: string, status: string, config: unknown): Promise<number> {
    const [row] = await this.ctx.db.insert(runs).values({
      experimentId: this.experimentId,
      jobId: this.ctx.jobId,
      role,
      modelSize: size,
      task: this.task,
      status,
      config,
    }).returning({ id: runs.id });
    return row.id;
  }

  deps(): Pick<LaneCallbacks, "onStart" | "onEval" | "onRun"> {
    return {
      onStart: (opts) => {
        this.task = opts.task;
      },
      onEval: (role, size, point) => {
        // The row appears with the first curve point, so the dashboard can plot while it trains.
        const pending = this.current?.role === role && this.current.size === size
          ? Promise.resolve(this.current.runId)
          : this.insertRun(role, size, "running", null).then((runId) =>
            (this.current = { role, size, runId }).runId
          );
        this.pendingRun = pending.then((runId) => this.ctx.metrics(runId, curveRows(role, [point])));
      },
      onRun: async (run: RoleRun) => {
        await this.pendingRun;
        const config = {
          description: run.description,
          validation: run.validation,
          mode: run.mode,
          cached: run.cached,
          hyper: run.hyper,
          steps: run.steps,
          microBatch: run.microBatch,
          selected: run.selected,
          final: run.final,
          oracle: run.oracle,
        };
        let runId: number;
        if (this.current && this.current.role === run.role && this.current.size === run.size) {
          runId = this.current.runId;
          await this.ctx.db.update(runs).set({
            status: "done",
            config,
            finishedAt: sql`now()`,
            seconds: run.seconds,
          })
            .where(eq(runs.id, runId));
        } else {
          runId = await this.insertRun(run.role, run.size, "done", config);
          await this.ctx.db.update(runs).set({ finishedAt: sql`now()`, seconds: run.seconds }).where(
            eq(runs.id, runId),
          );
          this.ctx.metrics(runId, curveRows(run.role, run.curve));
        }
        this.current = undefined;
        this.roleRuns.set(`${run.role}:${run.size}`, runId);
      },
    };
  }

  private pendingRun: Promise<unknown> = Promise.resolve();

  async writeResult(result: ExperimentResult): Promise<void> {
    const { runs: roleRuns, ...full } = result;
    await this.ctx.db.insert(results).values({
      experimentId: this.experimentId,
      task: result.task,
      weakSize: result.weak,
      strongSize: result.strong,
      method: result.method,
      seed: result.seed,
      weakAcc: result.weak_acc,
      ceilingAcc: result.ceiling_acc,
      studentAcc: result.student_acc,
      pgr: finite(result.pgr),
      gapTooSmall: result.gap_too_small,
      selectedStudentAcc: result.selected.student_acc,
      selectedPgr: finite(result.selected.pgr),
      selectedStep: result.selected.steps.student,
      agreement: result.agreement,
      oracleStudentAcc: result.oracle.student_acc,
      oraclePgr: finite(result.oracle.pgr),
      oracleStep: result.oracle.student_step,
      full: JSON.parse(
        JSON.stringify({
          ...full,
          runs: roleRuns.map(({ curve: _, ...r }) => r),
        }, (_, v) => (Number.isNaN(v) ? null : v)),
      ),
    });
    if (result.probes?.length) {
      const runOf = (kind: string) =>
        kind === "ft(gt)"
          ? this.roleRuns.get(`ceiling:${result.strong}`)
          : kind === "ft(weak)+lp(gt)"
          ? this.roleRuns.get(`student:${result.strong}`)
          : undefined;
      await this.ctx.db.insert(probeResults).values(result.probes.map((p) => ({
        experimentId: this.experimentId,
        runId: runOf(p.kind) ?? null,
        layer: p.layer,
        kind: p.kind,
        accuracy: p.accuracy,
      })));
    }
    await this.ctx.flushMetrics();
  }
}

/**
 * What the pipeline reports through inside a job: live runs, results and progress. Each recorder keeps one
 * run in training, so a sweep in lanes has one per lane: with several recorders the sweep runs in that many
 * worker lanes, lane n reporting through recorder n, and the progress names every lane's live run.
 */
function pipelineDeps(
  ctx: JobContext,
  recorders: Recorder[],
  models: ModelSource,
  lanesFrom?: Omit<SweepSource, "dataDir" | "cacheDir">,
): SweepDeps {
  let lastLive: Record<string, number> = {};
  const callbacks = (recorder: Recorder): LaneCallbacks => ({
    ...recorder.deps(),
    onEval: (role, size, point) => {
      lastLive = { [validationSeries(role)]: point.valAcc, [METRIC_SERIES.testAcc]: point.testAcc };
      recorder.deps().onEval!(role, size, point);
    },
    onExperiment: (result) => recorder.writeResult(result),
  });
  const cacheDir = join(ctx.dataDir, "cache");
  return {
    models,
    cache: new ExperimentCache(cacheDir),
    importedTasks: dbTaskLookup(ctx.db),
    signal: ctx.signal,
    onProgress: (p) => {
      const runIds = recorders.flatMap((r) => r.liveRunId ?? []);
      ctx.progress({
        step: p.step,
        total: p.total,
        unit: p.unit,
        message: p.stage,
        metrics: lastLive,
        ...(runIds.length > 0 ? { runIds } : {}),
      });
    },
    ...callbacks(recorders[0]),
    lanes: recorders.length > 1
      ? workerLanes({ ...lanesFrom, dataDir: ctx.dataDir, cacheDir }, {
        concurrency: recorders.length,
        callbacks: (n) => callbacks(recorders[n]),
      })
      : undefined,
  };
}

/** The knobs experiments and sweeps share, from the request's names to the pipeline's. */
function trainingOptions(config: ExperimentCreate | SweepCreate) {
  return {
    epochs: config.epochs,
    lr: config.learningRate,
    batchSize: config.batchSize,
    alphaMax: config.alphaMax,
    probes: config.probes,
    mode: config.studentMode,
    maxExamples: config.maxExamples,
    control: config.control,
    leakage: config.leakage,
    embeddings: config.embeddings,
    headInit: config.headInit,
    decayTo: config.decayTo,
  };
}

export async function w2sHandler(ctx: JobContext): Promise<unknown> {
  const { experimentId, config } = parseExperimentParams<ExperimentCreate>(
    ExperimentCreate,
    ctx.params,
    "w2s",
  );
  if (!config.ladder) {
    const weak = config.supervisor === "given" ? [] : [config.weak];
    await waitForPretraining(ctx, [...weak, config.strong, ...(config.bootstrapSizes ?? [])]);
  }
  const recorder = new Recorder(ctx, experimentId);
  await recorder.clearEarlierAttempt();
  const result = await runExperiment({
    task: config.task,
    weak: config.weak,
    supervisor: config.supervisor,
    strong: config.strong,
    method: config.method,
    seed: config.seed,
    bootstrapSizes: config.bootstrapSizes,
    ...trainingOptions(config),
    generativeBase: config.generativeBase,
    lmEpochs: config.lmEpochs,
    promptingShots: config.promptingShots,
  }, pipelineDeps(ctx, [recorder], await modelSourceFor(ctx.dataDir, config.ladder)));
  await recorder.writeResult(result);
  return summary(result);
}

function summary(r: ExperimentResult) {
  return {
    task: r.task,
    weak: r.weak,
    strong: r.strong,
    method: r.method,
    seed: r.seed,
    weak_acc: r.weak_acc,
    ceiling_acc: r.ceiling_acc,
    student_acc: r.student_acc,
    pgr: finite(r.pgr),
    gap_too_small: r.gap_too_small,
    agreement: r.agreement,
    oracle: { ...r.oracle, pgr: finite(r.oracle.pgr) },
  };
}

/** The pipeline's sweep options from a sweep request. */
export function sweepOptions(config: SweepCreate): SweepOptions {
  return {
    tasks: config.tasks,
    sizes: config.sizes,
    methods: config.methods,
    seeds: config.seeds,
    auxconfAt: config.auxconfAt,
    ...trainingOptions(config),
  };
}

/** The request of a sweep the server starts itself (the demo), so it is stored as any sweep's config. */
export function sweepRequest(options: SweepOptions, name?: string): SweepCreate {
  if ((options.evaluateOn ?? "test") !== "test") {
    throw new Error(
      "evaluateOn: a sweep request has no such field (the sweeps the API starts evaluate on test)",
    );
  }
  return SweepCreate.parse({
    name,
    tasks: options.tasks,
    sizes: options.sizes,
    methods: options.methods,
    seeds: options.seeds,
    auxconfAt: options.auxconfAt,
    epochs: options.epochs,
    learningRate: options.lr,
    batchSize: options.batchSize,
    alphaMax: options.alphaMax,
    probes: options.probes,
    studentMode: options.mode,
    maxExamples: options.maxExamples,
    control: options.control,
    leakage: options.leakage,
    embeddings: options.embeddings,
    headInit: options.headInit,
    decayTo: options.decayTo,
  });
}

/** How a sweep job records, and where its lanes find their models. */
export interface SweepRecordingOptions {
  /** An imported ladder's names (default: the lab's ladder). */
  ladder?: readonly string[];
  /** Groups of experiments run at once, each lane in a worker with a recorder of its own (default 1). */
  lanes?: number;
  /** The models this thread plans with (default: modelSourceFor the data directory and `ladder`). */
  models?: ModelSource;
  /** The lab corpus's options for the lanes' workers, where not the default (tests' tiny worlds). */
  corpus?: LabCorpusOptions;
}

/**
 * What a sweep hands the pipeline inside job `ctx`: the models (the imported `ladder`, else the lab's),
 * cache and tasks, live runs and progress, and each experiment written to the store as it finishes. An
 * earlier attempt's rows are cleared. `lanes` > 1: groups of experiments that many at a time, each lane in a
 * worker with a recorder of its own (sweep-pool.ts).
 */
export async function sweepRecording(
  ctx: JobContext,
  experimentId: number,
  opts: SweepRecordingOptions = {},
): Promise<SweepDeps> {
  const { ladder, lanes = 1, corpus } = opts;
  const recorders = Array.from({ length: Math.max(1, lanes) }, () => new Recorder(ctx, experimentId));
  await recorders[0].clearEarlierAttempt();
  const models = opts.models ?? await modelSourceFor(ctx.dataDir, ladder);
  return pipelineDeps(ctx, recorders, models, { ladder, corpus });
}

/** A sweep job's result: its summary without the experiments (they are stored as result rows). */
export function sweepSummary(result: SweepResult) {
  return {
    experiments: result.experiments,
    medians: result.medians.map((m) => ({ ...m, median_pgr: finite(m.median_pgr) })),
    cells: result.cells.map(({ results: _, ...c }) => ({ ...c, pgr: finite(c.pgr) })),
  };
}

/**
 * Throws JobWait when one of the lab's `sizes` has no checkpoint here while a pretrain job for it is queued
 * or running: the job comes back once that job is done (failing with it, naming it, if it fails).
 */
async function waitForPretraining(ctx: JobContext, refs: readonly string[]): Promise<void> {
  const sizes = [...new Set(refs.map((ref) => refSize(ref)))].filter((s) => LADDER.some((l) => l.name === s));
  const missing: string[] = [];
  for (const size of sizes) {
    const present = await Deno.stat(join(modelDir(ctx.dataDir, size), "model.safetensors")).then(
      () => true,
      () => false,
    );
    if (!present) missing.push(size);
  }
  if (missing.length === 0) return;
  const pretraining = await ctx.db.select({ id: jobs.id, size: sql<string>`${jobs.params}->>'size'` }).from(
    jobs,
  )
    .where(and(
      eq(jobs.type, "pretrain"),
      inArray(jobs.status, ["queued", "running"]),
      inArray(sql`${jobs.params}->>'size'`, missing),
    )).orderBy(jobs.id);
  if (pretraining.length === 0) return; // the pipeline fails with its own message, naming the command
  throw new JobWait(
    `for the pretraining of ${pretraining.map((p) => `${p.size} (job ${p.id})`).join(", ")}`,
    { waitsFor: pretraining.map((p) => p.id), delayMs: PRETRAIN_POLL_MS },
  );
}

/** How soon a job waiting for a pretraining looks again (its dependency also has to be done). */
export const PRETRAIN_POLL_MS = 3000;

/** Where a sweep's jobs find models: the imported `ladder`, else the lab's (tests pass a tiny ladder). */
export type SweepModels = (dataDir: string, ladder?: readonly string[]) => Promise<ModelSource>;

/** An experiment as a job result stores it: curves left out, NaN and ±Infinity kept (JSON has neither). */
function storedExperiment(result: ExperimentResult): unknown {
  const lean = { ...result, runs: result.runs.map(({ curve: _, ...r }) => ({ ...r, curve: [] })) };
  return JSON.parse(
    JSON.stringify(
      lean,
      (_, v) => (typeof v === "number" && !Number.isFinite(v) ? { nonFinite: String(v) } : v),
    ),
  );
}

function readStoredExperiment(stored: unknown): ExperimentResult {
  return JSON.parse(
    JSON.stringify(stored),
    (_, v) =>
      v !== null && typeof v === "object" && typeof v.nonFinite === "string" && Object.keys(v).length === 1
        ? Number(v.nonFinite)
        : v,
  );
}

/** The plan's indices grouped by (task, weak, strong, seed), in plan order: one sweep-cell job each. */
function cellGroups(plan: Awaited<ReturnType<typeof sweepPlan>>): number[][] {
  const groups = new Map<string, number[]>();
  plan.forEach((e, i) => {
    const key = JSON.stringify([e.task, e.weak, e.strong, e.seed]);
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  return [...groups.values()];
}

/**
 * The sweep and sweep-cell handlers over `models` (default: the lab's ladder or an imported one); `corpus`
 * is the lab corpus's options for a sweep's lanes, where not the default (tests' tiny worlds).
 */
export function makeSweepHandlers(models: SweepModels = modelSourceFor, corpus?: LabCorpusOptions) {
  /** The whole sweep in this job, ctx.lanes groups of experiments at a time (where no other worker leases). */
  async function sweepInLanes(ctx: JobContext, experimentId: number, config: SweepCreate) {
    const recording = await sweepRecording(ctx, experimentId, {
      ladder: config.ladder,
      lanes: ctx.lanes,
      models: await models(ctx.dataDir, config.ladder),
      corpus,
    });
    return sweepSummary(await runSweep(sweepOptions(config), recording));
  }

  async function sweep(ctx: JobContext): Promise<unknown> {
    const { experimentId, config } = parseExperimentParams<SweepCreate>(SweepCreate, ctx.params, "sweep");
    const children = await ctx.db.select({ id: jobs.id, status: jobs.status, result: jobs.result }).from(jobs)
      .where(eq(jobs.parentId, ctx.jobId)).orderBy(jobs.id);
    if (children.length === 0) {
      if (!config.ladder) await waitForPretraining(ctx, config.sizes);
      if ((ctx.lanes ?? 1) > 1) return await sweepInLanes(ctx, experimentId, config);
      await new Recorder(ctx, experimentId).clearEarlierAttempt();
      const plan = await sweepPlan(sweepOptions(config), await models(ctx.dataDir, config.ladder));
      // One statement queues every cell: a crash leaves all of them or none.
      const queued = await ctx.db.insert(jobs).values(
        cellGroups(plan).map((indices) => ({
          type: SWEEP_CELL_JOB,
          params: { ...(ctx.params as Record<string, unknown>), indices },
          parentId: ctx.jobId,
        })),
      ).returning({ id: jobs.id });
      const ids = queued.map((q) => q.id);
      throw new JobWait(`for its ${ids.length} cell jobs (${ids.join(", ")})`, { waitsFor: ids });
    }
    const pending = children.filter((c) => c.status !== "done").map((c) => c.id);
    if (pending.length > 0) throw new JobWait(`for cell jobs ${pending.join(", ")}`, { waitsFor: pending });
    const done = children.flatMap((c) =>
      (c.result as { experiments: { index: number; result: unknown }[] }).experiments
    )
      .sort((a, b) => a.index - b.index);
    const seconds = children.reduce((sum, c) => sum + ((c.result as { seconds?: number }).seconds ?? 0), 0);
    return sweepSummary(sweepResult(done.map((d) => readStoredExperiment(d.result)), seconds));
  }

  async function cell(ctx: JobContext): Promise<unknown> {
    const started = performance.now();
    const { indices, ...sweepParams } = (ctx.params ?? {}) as Record<string, unknown>;
    if (!Array.isArray(indices) || !indices.every((i) => Number.isInteger(i) && i >= 0)) {
      throw new Error("sweep-cell params need indices: the plan positions of its experiments (integers ≥ 0)");
    }
    const { experimentId, config } = parseExperimentParams<SweepCreate>(
      SweepCreate,
      sweepParams,
      "sweep-cell",
    );
    const source = await models(ctx.dataDir, config.ladder);
    const plan = await sweepPlan(sweepOptions(config), source);
    const beyond = indices.find((i) => i >= plan.length);
    if (beyond !== undefined) {
      throw new Error(`sweep-cell index ${beyond} is past the sweep's ${plan.length} experiments`);
    }
    const recorder = new Recorder(ctx, experimentId);
    if (ctx.attempt > 1) await clearCellAttempt(ctx, experimentId, indices.map((i) => plan[i]));
    const ran = await runPlanned(plan, pipelineDeps(ctx, [recorder], source), indices);
    return {
      experiments: ran.map((result, k) => ({ index: indices[k], result: storedExperiment(result) })),
      seconds: (performance.now() - started) / 1000,
    };
  }
  return { sweep, cell };
}

/** Removes what an earlier attempt of a sweep-cell job wrote: its runs, and the result rows of its experiments. */
async function clearCellAttempt(
  ctx: JobContext,
  experimentId: number,
  planned: { task: string; weak: string; strong: string; method: string; seed: number }[],
): Promise<void> {
  await ctx.db.delete(runs).where(eq(runs.jobId, ctx.jobId));
  for (const e of planned) {
    await ctx.db.delete(results).where(and(
      eq(results.experimentId, experimentId),
      eq(results.task, e.task),
      eq(results.weakSize, e.weak),
      eq(results.strongSize, e.strong),
      eq(results.method, e.method),
      eq(results.seed, e.seed),
    ));
  }
}

const sweepHandlers = makeSweepHandlers();
export const sweepHandler = sweepHandlers.sweep;
export const sweepCellHandler = sweepHandlers.cell;
