/**
 * The same schema and queue on a real Postgres server: a throwaway cluster (initdb as the postgres user when
 * run as root) on 127.0.0.1; migrations apply, two worker processes drain a queue without running any job
 * twice, and a worker killed with SIGKILL mid-job loses its lease, the job resumes elsewhere from its saved
 * state and the metric rows written before the kill are all still there; the progress of a job run by a
 * worker process arrives on the server's /api/events stream (through the job watcher). Skipped without Postgres binaries
 * unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { and, eq, inArray, sql } from "drizzle-orm";
import { type LabDb, openDb, type OpenedDb, rowsOf } from "../db/client.ts";
import { jobs, metrics } from "../db/schema.ts";
import { type PgCluster, startPgCluster } from "../scripts/pg-cluster.ts";
import { createApp } from "../server/api/app.ts";
import { EventBus } from "../server/jobs/bus.ts";
import { enqueueJob } from "../server/jobs/queue.ts";
import { toyDataset, toySgdStep } from "../server/jobs/toy-train-job.ts";
import { startJobWatcher } from "../server/jobs/watch.ts";
import { readEvents } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";
import { spawnWorkerProcess, type WorkerProcess } from "./helpers/worker-process.ts";
import { freePort } from "../scripts/load.ts";
import { postgresTest } from "./helpers/postgres-test.ts";

/** A `deno task lab worker` process as on a fresh machine: autotune on, an empty cache. */
function spawnWorker(databaseUrl: string, dataDir: string): WorkerProcess {
  // Long enough that a heartbeat on a starved 2-core machine still renews it; the kill -9 step waits for
  // this lease to expire. A worker must start at once all the same, whatever the autotune setting.
  return spawnWorkerProcess(["--lease-ms", "4000", "--heartbeat-ms", "400", "--poll-ms", "50"], {
    DATABASE_URL: databaseUrl,
    LAB_DATA_DIR: dataDir,
    LAB_AUTOTUNE: "1",
    XDG_CACHE_HOME: `${dataDir}/cache`,
  });
}

/** Every table of the schema exists after the migrations. */
async function checkTables(db: LabDb) {
  const tables = rowsOf<{ table_name: string }>(
    await db.execute(
      sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
    ),
  ).map((r) => r.table_name);
  for (
    const t of [
      "bench_results",
      "experiments",
      "jobs",
      "metrics",
      "models",
      "probe_results",
      "results",
      "runs",
      "tasks",
    ]
  ) {
    assert.ok(tables.includes(t), `table ${t} exists (have ${tables})`);
  }
}

/** True once every job is done; a failed job throws at once with its error and the workers' output. */
async function allDone(db: LabDb, ids: number[], workers: WorkerProcess[]): Promise<boolean> {
  const rows = await db.select({ id: jobs.id, status: jobs.status, error: jobs.error }).from(jobs)
    .where(inArray(jobs.id, ids));
  const failed = rows.find((r) => r.status === "failed");
  if (failed) {
    throw new Error(`job ${failed.id} failed: ${failed.error}\n${workers.map((w) => w.output()).join("\n")}`);
  }
  return rows.every((r) => r.status === "done");
}

/** Two worker processes drain eight jobs; each job is started exactly once. */
async function checkTwoWorkersDrainQueue(db: LabDb, url: string, dataDir: string, workers: WorkerProcess[]) {
  const queued = [];
  for (let i = 0; i < 8; i++) {
    queued.push(await enqueueJob(db, "toy-train", { steps: 12, seed: i, stepDelayMs: 25 }));
  }
  const ids = queued.map((j) => j.id);
  workers.push(spawnWorker(url, dataDir), spawnWorker(url, dataDir));
  await waitFor("the queue to drain", () => allDone(db, ids, workers), 40_000);
  const rows = await db.select().from(jobs).where(inArray(jobs.id, ids));
  assert.throws(
    () => Deno.statSync(`${dataDir}/cache/gpt-lab/matmul-autotune.json`),
    Deno.errors.NotFound,
    "a worker never runs the matmul autotune (it takes cached blocks only)",
  );
  assert.ok(rows.every((r) => r.attempts === 1), "each job leased once");
  const [a, b] = workers.map((w) => w.started());
  assert.deepEqual([...a, ...b].sort((x, y) => x - y), ids, `worker A ran ${a}, worker B ran ${b}`);
  for (const row of rows) {
    const { runId } = row.result as { runId: number };
    const count = await db.select().from(metrics).where(eq(metrics.runId, runId));
    assert.equal(count.length, 24, `job ${row.id}: 12 steps × (loss, accuracy)`);
  }
  await Promise.all(workers.splice(0).map((w) => w.stop()));
}

