/** Read-side routes: results (and CSV/JSON export), probe and bench results. Runs: routes/runs.ts. */
import { and, desc, eq, type SQL } from "drizzle-orm";
import { Hono } from "hono";
import { benchResults, probeResults, type ResultRow, results } from "../../../db/schema.ts";
import { enqueueJob } from "../../jobs/queue.ts";
import { validate } from "../errors.ts";
import { BenchCreate } from "../../contract/jobs.ts";
import { BenchResultsQuery, ProbesQuery, ResultsQuery } from "../schemas.ts";
import type { ApiDeps } from "../deps.ts";
import type { Agreement, ExperimentResult, ResultsSummary } from "../../contract/results.ts";
import { type ResultRecord, resultRecord, resultsCsv } from "../../contract/result-record.ts";
import { summarizeResults } from "../../lab/sweep.ts";

/** NaN and ±Infinity become null, as JSON has no place for them. */
function jsonSafe(summary: ResultsSummary): ResultsSummary {
  return JSON.parse(
    JSON.stringify(summary, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v)),
  );
}

/** A stored result as the shared export record: its columns, with format and knowledge from its JSON. */
export function storedResultRecord(row: ResultRow): ResultRecord {
  const full = row.full as Partial<ExperimentResult> | null;
  return resultRecord({
    task: row.task,
    weak: row.weakSize,
    strong: row.strongSize,
    method: row.method,
    seed: row.seed,
    weak_acc: row.weakAcc,
    ceiling_acc: row.ceilingAcc,
    student_acc: row.studentAcc,
    pgr: row.pgr,
    gap_too_small: row.gapTooSmall,
    selected: {
      student_acc: row.selectedStudentAcc,
      pgr: row.selectedPgr,
      steps: { student: row.selectedStep },
    },
    oracle: { student_acc: row.oracleStudentAcc, pgr: row.oraclePgr, student_step: row.oracleStep },
    agreement: row.agreement as Agreement | null,
    strongKnowledge: full?.strongKnowledge ?? null,
    format: full?.format,
  });
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
    return c.json((await query({ ...c.req.valid("query"), limit: 1_000_000 })).map(storedResultRecord));
  });
  router.get("/export.csv", validate("query", ResultsQuery), async (c) => {
    const rows = await query({ ...c.req.valid("query"), limit: 1_000_000 });
    c.header("Content-Type", "text/csv; charset=utf-8");
    c.header("Content-Disposition", 'attachment; filename="results.csv"');
    return c.body(resultsCsv(rows.map(storedResultRecord)) + "\n");
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
