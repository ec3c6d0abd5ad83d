/** Read-side routes: results (and CSV/JSON export), probe and bench results. Runs: routes/runs.ts. */
import { and, desc, eq, inArray, type SQL } from "drizzle-orm";
import { Hono } from "hono";
import { benchResults, experiments, probeResults, type ResultRow, results } from "../../../db/schema.ts";
import { enqueueJob } from "../../jobs/queue.ts";
import { z } from "zod";
import { defineOperation, serve } from "../operation.ts";
import {
  BenchResult,
  Csv,
  JobCreated,
  ProbeResult,
  Result,
  ResultRecord as ResultRecordSchema,
  ResultsSummary as ResultsSummarySchema,
} from "../responses.ts";
import { BenchCreate } from "../../contract/jobs.ts";
import { BenchResultsQuery, ProbesQuery, ResultsQuery } from "../schemas.ts";
import type { ApiDeps } from "../deps.ts";
import type { Agreement, ExperimentResult, ResultsSummary } from "../../contract/results.ts";
import { type ResultRecord, resultRecord, resultsCsv } from "../../contract/result-record.ts";
import { summarizeResults } from "../../lab/sweep.ts";
import { settingsLabel } from "../../contract/experiments.ts";

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

export const RESULT_OPERATIONS = {
  list: defineOperation({
    method: "get",
    path: "/results",
    tag: "results",
    summary: "Experiment results (accuracies, PGR, …)",
    query: ResultsQuery,
    response: z.array(Result),
  }),
  summary: defineOperation({
    method: "get",
    path: "/results/summary",
    tag: "results",
    summary: "Median PGR per task × method and per method, and the cells behind it (the CLI's sweep summary)",
    query: ResultsQuery,
    response: ResultsSummarySchema,
  }),
  csv: defineOperation({
    method: "get",
    path: "/results/export.csv",
    tag: "results",
    summary: "Results as CSV",
    query: ResultsQuery,
    response: Csv,
    produces: "text/csv",
  }),
  json: defineOperation({
    method: "get",
    path: "/results/export.json",
    tag: "results",
    summary: "Results as JSON",
    query: ResultsQuery,
    response: z.array(ResultRecordSchema),
  }),
  probes: defineOperation({
    method: "get",
    path: "/probes",
    tag: "results",
    summary: "Linear-probe accuracies by layer",
    query: ProbesQuery,
    response: z.array(ProbeResult),
  }),
  bench: defineOperation({
    method: "post",
    path: "/bench",
    tag: "bench",
    summary: "Start a kernel benchmark (enqueues a bench job)",
    body: BenchCreate,
    response: JobCreated,
    created: true,
  }),
  benchResults: defineOperation({
    method: "get",
    path: "/bench/results",
    tag: "bench",
    summary: "Kernel benchmark figures",
    query: BenchResultsQuery,
    response: z.array(BenchResult),
  }),
};

export function resultRoutes({ db }: ApiDeps): Hono {
  const ops = RESULT_OPERATIONS;
  const router = new Hono();
  const query = (q: { experimentId?: number; task?: string; limit: number; offset: number }) => {
    const conditions: SQL[] = [];
    if (q.experimentId) conditions.push(eq(results.experimentId, q.experimentId));
    if (q.task) conditions.push(eq(results.task, q.task));
    return db.select().from(results).where(and(...conditions)).orderBy(results.id).limit(q.limit).offset(
      q.offset,
    );
  };
  /** Each experiment's settings label (contract settingsLabel), by experiment id. */
  const settingsOf = async (rows: readonly ResultRow[]) => {
    const ids = [...new Set(rows.map((r) => r.experimentId))];
    const stored = ids.length
      ? await db.select({ id: experiments.id, config: experiments.config }).from(experiments)
        .where(inArray(experiments.id, ids))
      : [];
    return new Map(stored.map((e) => [e.id, settingsLabel((e.config ?? {}) as Record<string, unknown>)]));
  };
  serve(router, "/results", ops.list, async (c, input) => {
    const rows = await query(input.query);
    const settings = await settingsOf(rows);
    return c.json(rows.map((r) => ({ ...r, settings: settings.get(r.experimentId) ?? "" })));
  });
  // The one summary rule (server/lab/sweep.ts): what `lab sweep` prints, over the stored experiments.
  serve(router, "/results", ops.summary, async (c, input) => {
    const rows = (await query({ ...input.query, limit: 1_000_000 })).filter((r) => r.full);
    const settings = await settingsOf(rows);
    const { groups: _, ...summary } = summarizeResults(
      rows.map((r) => r.full as ExperimentResult),
      (i) => settings.get(rows[i].experimentId) ?? "",
    );
    return c.json(jsonSafe(summary));
  });
  serve(router, "/results", ops.json, async (c, input) => {
    c.header("Content-Disposition", 'attachment; filename="results.json"');
    return c.json((await query({ ...input.query, limit: 1_000_000 })).map(storedResultRecord));
  });
  serve(router, "/results", ops.csv, async (c, input) => {
    const rows = await query({ ...input.query, limit: 1_000_000 });
    c.header("Content-Type", "text/csv; charset=utf-8");
    c.header("Content-Disposition", 'attachment; filename="results.csv"');
    return c.body(resultsCsv(rows.map(storedResultRecord)) + "\n");
  });
  return router;
}

export function probeRoutes({ db }: ApiDeps): Hono {
  const router = new Hono();
  serve(router, "/probes", RESULT_OPERATIONS.probes, async (c, { query: q }) => {
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
  serve(router, "/bench", RESULT_OPERATIONS.bench, async (c, { body }) => {
    const job = await enqueueJob(db, "bench", body, { bus });
    return c.json({ job }, 201);
  });
  serve(router, "/bench", RESULT_OPERATIONS.benchResults, async (c, { query: q }) => {
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