/** The server's event stream shows the progress of a job that a worker process runs. */
async function checkProgressStreamed(
  opened: OpenedDb,
  url: string,
  dataDir: string,
  workers: WorkerProcess[],
) {
  const db = opened.db;
  const bus = new EventBus();
  const watcher = await startJobWatcher({ db, bus, intervalMs: 100 });
  try {
    const app = createApp({ db, dataDir, token: "t", bus, dbKind: opened.kind });
    const stream = await app.request("/api/events");
    let watchedId = -1;
    const streamed = readEvents(stream, (events) =>
      events.some((e) => {
        const data = e.data as { jobId?: number; status?: string };
        // A failed job ends the wait too: the last assertion below shows its error.
        return data?.jobId === watchedId && (data.status === "done" || data.status === "failed");
      }));
    workers.push(spawnWorker(url, dataDir));
    watchedId = (await enqueueJob(db, "toy-train", { steps: 30, seed: 7, stepDelayMs: 40 })).id;
    const events = await Promise.race([
      streamed,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("no done event on /api/events within 30 s")), 30_000)
      ),
    ]);
    const mine = events.filter((e) => e.event === "job").map((e) =>
      e.data as { jobId: number; status: string; step?: number; total?: number; loss?: number }
    ).filter((e) => e.jobId === watchedId);
    const running = mine.filter((e) => e.status === "running" && e.step !== undefined);
    assert.ok(running.length >= 2, `running events with a step: ${JSON.stringify(mine)}`);
    assert.ok(running.every((e) => e.total === 30 && typeof e.loss === "number"));
    const steps = running.map((e) => e.step!);
    assert.deepEqual(steps, [...steps].sort((a, b) => a - b), "steps arrive in order");
    assert.deepEqual(mine.at(-1), { ...mine.at(-1), status: "done", step: 30 });
  } finally {
    await watcher.stop();
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  }
}

/** kill -9 during a job: the lease expires, another worker resumes from the saved state. */
async function checkKillAndResume(db: LabDb, url: string, dataDir: string, workers: WorkerProcess[]) {
  const seed = 42;
  const job = await enqueueJob(db, "toy-train", { steps: 60, seed, stepDelayMs: 40, saveEvery: 10 });
  const victim = spawnWorker(url, dataDir);
  workers.push(victim);
  await waitFor("a saved state at step ≥ 20", async () => {
    const [row] = await db.select({ state: jobs.state }).from(jobs).where(eq(jobs.id, job.id));
    return ((row.state as { step?: number } | null)?.step ?? 0) >= 20;
  }, 20_000);
  await victim.stop("SIGKILL");
  const [killed] = await db.select().from(jobs).where(eq(jobs.id, job.id));
  assert.equal(killed.status, "running", "still leased by the dead worker");
  const savedStep = (killed.state as { step: number }).step;
  const runIdRows = rowsOf<{ id: number }>(
    await db.execute(sql`select id from runs where job_id = ${job.id}`),
  );
  assert.equal(runIdRows.length, 1);
  const runId = runIdRows[0].id;
  const lossBefore = await db.select().from(metrics).where(
    and(eq(metrics.runId, runId), eq(metrics.name, "loss")),
  );
  assert.ok(lossBefore.length >= savedStep, `${lossBefore.length} loss rows written before the kill`);

  workers.push(spawnWorker(url, dataDir));
  await waitFor("the job to finish on the second worker", () => allDone(db, [job.id], workers), 30_000);
  const [done] = await db.select().from(jobs).where(eq(jobs.id, job.id));
  assert.equal(done.attempts, 2, "requeued once after the lease expired");
  const result = done.result as { resumedFromStep: number; weights: unknown; runId: number };
  assert.equal(result.runId, runId);
  assert.equal(result.resumedFromStep, savedStep);
  const after = await db.select().from(metrics).where(
    and(eq(metrics.runId, runId), eq(metrics.name, "loss")),
  );
  assert.deepEqual(
    after.map((m) => m.step).sort((x, y) => x - y),
    Array.from({ length: 60 }, (_, i) => i),
  );
  const afterByStep = new Map(after.map((m) => [m.step, m.value]));
  for (const m of lossBefore) {
    assert.equal(afterByStep.get(m.step), m.value, `loss row at step ${m.step} kept`);
  }
  // The resumed run ends with the weights of an uninterrupted one (computed here).
  const points = toyDataset(seed, 200);
  let model = { w: [0, 0] as [number, number], b: 0 };
  for (let step = 0; step < 60; step++) model = toySgdStep(model, points, seed, step);
  assert.deepEqual(result.weights, model);
}

postgresTest(
  "postgres: migrations, two worker processes, kill -9 and resume",
  async (pgBin) => {
    const dataDir = await Deno.makeTempDir({ prefix: "lab-pg-data-" });
    const workers: WorkerProcess[] = [];
    let cluster: PgCluster | undefined;
    let close: (() => Promise<void>) | undefined;
    try {
      cluster = await startPgCluster(pgBin, freePort());
      const url = cluster.url;

      // Migrations apply (and applying them again is a no-op).
      const opened = await openDb({ dataDir, databaseUrl: url });
      close = opened.close;
      assert.equal(opened.kind, "postgres");
      await (await openDb({ dataDir, databaseUrl: url })).close();
      await checkTables(opened.db);

      await checkTwoWorkersDrainQueue(opened.db, url, dataDir, workers);
      await checkProgressStreamed(opened, url, dataDir, workers);
      await checkKillAndResume(opened.db, url, dataDir, workers);
    } finally {
      await Promise.all(workers.map((w) => w.stop("SIGKILL")));
      await close?.();
      await cluster?.destroy();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
);
