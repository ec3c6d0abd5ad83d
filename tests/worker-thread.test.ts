/**
 * The server's worker on its own thread (server/jobs/worker-thread.ts): the API answers while a job holds
 * its thread, queries proxied to the embedded database return what a direct handle returns, and jobs run,
 * stream events, cancel and hand back across the thread boundary.
 */
import assert from "node:assert/strict";
import { eq, sql } from "drizzle-orm";
import { openDb, rowsOf } from "../db/client.ts";
import { proxyDb } from "../db/proxy.ts";
import { jobs, metrics, models } from "../db/schema.ts";
import { createApp } from "../server/api/app.ts";
import { EventBus, type JobEvent } from "../server/jobs/bus.ts";
import { cancelJob, enqueueJob, getJob } from "../server/jobs/queue.ts";
import { startWorkerThread } from "../server/jobs/worker-thread.ts";
import { BUSY_JOB_TYPE } from "./fixtures/busy-job.ts";
import { waitFor } from "./helpers/wait.ts";

const dataDir = await Deno.makeTempDir({ prefix: "lab-worker-thread-test-" });
const opened = await openDb({ dataDir });
const { db } = opened;
const BUSY_MODULE = new URL("./fixtures/busy-job.ts", import.meta.url).href;

Deno.test.afterAll?.(async () => {
  await opened.close();
  await Deno.remove(dataDir, { recursive: true });
});

function settled(id: number, ms = 30_000) {
  return waitFor(`job ${id} to settle`, async () => {
    const job = await getJob(db, id);
    return job && ["done", "failed", "cancelled"].includes(job.status) ? job : undefined;
  }, ms);
}

Deno.test("queries through the thread proxy return exactly what the direct handle returns", async () => {
  const remote = proxyDb(opened.answer!);
  const job = await enqueueJob(db, "proxy-probe", { nested: { a: [1, 2] } });
  const direct = await db.select().from(jobs).where(eq(jobs.id, job.id));
  const proxied = await remote.select().from(jobs).where(eq(jobs.id, job.id));
  assert.deepEqual(proxied, direct);
  assert.ok(proxied[0].createdAt instanceof Date, "timestamps come back as dates");
  assert.deepEqual(proxied[0].params, { nested: { a: [1, 2] } });

  const updated = await remote.update(jobs).set({ attempts: 7 }).where(eq(jobs.id, job.id)).returning();
  assert.equal(updated[0].attempts, 7);
  const raw = rowsOf<{ n: number }>(await remote.execute(sql`select ${job.id}::int + 1 as n`));
  assert.deepEqual(raw, [{ n: job.id + 1 }]);

  // A refused write keeps its Postgres error code (23505: unique violation) across the thread boundary,
  // where drizzle wraps it as it wraps the direct handle's.
  await remote.insert(models).values({ name: "proxy-probe", status: "queued" });
  const codeOf = (err: Error) => (err.cause as { code?: string } | undefined)?.code;
  await assert.rejects(
    remote.insert(models).values({ name: "proxy-probe", status: "queued" }),
    (err: Error) => {
      assert.equal(codeOf(err), "23505");
      return true;
    },
  );
  await db.delete(models).where(eq(models.name, "proxy-probe"));
  await db.delete(jobs).where(eq(jobs.id, job.id));
});

Deno.test("the API answers while a job holds the worker's thread", async () => {
  const bus = new EventBus();
  const api = createApp({ db, dataDir, token: "t", bus, dbKind: opened.kind });
  const worker = startWorkerThread({
    opened,
    dataDir,
    bus,
    pollMs: 20,
    types: [BUSY_JOB_TYPE],
    modules: [BUSY_MODULE],
    log: () => {},
  });
  try {
    const flag = `${dataDir}/held`;
    const job = await enqueueJob(db, BUSY_JOB_TYPE, { ms: 3000, flag }, { bus });
    await waitFor("the job to hold its thread", () => Deno.stat(flag).then(() => true, () => false), 30_000);
    const res = await api.request("/api/health");
    const answeredAt = Date.now();
    assert.equal(res.status, 200);
    const done = await settled(job.id);
    assert.equal(done.status, "done", done.error ?? "");
    const { endedAt } = done.result as { endedAt: number };
    // On the server's own thread the request would wait for the handler to let go of it.
    assert.ok(answeredAt < endedAt, `answered ${answeredAt - endedAt} ms after the job let go`);
  } finally {
    await worker.stop();
  }
});

Deno.test("a job on the thread runs, streams its events, is cancelled, and is handed back on stop", async () => {
  const bus = new EventBus();
  const events: JobEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const worker = startWorkerThread({ opened, dataDir, bus, pollMs: 20, types: ["toy-train"], log: () => {} });
  try {
    const job = await enqueueJob(db, "toy-train", { steps: 30, seed: 3 }, { bus });
    const done = await settled(job.id);
    assert.equal(done.status, "done", done.error ?? "");
    const { runId } = done.result as { runId: number };
    const rows = await db.select().from(metrics).where(eq(metrics.runId, runId));
    assert.equal(
      rows.filter((r) => r.name === "loss").length,
      30,
      "every metric row written through the proxy",
    );
    assert.ok(events.some((e) => e.jobId === job.id && e.status === "running" && e.step !== undefined));
    await waitFor(
      "the done event",
      () => Promise.resolve(events.some((e) => e.jobId === job.id && e.status === "done")),
    );

    // Cancelled on the server's bus: the thread's worker stops the job and takes the next.
    const long = await enqueueJob(db, "toy-train", { steps: 100_000, stepDelayMs: 5 }, { bus });
    await waitFor("the job to run", () => Promise.resolve(worker.currentJobId() === long.id), 30_000);
    await cancelJob(db, long.id, bus);
    await waitFor("the thread to let the job go", () => Promise.resolve(worker.currentJobId() === undefined));
    assert.equal((await getJob(db, long.id))?.status, "cancelled");

    // Stopping the server hands a running job back to the queue.
    const handedBack = await enqueueJob(db, "toy-train", { steps: 100_000, stepDelayMs: 5 }, { bus });
    await waitFor("the job to run", () => Promise.resolve(worker.currentJobId() === handedBack.id), 30_000);
    await worker.stop();
    assert.equal((await getJob(db, handedBack.id))?.status, "queued");
    await db.delete(jobs).where(eq(jobs.id, handedBack.id));
  } finally {
    await worker.stop();
  }
});
