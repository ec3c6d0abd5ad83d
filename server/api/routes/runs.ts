/**
 * GET /api/runs (the runs table: every run with what it is and its final readings, filtered, sorted and
 * paged), GET /api/runs/:id and its metric series.
 */
import { and, eq, inArray, type SQL, sql } from "drizzle-orm";
import { Hono } from "hono";
import { type LabDb, rowsOf } from "../../../db/client.ts";
import { experiments, jobs, results, type Run, runs } from "../../../db/schema.ts";
import { z } from "zod";
import { notFound } from "../errors.ts";
import { defineOperation, serve } from "../operation.ts";
import { RunFacetsSchema, RunMetrics, RunTableRowSchema, RunWithMetricNames } from "../responses.ts";
import type { MetricSeries } from "../../contract/series.ts";
import { RUN_FILTERS, runFacets, runName, type RunSortKey, type RunTableRow } from "../../contract/runs.ts";
import { IdParam, MetricsQuery, RunListQuery } from "../schemas.ts";
import type { ApiDeps } from "../deps.ts";
import { SWEEP_CELL_JOB } from "../../contract/jobs.ts";
import { isWorldSuite } from "../../tasks/world-tasks.ts";

/**
 * A run's metric series, each cut to at most `maxPoints` points: when a series has more rows in the step
 * range, its steps are split into `maxPoints` equal-width buckets and each bucket gives its mean step
 * (rounded), mean value and the value's min and max.
 */
export async function readMetricSeries(
  db: LabDb,
  runId: number,
  opts: { names?: string[]; maxPoints: number; fromStep?: number; toStep?: number },
): Promise<Record<string, MetricSeries>> {
  const filters: SQL[] = [sql`run_id = ${runId}`];
  if (opts.names && opts.names.length > 0) {
    filters.push(sql`name in (${sql.join(opts.names.map((n) => sql`${n}`), sql`, `)})`);
  }
  if (opts.fromStep !== undefined) filters.push(sql`step >= ${opts.fromStep}`);
  if (opts.toStep !== undefined) filters.push(sql`step <= ${opts.toStep}`);
  const n = opts.maxPoints;
  const result = await db.execute(sql`
    with r as (select name, step, value from metrics where ${sql.join(filters, sql` and `)}),
    b as (select name, min(step) as lo, max(step) as hi, count(*) as rows from r group by name)
    select r.name,
      case when b.rows <= ${n} then r.step
        else floor((r.step - b.lo)::float8 * ${n} / (b.hi - b.lo + 1))::int end as bucket,
      round(avg(r.step))::int as step, avg(r.value)::float8 as value,
      min(r.value)::float8 as min, max(r.value)::float8 as max, b.rows::int as rows
    from r join b using (name)
    group by r.name, bucket, b.rows
    order by r.name, bucket`);
  const series: Record<string, MetricSeries> = {};
  for (
    const row of rowsOf<
      { name: string; step: number; value: number; min: number; max: number; rows: number }
    >(result)
  ) {
    const entry = series[row.name] ??= {
      points: [],
      rows: Number(row.rows),
      downsampled: Number(row.rows) > n,
    };
    entry.points.push({
      step: Number(row.step),
      value: Number(row.value),
      min: Number(row.min),
      max: Number(row.max),
    });
  }
  return series;
}

type ExperimentFacts = { kind: string; name: string | null; config: unknown } | null;
type RunFacts = Pick<RunTableRow, "task" | "method" | "seed" | "weak" | "strong">;

const str = (v: unknown) => (typeof v === "string" ? v : null);
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
/** A sweep's list names the run's value only when it holds one. */
const only = (v: unknown) => (Array.isArray(v) && v.length === 1 ? v[0] : null);
/** A sweep's one task; a suite ("world") is several tasks, so it names none. */
const sweepTask = (cfg: Record<string, unknown>) => {
  const task = str(only(cfg.tasks));
  return task !== null && !isWorldSuite(task) ? task : null;
};

/**
 * What a run is: its row names its task (a run stored before runs recorded it, migration 0006, takes its
 * experiment's or, of a sweep over several tasks, `storedTask`: sweepRunTasks); an experiment's config names
 * its method, seed and pair; a sweep's config only when it lists one of each, else a student's description
 * ("train2 labels of nano (auxconf…)") names its supervisor and method, and its data-order seed is the
 * experiment's seed × 1000 + a salt (roleHyper).
 */
