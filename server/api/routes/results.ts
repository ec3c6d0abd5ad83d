/** Read-side routes: runs and their metric series, results (and CSV/JSON export), probe and bench results. */
import { and, desc, eq, type SQL, sql } from "drizzle-orm";
import { Hono } from "hono";
import { type LabDb, rowsOf } from "../../../db/client.ts";
import { benchResults, probeResults, results, runs } from "../../../db/schema.ts";
import { enqueueJob } from "../../jobs/queue.ts";
import { notFound, validate } from "../errors.ts";
import { BenchCreate } from "../../contract/jobs.ts";
import type { MetricSeries } from "../../contract/series.ts";
import {
  BenchResultsQuery,
  IdParam,
  MetricsQuery,
  ProbesQuery,
  ResultsQuery,
  RunListQuery,
} from "../schemas.ts";
import type { ApiDeps } from "../deps.ts";
import type { ExperimentResult, ResultsSummary } from "../../contract/results.ts";
import { summarizeResults } from "../../lab/sweep.ts";

/** NaN and ±Infinity become null, as JSON has no place for them. */
function jsonSafe(summary: ResultsSummary): ResultsSummary {
  return JSON.parse(
    JSON.stringify(summary, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v)),
  );
}

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

export function runRoutes({ db }: ApiDeps): Hono {
  const router = new Hono();
  router.get("/", validate("query", RunListQuery), async (c) => {
    const q = c.req.valid("query");
    const conditions: SQL[] = [];
    if (q.experimentId) conditions.push(eq(runs.experimentId, q.experimentId));
    if (q.jobId) conditions.push(eq(runs.jobId, q.jobId));
    if (q.role) conditions.push(eq(runs.role, q.role));
    return c.json(
      await db.select().from(runs).where(and(...conditions)).orderBy(desc(runs.id)).limit(q.limit).offset(
        q.offset,
      ),
    );
  });
  router.get("/:id", validate("param", IdParam), async (c) => {
    const id = c.req.valid("param").id;
    const [run] = await db.select().from(runs).where(eq(runs.id, id));
    if (!run) throw notFound(`run ${id}`);
    const names = rowsOf<{ name: string }>(
      await db.execute(sql`select distinct name from metrics where run_id = ${id} order by name`),
    ).map((r) => r.name);
    return c.json({ ...run, metricNames: names });
  });
  router.get("/:id/metrics", validate("param", IdParam), validate("query", MetricsQuery), async (c) => {
    const id = c.req.valid("param").id;
    const q = c.req.valid("query");
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

const CSV_COLUMNS = [
  "experimentId",
  "task",
  "weakSize",
  "strongSize",
  "method",
  "seed",
  "weakAcc",
  "ceilingAcc",
  "studentAcc",
  "pgr",
  "gapTooSmall",
  "selectedStudentAcc",
  "selectedPgr",
  "selectedStep",
  "oracleStudentAcc",
  "oraclePgr",
  "oracleStep",
  "agreement",
  "createdAt",
  "format",
] as const;

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = value instanceof Date
    ? value.toISOString()
    : typeof value === "object"
    ? JSON.stringify(value)
    : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function resultsToCsv(rows: Record<string, unknown>[]): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const row of rows) {
    // Stored before pairwise tasks existed: a classification result.
    const format = (row.full as ExperimentResult | null)?.format ?? "classification";
    const cells: Record<string, unknown> = { ...row, format };
    lines.push(CSV_COLUMNS.map((k) => csvCell(cells[k])).join(","));
  }
  return lines.join("\n") + "\n";
}

export function resultRoutes({ db }: ApiDeps): Hono {
  const router = new Hono();
  const query = (q: { experimentId?: number; task?: string; limit: number; offset: number }) => {
    const conditions: SQL[] = [];
    if (q.experimentId) conditions.push(eq(results.experimentId, q.experimentId));
    if (q.task) conditions.push(eq(results.task, q.task));
    return db.select().from(results).where(and(...conditions)).orderBy(results.id).limit(q.limit).offset(
      q.offset,
    );
  };
  router.get("/", validate("query", ResultsQuery), async (c) => c.json(await query(c.req.valid("query"))));
  // The one summary rule (server/lab/sweep.ts): what `lab sweep` prints, over the stored experiments.
  router.get("/summary", validate("query", ResultsQuery), async (c) => {
    const rows = await query({ ...c.req.valid("query"), limit: 1_000_000 });
    const stored = rows.map((r) => r.full as ExperimentResult | null).filter((r): r is ExperimentResult =>
      !!r
    );
    const { groups: _, ...summary } = summarizeResults(stored);
    return c.json(jsonSafe(summary));
  });
  router.get("/export.json", validate("query", ResultsQuery), async (c) => {
    c.header("Content-Disposition", 'attachment; filename="results.json"');
    return c.json(await query({ ...c.req.valid("query"), limit: 1_000_000 }));
  });
  router.get("/export.csv", validate("query", ResultsQuery), async (c) => {
    const rows = await query({ ...c.req.valid("query"), limit: 1_000_000 });
    c.header("Content-Type", "text/csv; charset=utf-8");
    c.header("Content-Disposition", 'attachment; filename="results.csv"');
    return c.body(resultsToCsv(rows));
  });
  return router;
}

export function probeRoutes({ db }: ApiDeps): Hono {
  const router = new Hono();
  router.get("/", validate("query", ProbesQuery), async (c) => {
    const q = c.req.valid("query");
    const conditions: SQL[] = [];
    if (q.experimentId) conditions.push(eq(probeResults.experimentId, q.experimentId));
    if (q.runId) conditions.push(eq(probeResults.runId, q.runId));
    return c.json(
      await db.select().from(probeResults).where(and(...conditions)).orderBy(probeResults.id).limit(q.limit)
        .offset(q.offset),
    );
  });
  return router;
}

export function benchRoutes({ db, bus }: ApiDeps): Hono {
  const router = new Hono();
  router.post("/", validate("json", BenchCreate), async (c) => {
    const job = await enqueueJob(db, "bench", c.req.valid("json"), { bus });
    return c.json({ job }, 201);
  });
  router.get("/results", validate("query", BenchResultsQuery), async (c) => {
    const q = c.req.valid("query");
    const conditions: SQL[] = [];
    if (q.device) conditions.push(eq(benchResults.device, q.device));
    if (q.kernel) conditions.push(eq(benchResults.kernel, q.kernel));
    return c.json(
      await db.select().from(benchResults).where(and(...conditions)).orderBy(desc(benchResults.id)).limit(
        q.limit,
      )
        .offset(q.offset),
    );
  });
  return router;
}
