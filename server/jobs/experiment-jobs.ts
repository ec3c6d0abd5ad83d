/**
 * The `w2s` and `sweep` job handlers: params are the contract's ExperimentCreate / SweepCreate (plus the
 * experimentId the API adds). They run the pipeline (server/lab/w2s.ts, sweep.ts) and write what it
 * produces into the store: one `runs` row per trained role (its curve as metric series val_acc,
 * test_acc, train_loss, lr, alpha — names from METRIC_SERIES — streamed live in batches through
 * ctx.metrics; progress events name the run being trained), one `results` row per
 * experiment and the per-layer `probe_results`. Progress carries step/total and the worker adds the
 * ETA; ctx.signal cancels between steps. A resumed job clears the rows of its earlier attempt and runs
 * again: weak models, ceilings and students that finished are read back from <dataDir>/cache. The demo job
 * records its sweep through the same sweepRecording.
 */
import { eq, sql } from "drizzle-orm";
import { join } from "node:path";
import { type LabDb, openDb } from "../../db/client.ts";
import { probeResults, results, runs } from "../../db/schema.ts";
import { readTaskExamples } from "../../db/task-examples.ts";
import { ExperimentCreate, SweepCreate } from "../contract/experiments.ts";
import { METRIC_SERIES, validationSeries } from "../contract/series.ts";
import { ExperimentCache } from "../lab/cache.ts";
import type { CurvePoint, ExperimentResult, Role, RoleRun } from "../contract/results.ts";
import { runSweep, type SweepDeps, type SweepOptions, type SweepResult } from "../lab/sweep.ts";
import type { ModelSource } from "../lab/model-source.ts";
import { modelSourceFor } from "../lab/own-models.ts";
import { type ExperimentDeps, runExperiment } from "../lab/w2s.ts";
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
      status,
      config,
    }).returning({ id: runs.id });
    return row.id;
  }

  deps(): Pick<ExperimentDeps, "onEval" | "onRun"> {
    return {
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

function pipelineDeps(ctx: JobContext, recorder: Recorder, models: ModelSource): ExperimentDeps {
  let lastLive: Record<string, number> = {};
  return {
    models,
    cache: new ExperimentCache(join(ctx.dataDir, "cache")),
    importedTasks: dbTaskLookup(ctx.db),
    signal: ctx.signal,
    onProgress: (p) => {
      const runId = recorder.liveRunId;
      ctx.progress({
        step: p.step,
        total: p.total,
        message: p.stage,
        metrics: lastLive,
        ...(runId !== undefined ? { runIds: [runId] } : {}),
      });
    },
    ...recorder.deps(),
    onEval: (role, size, point) => {
      lastLive = { [validationSeries(role)]: point.valAcc, [METRIC_SERIES.testAcc]: point.testAcc };
      recorder.deps().onEval!(role, size, point);
    },
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
  const recorder = new Recorder(ctx, experimentId);
  await recorder.clearEarlierAttempt();
  const result = await runExperiment({
    task: config.task,
    weak: config.weak,
    strong: config.strong,
    method: config.method,
    seed: config.seed,
    bootstrapSizes: config.bootstrapSizes,
    ...trainingOptions(config),
    generativeBase: config.generativeBase,
    lmEpochs: config.lmEpochs,
    promptingShots: config.promptingShots,
  }, pipelineDeps(ctx, recorder, await modelSourceFor(ctx.dataDir, config.ladder)));
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

/**
 * What a sweep hands the pipeline inside job `ctx`: the models (the imported `ladder`, else the lab's),
 * cache and tasks, live runs and progress, and each experiment written to the store as it finishes. An
 * earlier attempt's rows are cleared.
 */
export async function sweepRecording(
  ctx: JobContext,
  experimentId: number,
  ladder?: readonly string[],
): Promise<SweepDeps> {
  const recorder = new Recorder(ctx, experimentId);
  await recorder.clearEarlierAttempt();
  const models = await modelSourceFor(ctx.dataDir, ladder);
  return { ...pipelineDeps(ctx, recorder, models), onExperiment: (result) => recorder.writeResult(result) };
}

/** A sweep job's result: its summary without the experiments (they are stored as result rows). */
export function sweepSummary(result: SweepResult) {
  return {
    experiments: result.experiments,
    medians: result.medians.map((m) => ({ ...m, median_pgr: finite(m.median_pgr) })),
    cells: result.cells.map(({ results: _, ...c }) => ({ ...c, pgr: finite(c.pgr) })),
  };
}

export async function sweepHandler(ctx: JobContext): Promise<unknown> {
  const { experimentId, config } = parseExperimentParams<SweepCreate>(SweepCreate, ctx.params, "sweep");
  const deps = await sweepRecording(ctx, experimentId, config.ladder);
  return sweepSummary(await runSweep(sweepOptions(config), deps));
}