export function runFacts(
  run: Pick<Run, "role" | "modelSize" | "task" | "config">,
  experiment: ExperimentFacts,
  storedTask: string | null = null,
): RunFacts {
  const cfg = (experiment?.config ?? {}) as Record<string, unknown>;
  // A method shapes only what learns from a supervisor; the weak and ceiling models train on ground truth.
  const supervised = run.role === "student" || run.role === "bootstrap";
  if (experiment?.kind === "experiment") {
    return {
      task: run.task ?? str(cfg.task),
      method: supervised ? str(cfg.method) : null,
      seed: num(cfg.seed),
      weak: str(cfg.weak),
      strong: str(cfg.strong),
    };
  }
  const runCfg = (run.config ?? {}) as { description?: unknown; hyper?: { seed?: unknown } | null };
  const described = /labels of (\S+) \((\w+)/.exec(str(runCfg.description) ?? "");
  const hyperSeed = num(runCfg.hyper?.seed);
  const student = run.role === "student";
  return {
    task: run.task ?? sweepTask(cfg) ?? storedTask,
    method: supervised ? str(only(cfg.methods)) ?? (described ? described[2] : null) : null,
    seed: num(only(cfg.seeds)) ?? (hyperSeed !== null && experiment ? Math.floor(hyperSeed / 1000) : null),
    weak: student && described ? described[1] : null,
    strong: student && described ? run.modelSize : null,
  };
}

/** JSON with every object's keys in order, so two stored copies of one value compare equal as text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => a < b ? -1 : 1);
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * A finished run as its role's report (RoleRun) stands both in its runs row (role, size, seconds, the rest
 * in its config) and, less its curve, in its experiment's result row (results.full.runs): the same report
 * gives the same key. The seconds and readings set apart the runs of different tasks.
 */
function reportKey(r: Record<string, unknown>): string {
  const { role, size, seconds, description, cached, hyper, steps, final, selected, oracle } = r;
  return canonical([role, size, seconds, description, cached, hyper, steps, final, selected, oracle]);
}

const rowReportKey = (run: Pick<Run, "role" | "modelSize" | "seconds" | "config">) =>
  reportKey({
    ...(run.config ?? {}) as Record<string, unknown>,
    role: run.role,
    size: run.modelSize,
    seconds: run.seconds,
  });

type StoredRun = Pick<
  Run,
  "id" | "experimentId" | "jobId" | "role" | "modelSize" | "task" | "seconds" | "config"
>;

/**
 * The task of each run stored before runs recorded their task (migration 0006) of a sweep whose config
 * names none (several tasks, or a suite), by run id. The result row of the experiment that reported the run
 * names it; a run in no result (its experiment failed) takes the task of its sweep-cell job, one (task,
 * weak, strong, seed), from the cell's runs that are in a result. Otherwise (one job trained every task, as
 * the demo's does) it is not known and left out; so is a run that results of two tasks report alike.
 */
async function sweepRunTasks(
  db: LabDb,
  stored: { run: StoredRun; experiment: ExperimentFacts }[],
): Promise<Map<number, string>> {
  const open = stored.filter(({ run, experiment: e }) =>
    run.task === null && e !== null && e.kind !== "experiment" &&
    sweepTask((e.config ?? {}) as Record<string, unknown>) === null
  ).map(({ run }) => run);
  const tasks = new Map<number, string>();
  if (open.length === 0) return tasks;
  const reported = new Map<string, Set<string | null>>();
  const reports = await db.select({
    experimentId: results.experimentId,
    task: results.task,
    runs: sql<unknown>`${results.full} -> 'runs'`,
  }).from(results).where(inArray(results.experimentId, [...new Set(open.map((r) => r.experimentId!))]));
  for (const { experimentId, task, runs: roleRuns } of reports) {
    const list = typeof roleRuns === "string" ? JSON.parse(roleRuns) : roleRuns;
    for (const r of Array.isArray(list) ? list : []) {
      const key = `${experimentId} ${reportKey(r ?? {})}`;
      (reported.get(key) ?? reported.set(key, new Set()).get(key)!).add(task);
    }
  }
  const taskOf = (run: StoredRun) => {
    const found = run.config ? reported.get(`${run.experimentId} ${rowReportKey(run)}`) : undefined;
    return found?.size === 1 ? [...found][0] : null;
  };
  for (const run of open) {
    const task = taskOf(run);
    if (task !== null) tasks.set(run.id, task);
  }
  const unplacedJobs = [
    ...new Set(open.filter((r) => !tasks.has(r.id) && r.jobId !== null).map((r) => r.jobId!)),
  ];
  if (unplacedJobs.length === 0) return tasks;
  const cells = await db.select({ id: jobs.id }).from(jobs)
    .where(and(inArray(jobs.id, unplacedJobs), eq(jobs.type, SWEEP_CELL_JOB)));
  if (cells.length === 0) return tasks;
  const cellTasks = new Map<number, Set<string | null>>();
  const cellRuns = await db.select().from(runs).where(inArray(runs.jobId, cells.map((c) => c.id)));
  for (const run of cellRuns) {
    const task = taskOf(run);
    if (task !== null) {
      (cellTasks.get(run.jobId!) ?? cellTasks.set(run.jobId!, new Set()).get(run.jobId!)!).add(task);
    }
  }
  for (const run of open) {
    const cell = run.jobId !== null ? cellTasks.get(run.jobId) : undefined;
    if (!tasks.has(run.id) && cell?.size === 1) tasks.set(run.id, [...cell][0]!);
  }
  return tasks;
}

/** The last checkpoint's readings the pipeline stores in a finished run's config. */
function finalReadings(
  config: unknown,
): Pick<RunTableRow, "finalStep" | "finalTestAcc" | "finalValAcc" | "validation"> {
  const c = (config ?? {}) as {
    final?: { step?: unknown; testAcc?: unknown; valAcc?: unknown };
    validation?: unknown;
  };
  return {
    finalStep: num(c.final?.step),
    finalTestAcc: num(c.final?.testAcc),
    finalValAcc: num(c.final?.valAcc),
    validation: str(c.validation),
  };
}

function compareBy(key: RunSortKey, order: "asc" | "desc") {
  const sign = order === "asc" ? 1 : -1;
  return (a: RunTableRow, b: RunTableRow) => {
    const x = a[key], y = b[key];
    // Missing values sort last in either order; ties keep the newest run first.
    if (x === null && y === null) return b.id - a.id;
    if (x === null) return 1;
    if (y === null) return -1;
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return c !== 0 ? sign * c : b.id - a.id;
  };
}

/** The last value of each metric series of the given runs. */
async function lastMetrics(db: LabDb, runIds: number[]): Promise<Map<number, Record<string, number>>> {
  const last = new Map<number, Record<string, number>>();
  if (runIds.length === 0) return last;
  const rows = rowsOf<{ run_id: number; name: string; value: number }>(
    await db.execute(sql`select distinct on (run_id, name) run_id, name, value::float8 as value from metrics
      where run_id in (${
      sql.join(runIds.map((id) => sql`${id}`), sql`, `)
    }) order by run_id, name, step desc`),
  );
  for (const row of rows) {
    const entry = last.get(Number(row.run_id)) ?? {};
    entry[row.name] = Number(row.value);
    last.set(Number(row.run_id), entry);
  }
  return last;
}

/** Runs with the kind, name and config of their experiment (null for a run of none), to filter further. */
const withExperiment = (db: LabDb) =>
  db.select({
    run: runs,
    experiment: { kind: experiments.kind, name: experiments.name, config: experiments.config },
  }).from(runs).leftJoin(experiments, eq(runs.experimentId, experiments.id));

/** The runs table's rows (less their last metrics) of the runs that pass `where`: what each run is. */
async function tableRows(db: LabDb, where?: SQL): Promise<RunTableRow[]> {
  const stored = await withExperiment(db).where(where);
  const sweepTasks = await sweepRunTasks(db, stored);
  return stored.map(({ run, experiment }) => {
    const facts = runFacts(run, experiment, sweepTasks.get(run.id) ?? null);
    return {
      ...run,
      config: run.config as Record<string, unknown> | null,
      startedAt: run.startedAt.toISOString(),
      finishedAt: run.finishedAt?.toISOString() ?? null,
      ...facts,
      name: runName({ ...run, ...facts }),
      experimentKind: experiment?.kind ?? null,
      experimentName: experiment?.name ?? null,
      ...finalReadings(run.config),
      lastMetrics: {},
    };
  });
}

export const RUN_OPERATIONS = {
  list: defineOperation({
    method: "get",
    path: "/runs",
    tag: "runs",
    summary: "The runs table: every trained model (weak, ceiling, student, …) with its task, method, seed, " +
      "pair, status and final readings; filter per column or by text (q), sort by any column, page " +
      "(X-Total-Count holds the number of matching runs)",
    query: RunListQuery,
    response: z.array(RunTableRowSchema),
  }),
  facets: defineOperation({
    method: "get",
    path: "/runs/facets",
    tag: "runs",
    summary: "Every value each runs-table filter can take over all runs (role, task, method, size, seed, " +
      "weak, strong, status), sorted: a filter's options",
    response: RunFacetsSchema,
  }),
  show: defineOperation({
    method: "get",
    path: "/runs/{id}",
    tag: "runs",
    summary: "One run with its metric names",
    param: IdParam,
    response: RunWithMetricNames,
  }),
  metrics: defineOperation({
    method: "get",
    path: "/runs/{id}/metrics",
    tag: "runs",
    summary: "Metric series, downsampled to maxPoints, within a step range",
    param: IdParam,
    query: MetricsQuery,
    response: RunMetrics,
  }),
};

export function runRoutes({ db }: ApiDeps): Hono {
  const router = new Hono();
  // The table: rows are derived from the run and its experiment, then filtered and sorted on what they say.
  serve(router, "/runs", RUN_OPERATIONS.list, async (c, { query: q }) => {
    const conditions: SQL[] = [];
    if (q.experimentId) conditions.push(eq(runs.experimentId, q.experimentId));
    if (q.jobId) conditions.push(eq(runs.jobId, q.jobId));
    // The stored columns narrow the query; every column filter (RUN_FILTERS) is then read off the rows.
    if (q.role) conditions.push(eq(runs.role, q.role));
    if (q.size) conditions.push(eq(runs.modelSize, q.size));
    if (q.status) conditions.push(eq(runs.status, q.status));
    const needle = q.q?.toLowerCase();
    const rows = (await tableRows(db, and(...conditions))).filter((r) =>
      RUN_FILTERS.every(({ param, field }) => q[param] === undefined || r[field] === q[param]) &&
      (needle === undefined ||
        [r.name, r.task ?? "", r.status, r.experimentName ?? ""].some((t) =>
          t.toLowerCase().includes(needle)
        ))
    ).sort(compareBy(q.sort, q.order));
    const page = rows.slice(q.offset, q.offset + q.limit);
    const last = await lastMetrics(db, page.map((r) => r.id));
    for (const r of page) r.lastMetrics = last.get(r.id) ?? {};
    c.header("X-Total-Count", String(rows.length));
    return c.json(page);
  });
  serve(router, "/runs", RUN_OPERATIONS.facets, async (c) => c.json(runFacets(await tableRows(db))));
  serve(router, "/runs", RUN_OPERATIONS.show, async (c, { param: { id } }) => {
    const [stored] = await withExperiment(db).where(eq(runs.id, id));
    if (!stored) throw notFound(`run ${id}`);
    const names = rowsOf<{ name: string }>(
      await db.execute(sql`select distinct name from metrics where run_id = ${id} order by name`),
    ).map((r) => r.name);
    // A run stored before runs recorded their task (migration 0006) names it as its table row does.
    const { task } = runFacts(
      stored.run,
      stored.experiment,
      (await sweepRunTasks(db, [stored])).get(id) ?? null,
    );
    return c.json({ ...stored.run, task, metricNames: names });
  });
  serve(router, "/runs", RUN_OPERATIONS.metrics, async (c, { param: { id }, query: q }) => {
    const [run] = await db.select({ id: runs.id }).from(runs).where(eq(runs.id, id));
    if (!run) throw notFound(`run ${id}`);
    const names = q.names?.split(",").map((s) => s.trim()).filter((s) => s !== "");
    return c.json({
      runId: id,
      maxPoints: q.maxPoints,
      series: await readMetricSeries(db, id, { ...q, names }),
    });
  });
  return router;
}
