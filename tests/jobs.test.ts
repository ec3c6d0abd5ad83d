/** The job queue and worker on an embedded PGlite: leasing, expiry, cancel, resume and the toy-train job. */
import assert from "node:assert/strict";
import { and, eq, sql } from "drizzle-orm";
import { openDb } from "../db/client.ts";
import { benchResults, experiments, jobs, metrics, models, runs } from "../db/schema.ts";
import { writeCacheEntry } from "../kernels/ops/matmul-autotune.ts";
import { createApp } from "../server/api/app.ts";
import { listModels } from "../server/api/catalog.ts";
import { type BenchReportLike, makeBenchHandler } from "../server/jobs/bench-job.ts";
import { EventBus, type JobEvent } from "../server/jobs/bus.ts";
import "../server/jobs/handlers.ts";
import { makePretrainHandler, type PretrainSize } from "../server/jobs/pretrain-job.ts";
import { type Curves, modelDir, type PretrainStatus } from "../server/lab/model-store.ts";
import { activeWorldSpec, worldKey } from "../server/corpus/world-spec.ts";
import {
  cancelJob,
  enqueueJob,
  finishJob,
  getJob,
  leaseNextJob,
  renewLease,
  requeueExpiredJobs,
} from "../server/jobs/queue.ts";
import { registerJobHandler } from "../server/jobs/registry.ts";
import { startJobWatcher } from "../server/jobs/watch.ts";
import { toyDataset, toyEvaluate, toySgdStep } from "../server/jobs/toy-train-job.ts";
import { isTransientError, startWorker } from "../server/jobs/worker.ts";
import { WriteFailedError } from "../server/jobs/job-context.ts";
import { ArtifactReadError } from "../server/lab/artifact-store.ts";
import { z } from "zod";
import { startOptions } from "../server/main.ts";
import { waitFor } from "./helpers/wait.ts";

const dataDir = await Deno.makeTempDir({ prefix: "lab-jobs-test-" });
const { db, close } = await openDb({ dataDir });

async function settled(id: number) {
  return await waitFor(`job ${id} to finish`, async () => {
    const job = await getJob(db, id);
    return job && ["done", "failed", "cancelled"].includes(job.status) ? job : undefined;
  });
}

Deno.test.afterAll?.(async () => {
  await close();
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("leases skip locked rows, expire, requeue and fail after max attempts", async () => {
  const a = await enqueueJob(db, "lease-probe", { n: 1 }, { maxAttempts: 2 });
  const b = await enqueueJob(db, "lease-probe", { n: 2 }, { maxAttempts: 2 });
  const [first, second, none] = await Promise.all([
    leaseNextJob(db, "w1", 60_000, ["lease-probe"]),
    leaseNextJob(db, "w2", 60_000, ["lease-probe"]),
    leaseNextJob(db, "w3", 60_000, ["lease-probe"]),
  ].map((p, i) => new Promise<Awaited<typeof p>>((r) => setTimeout(() => r(p), i))));
  const leased = [first?.id, second?.id, none?.id].filter((x) => x !== undefined).sort();
  assert.deepEqual(leased, [a.id, b.id].sort(), "two jobs, leased once each");
  await cancelJob(db, b.id);

  // A 1 ms lease expires at once: the job goes back to the queue with its attempt counted.
  assert.equal(await renewLease(db, a.id, "someone-else", 1), false, "only the owner renews");
  const owner = first?.id === a.id ? "w1" : second?.id === a.id ? "w2" : "w3";
  assert.equal(await renewLease(db, a.id, owner, 1), true);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await requeueExpiredJobs(db), [a.id]);
  let job = await getJob(db, a.id);
  assert.equal(job?.status, "queued");
  assert.equal(job?.attempts, 1);
  const again = await leaseNextJob(db, "w4", 1, ["lease-probe"]);
  assert.equal(again?.id, a.id);
  assert.equal(again?.attempts, 2);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await requeueExpiredJobs(db), [], "second expiry with maxAttempts 2 fails the job");
  job = await getJob(db, a.id);
  assert.equal(job?.status, "failed");
  assert.match(job?.error ?? "", /lease expired after 2 attempts/);
});

Deno.test("dependencies: a job is leased once those it waits for are done, fails when one fails", async () => {
  const lease = () => leaseNextJob(db, "dep-worker", 60_000, ["dep-probe"]);
  const a = await enqueueJob(db, "dep-probe", {});
  const b = await enqueueJob(db, "dep-probe", {}, { waitsFor: [a.id] });
  const c = await enqueueJob(db, "dep-probe", {});
  assert.equal((await lease())?.id, a.id);
  assert.equal((await lease())?.id, c.id, "b waits for a, which is running: c goes first");
  assert.equal(await lease(), undefined, "b is not leased while a runs");
  await finishJob(db, a.id, "dep-worker", { status: "done", result: null });
  assert.equal((await lease())?.id, b.id, "a is done: b is leased");

  const d = await enqueueJob(db, "dep-probe", {});
  const e = await enqueueJob(db, "dep-probe", {}, { waitsFor: [d.id] });
  assert.equal((await lease())?.id, d.id);
  await finishJob(db, d.id, "dep-worker", { status: "failed", error: "boom" });
  assert.equal(await lease(), undefined);
  const failed = await getJob(db, e.id);
  assert.equal(failed?.status, "failed");
  assert.equal(failed?.error, `job ${d.id} (dep-probe), which this job waits for, failed: boom`);
});

Deno.test("a job handed back to wait: not leased before run_after, its attempt not counted", async () => {
  const lease = () => leaseNextJob(db, "wait-worker", 60_000, ["wait-probe"]);
  const job = await enqueueJob(db, "wait-probe", {});
  assert.equal((await lease())?.attempts, 1);
  assert.equal(
    await finishJob(db, job.id, "wait-worker", { status: "queued", wait: { delayMs: 300 } }),
    true,
  );
  const waiting = await getJob(db, job.id);
  assert.equal(waiting?.status, "queued");
  assert.equal(waiting?.attempts, 0, "waiting does not use an attempt");
  assert.equal(await lease(), undefined, "not before run_after");
  await new Promise((r) => setTimeout(r, 400));
  assert.equal((await lease())?.attempts, 1, "leased again once run_after passed, as its first attempt");
});

/** An Error with a `code`, as node:net, postgres-js and Postgres (its SQLSTATE) give them. */
const coded = (code: string, message = code) => Object.assign(new Error(message), { code });

Deno.test("isTransientError: lost connections, failed writes and store reads retry; the rest fail at once", () => {
  const transient = {
    "a write that failed after its retries": new WriteFailedError(coded("ECONNREFUSED"), 5),
    "node ECONNREFUSED": coded("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"),
    "node ECONNRESET": coded("ECONNRESET", "read ECONNRESET"),
    "Deno's refused connection": new Deno.errors.ConnectionRefused("Connection refused (os error 111)"),
    "postgres-js closed connection": coded("CONNECTION_CLOSED", "write CONNECTION_CLOSED db:5432"),
    "server shut down (57P01)": coded("57P01", "terminating connection due to administrator command"),
    "connection exception (08006)": coded("08006", "connection failure"),
    "drizzle's wrapper around ECONNRESET": new Error("Failed query: select 1", {
      cause: coded("ECONNRESET"),
    }),
    "a size still being published": new ArtifactReadError("size nano is being published; try again"),
  };
  const deterministic = {
    "a missing checkpoint": new Error(
      'size "nano" has no pretrained checkpoint: run lab pretrain --size nano',
    ),
    "a validation error": z.object({ task: z.string() }).safeParse({}).error,
    "a bad task": new Error('unknown task "nope"'),
    "a programming error": new TypeError("cannot read properties of undefined"),
    "a unique violation (23505)": coded("23505", "duplicate key value violates unique constraint"),
    "a missing table (42P01)": coded("42P01", 'relation "jobs" does not exist'),
    "a missing file": coded("ENOENT", "no such file or directory"),
    "drizzle's wrapper around a bad value (22P02)": new Error("Failed query", { cause: coded("22P02") }),
    "a thrown string": "boom",
    "nothing": undefined,
  };
  for (const [what, err] of Object.entries(transient)) assert.equal(isTransientError(err), true, what);
  for (const [what, err] of Object.entries(deterministic)) assert.equal(isTransientError(err), false, what);
});

Deno.test("a transient handler error requeues the job after its backoff, attempt counted, until it is done", async () => {
  const starts: number[] = [];
  const failedAt: number[] = [];
  registerJobHandler("flaky-probe", (ctx) => {
    starts.push(Date.now());
    if (ctx.attempt < 3) {
      failedAt.push(Date.now());
      throw coded("ECONNRESET", `read ECONNRESET on attempt ${ctx.attempt}`);
    }
    return Promise.resolve({ attempt: ctx.attempt });
  });
  const backoffMs = [400, 200];
  const worker = startWorker({
    db,
    dataDir,
    pollMs: 10,
    log: () => {},
    types: ["flaky-probe"],
    retryBackoffMs: backoffMs,
  });
  try {
    const job = await enqueueJob(db, "flaky-probe", {}, { maxAttempts: 3 });
    const waiting = await waitFor("the first retry to wait", async () => {
      const row = await getJob(db, job.id);
      return row?.status === "queued" && row.attempts === 1 ? row : undefined;
    });
    assert.equal(waiting.error, "read ECONNRESET on attempt 1", "the error is readable while it waits");
    assert.ok(
      waiting.runAfter!.getTime() >= failedAt[0] + backoffMs[0] - 1,
      "run_after is the first backoff",
    );
    const done = await settled(job.id);
    assert.equal(done.status, "done", done.error ?? "");
    assert.equal(done.attempts, 3);
    assert.deepEqual(done.result, { attempt: 3 });
    assert.equal(done.error, null, "a done job carries no error of an earlier attempt");
    assert.equal(starts.length, 3);
    assert.ok(starts[1] - failedAt[0] >= backoffMs[0], `attempt 2 began ${starts[1] - failedAt[0]} ms after`);
    assert.ok(starts[2] - failedAt[1] >= backoffMs[1], `attempt 3 began ${starts[2] - failedAt[1]} ms after`);
  } finally {
    await worker.stop();
  }
});

Deno.test("a deterministic handler error fails at attempt 1; a transient one fails with its last error at maxAttempts", async () => {
  registerJobHandler("doomed-probe", (ctx) => {
    if ((ctx.params as { transient: boolean }).transient) {
      throw coded("ECONNREFUSED", `connect ECONNREFUSED on attempt ${ctx.attempt}`);
    }
    throw new Error('unknown task "nope": import it first');
  });
  const worker = startWorker({
    db,
    dataDir,
    pollMs: 10,
    log: () => {},
    types: ["doomed-probe"],
    retryBackoffMs: [5],
  });
  try {
    const bad = await settled(
      (await enqueueJob(db, "doomed-probe", { transient: false }, { maxAttempts: 3 })).id,
    );
    assert.deepEqual([bad.status, bad.attempts, bad.error], [
      "failed",
      1,
      'unknown task "nope": import it first',
    ]);
    const down = await settled(
      (await enqueueJob(db, "doomed-probe", { transient: true }, { maxAttempts: 3 })).id,
    );
    assert.deepEqual([down.status, down.attempts, down.error], [
      "failed",
      3,
      "connect ECONNREFUSED on attempt 3",
    ]);
  } finally {
    await worker.stop();
  }
});

Deno.test("cancelling a parent cancels its queued and running children, not the finished ones", async () => {
  const parent = await enqueueJob(db, "parent-probe", {});
  const done = await enqueueJob(db, "child-probe", {}, { parentId: parent.id });
  const running = await enqueueJob(db, "child-probe", {}, { parentId: parent.id });
  const queued = await enqueueJob(db, "child-probe", {}, { parentId: parent.id });
  const other = await enqueueJob(db, "child-probe", {});
  assert.equal((await leaseNextJob(db, "c", 60_000, ["child-probe"]))?.id, done.id);
  await finishJob(db, done.id, "c", { status: "done", result: null });
  assert.equal((await leaseNextJob(db, "c", 60_000, ["child-probe"]))?.id, running.id);
  await cancelJob(db, parent.id);
  const statuses = await Promise.all(
    [done, running, queued, other].map(async (j) => (await getJob(db, j.id))?.status),
  );
  assert.deepEqual(statuses, ["done", "cancelled", "cancelled", "queued"]);
});

Deno.test("an experiment follows its job through lease expiry: running → queued → running → failed", async () => {
  const job = await enqueueJob(db, "expiry-probe", {}, { maxAttempts: 2 });
  const [experiment] = await db.insert(experiments).values({ kind: "experiment", config: {}, jobId: job.id })
    .returning();
  const statusOf = async () => {
    const [row] = await db.select().from(experiments).where(eq(experiments.id, experiment.id));
    return row;
  };
  assert.equal((await leaseNextJob(db, "w1", 1, ["expiry-probe"]))?.id, job.id);
  assert.equal((await statusOf()).status, "running");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await requeueExpiredJobs(db), [job.id]);
  assert.equal((await statusOf()).status, "queued", "requeued job: experiment back to queued");
  assert.equal((await leaseNextJob(db, "w2", 1, ["expiry-probe"]))?.id, job.id);
  assert.equal((await statusOf()).status, "running");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await requeueExpiredJobs(db), []);
  const failed = await statusOf();
  assert.equal((await getJob(db, job.id))?.status, "failed");
  assert.equal(failed.status, "failed", "out of attempts: experiment failed too");
  assert.ok(failed.finishedAt instanceof Date, "and has a finish time");
});

Deno.test("toy-train runs to done, learns the blobs and writes every metric row", async () => {
  const bus = new EventBus();
  const events: string[] = [];
  bus.subscribe((e) => events.push(`${e.jobId}:${e.status}`));
  const worker = startWorker({
    db,
    dataDir,
    bus,
    pollMs: 20,
    log: () => {},
    types: ["toy-train", "no-such-job"],
  });
  try {
    const job = await enqueueJob(db, "toy-train", { steps: 60, seed: 3 }, { bus });
    const done = await settled(job.id);
    assert.equal(done.status, "done", done.error ?? "");
    const result = done.result as {
      accuracy: number;
      loss: number;
      runId: number;
      weights: { w: number[]; b: number };
    };
    // Two unit-variance blobs at ±(1, 1): the Bayes classifier scores Φ(√2) ≈ 0.921.
    assert.ok(result.accuracy > 0.85 && result.accuracy < 0.99, `accuracy ${result.accuracy}`);
    assert.ok(result.weights.w[0] > 0.5 && result.weights.w[1] > 0.5, "boundary ⟂ to the diagonal");
    // Loss recomputed here from the returned weights: mean −log p(y) over the 200 points.
    const points = toyDataset(3, 200);
    let nll = 0;
    for (const { x, y } of points) {
      const z = result.weights.w[0] * x[0] + result.weights.w[1] * x[1] + result.weights.b;
      nll += Math.log(1 + Math.exp(y === 1 ? -z : z));
    }
    assert.ok(Math.abs(nll / points.length - result.loss) < 1e-9);
    const rows = await db.select().from(metrics).where(eq(metrics.runId, result.runId));
    assert.equal(rows.filter((r) => r.name === "loss").length, 60);
    assert.equal(rows.filter((r) => r.name === "accuracy").length, 60);
    const last = rows.find((r) => r.name === "loss" && r.step === 59);
    assert.equal(last?.value, result.loss);
    assert.equal(done.attempts, 1);
    assert.deepEqual((done.progress as { step: number }).step, 60);
    assert.ok(events.includes(`${job.id}:queued`) && events.includes(`${job.id}:done`));

    // An unregistered type fails with a clear error and the worker goes on with the next job.
    const orphan = await enqueueJob(db, "no-such-job", { task: "x" }, { bus });
    const next = await enqueueJob(db, "toy-train", { steps: 5 }, { bus });
    const failed = await settled(orphan.id);
    assert.equal(failed.status, "failed");
    assert.match(
      failed.error ?? "",
      /no handler is registered for job type "no-such-job" \(registered: .*toy-train/,
    );
    assert.equal((await settled(next.id)).status, "done");
  } finally {
    await worker.stop();
  }
});

Deno.test("a job resumes from its saved state and ends with the uninterrupted weights", async () => {
  const worker = startWorker({ db, dataDir, pollMs: 20, log: () => {}, types: ["toy-train"] });
  try {
    const seed = 11;
    const points = toyDataset(seed, 200);
    let model = { w: [0, 0] as [number, number], b: 0 };
    for (let step = 0; step < 40; step++) model = toySgdStep(model, points, seed, step);
    const expected = toyEvaluate(model, points);

    const job = await enqueueJob(db, "toy-train", { steps: 40, seed });
    // Pretend an earlier attempt got to step 25 (weights recomputed here) before its worker died.
    let partial = { w: [0, 0] as [number, number], b: 0 };
    for (let step = 0; step < 25; step++) partial = toySgdStep(partial, points, seed, step);
    await db.update(jobs).set({ state: { step: 25, ...partial } }).where(eq(jobs.id, job.id));

    const done = await settled(job.id);
    const result = done.result as {
      resumedFromStep: number;
      loss: number;
      weights: typeof model;
      runId: number;
    };
    assert.equal(result.resumedFromStep, 25);
    assert.deepEqual(result.weights, model);
    assert.equal(result.loss, expected.loss);
    const losses = await db.select().from(metrics)
      .where(and(eq(metrics.runId, result.runId), eq(metrics.name, "loss")));
    assert.deepEqual(
      losses.map((r) => r.step).sort((a, b) => a - b),
      Array.from({ length: 15 }, (_, i) => 25 + i),
    );
  } finally {
    await worker.stop();
  }
});

Deno.test("cancel stops a queued job and aborts a running one", async () => {
  const bus = new EventBus();
  const worker = startWorker({
    db,
    dataDir,
    bus,
    pollMs: 20,
    heartbeatMs: 50,
    log: () => {},
    types: ["toy-train"],
  });
  try {
    const slow = await enqueueJob(db, "toy-train", { steps: 10_000, stepDelayMs: 5 }, { bus });
    const queued = await enqueueJob(db, "toy-train", { steps: 10 }, { bus });
    await waitFor("the slow job to run", async () => (await getJob(db, slow.id))?.status === "running");
    assert.equal((await cancelJob(db, queued.id, bus)).job?.status, "cancelled");
    await waitFor(
      "some progress",
      async () => ((await getJob(db, slow.id))?.progress as { step?: number })?.step,
    );
    // Cancelled without the bus: the worker finds out at its next heartbeat.
    assert.equal((await cancelJob(db, slow.id)).job?.status, "cancelled");
    await waitFor("the worker to drop the job", () => Promise.resolve(worker.currentJobId() === undefined));
    const slowAfter = await getJob(db, slow.id);
    assert.equal(slowAfter?.status, "cancelled");
    assert.ok(((slowAfter?.progress as { step: number }).step) < 10_000);
    assert.deepEqual(await cancelJob(db, slow.id), { conflict: "cancelled" });
    assert.deepEqual(await cancelJob(db, 999_999), {});
    const [run] = await db.select().from(runs).where(eq(runs.jobId, queued.id));
    assert.equal(run, undefined, "a job cancelled while queued never started");
  } finally {
    await worker.stop();
  }
});

Deno.test("the watcher publishes job changes made without this bus, once each, never stale", async () => {
  const bus = new EventBus();
  const events: JobEvent[] = [];
  bus.subscribe((e) => e.type === "watch-probe" && events.push(e));
  // A long interval: the test drives the polls.
  const watcher = await startJobWatcher({ db, bus, intervalMs: 60_000 });
  try {
    const job = await enqueueJob(db, "watch-probe", {}, { bus });
    await watcher.poll();
    assert.deepEqual(events.map((e) => e.status), ["queued"], "the local enqueue event is not repeated");

    // Another process leases the job and reports progress straight into the table.
    assert.equal((await leaseNextJob(db, "elsewhere", 60_000, ["watch-probe"]))?.id, job.id);
    await watcher.poll();
    assert.deepEqual(events.at(-1), { jobId: job.id, type: "watch-probe", status: "running" });
    const progress = { step: 3, total: 10, metrics: { loss: 0.5, accuracy: 0.75 }, etaSeconds: 7, at: "x" };
    await db.update(jobs).set({ progress, updatedAt: sql`now()` }).where(eq(jobs.id, job.id));
    await watcher.poll();
    assert.deepEqual(events.at(-1), {
      jobId: job.id,
      type: "watch-probe",
      status: "running",
      step: 3,
      total: 10,
      metrics: { loss: 0.5, accuracy: 0.75 },
      loss: 0.5,
      accuracy: 0.75,
      etaSeconds: 7,
    });
    const count = events.length;
    await watcher.poll();
    assert.equal(events.length, count, "no change, no event");

    // This process already told step 6; the row catching up to step 5 later is not news.
    bus.publish({ jobId: job.id, type: "watch-probe", status: "running", step: 6, total: 10 });
    await db.update(jobs).set({ progress: { ...progress, step: 5 }, updatedAt: sql`now()` })
      .where(eq(jobs.id, job.id));
    await watcher.poll();
    assert.equal(events.length, count + 1, "only the local step-6 event");

    assert.equal(await finishJob(db, job.id, "elsewhere", { status: "failed", error: "boom" }), true);
    await watcher.poll();
    assert.deepEqual(
      [events.at(-1)?.status, events.at(-1)?.error, events.at(-1)?.step],
      ["failed", "boom", 5],
    );
    await watcher.poll();
    assert.equal(events.length, count + 2);
  } finally {
    await watcher.stop();
  }
});

Deno.test("bench stores one row per kernel version and per training size, filtered by name", async () => {
  const calls: unknown[] = [];
  const fakeReport = (opts: { kernels?: boolean; training?: boolean }): BenchReportLike => ({
    device: "test-adapter",
    timer: "wall",
    kernels: opts.kernels === false ? [] : [
      { kernel: "matmul nn", version: "v1", shape: "64×64×64", ms: 2, gflops: 0.262144, timer: "wall" },
      { kernel: "matmul nn", version: "v3", shape: "64×64×64", ms: 0.5, gflops: 1.048576, timer: "wall" },
      { kernel: "layernorm forward", version: "v1", shape: "2048×64", ms: 0.25, gbps: 4.2, timer: "wall" },
    ],
    training: opts.training === false ? [] : [{
      name: "64/2",
      width: 64,
      layers: 2,
      contextLength: 64,
      batchSize: 32,
      vocabSize: 256,
      params: 118_000,
      tokensPerSecond: 2048 / 0.4,
      msPerStep: 400,
      matmulShare: 0.6,
      dispatchesPerStep: 90,
      encodeMsPerStep: 1.5,
    }],
  });
  registerJobHandler(
    "bench",
    makeBenchHandler((opts) => {
      calls.push(opts);
      return Promise.resolve(fakeReport(opts));
    }),
  );
  const worker = startWorker({ db, dataDir, pollMs: 20, log: () => {}, types: ["bench"] });
  try {
    const job = await enqueueJob(db, "bench", { quick: true, kernels: ["matmul"] });
    const done = await settled(job.id);
    assert.equal(done.status, "done", done.error ?? "");
    assert.deepEqual(calls, [
      { quick: true, kernels: true, training: false },
      { quick: true, kernels: false, training: true },
    ]);
    const rows = await db.select().from(benchResults).where(eq(benchResults.jobId, job.id))
      .orderBy(benchResults.id);
    assert.deepEqual(
      rows.map((r) => [r.device, r.kernel, r.version, r.ms, r.gflops, r.gbps]),
      [
        ["test-adapter", "matmul nn", "v1", 2, 0.262144, null],
        ["test-adapter", "matmul nn", "v3", 0.5, 1.048576, null],
        ["test-adapter", "train step", "64/2", 400, null, null],
      ],
      "layernorm filtered out; the training size stored as a train step",
    );
    assert.equal((rows[2].details as { tokensPerSecond: number }).tokensPerSecond, 5120);
    assert.equal(rows[2].shape, "batch 32×64, vocab 256");
    assert.deepEqual(done.result, {
      device: "test-adapter",
      timer: "wall",
      quick: true,
      rows: 3,
      kernels: 2,
      training: 1,
    });
    assert.deepEqual(done.progress && (done.progress as { step: number; total: number }).step, 2);
  } finally {
    await worker.stop();
  }
});

/** A finished size's status as the stand-in pretraining run reports it. */
function pretrainedStatus(size: string, seed: number, curves: Curves): PretrainStatus {
  return {
    size,
    status: "pretrained",
    params: 12345,
    config: { vocabSize: 40, contextLength: 16, width: 16, layers: 1, heads: 2 },
    step: 20,
    totalSteps: 20,
    tokens: 1280,
    batchSize: 4,
    seqLen: 16,
    seed,
    lr: 1e-2,
    corpusHash: "abc",
    tokenizerId: "tok",
    knowledgeAttribute: "region",
    val_loss: 4.5,
    knowledge: 0.25,
    wallSeconds: 1.5,
    tokensPerSecond: 853,
    curves,
    updatedAt: "2026-01-01T00:00:00.000Z",
  };
}

Deno.test("pretrain writes its curves to a pretrain run and the model's row; the ladder merges disk and db", async () => {
  const curves = {
    train: [{ step: 0, tokens: 0, value: 7 }, { step: 10, tokens: 640, value: 5 }, {
      step: 20,
      tokens: 1280,
      value: 4,
    }],
    val: [{ step: 10, tokens: 640, value: 5.5 }, { step: 20, tokens: 1280, value: 4.5 }],
    knowledge: [{ step: 20, tokens: 1280, value: 0.25 }],
  };
  const seen: { size: string; seed?: number; dataDir: string }[] = [];
  const fake: PretrainSize = (opts) => {
    seen.push({ size: opts.size, seed: opts.seed, dataDir: opts.dataDir });
    opts.onProgress?.({
      step: 10,
      totalSteps: 20,
      tokens: 640,
      totalTokens: 1280,
      trainLoss: 5,
      valLoss: 5.5,
    });
    opts.onProgress?.({
      step: 20,
      totalSteps: 20,
      tokens: 1280,
      totalTokens: 1280,
      trainLoss: 4,
      knowledge: 0.25,
    });
    return Promise.resolve({
      dir: modelDir(opts.dataDir!, opts.size as string),
      cached: false,
      resumedFromStep: 0,
      status: pretrainedStatus(opts.size, opts.seed ?? 1, curves),
    });
  };
  registerJobHandler("pretrain", makePretrainHandler(fake));
  const bus = new EventBus();
  const live: JobEvent[] = [];
  bus.subscribe((e) => e.type === "pretrain" && live.push(e));
  const worker = startWorker({ db, dataDir, bus, pollMs: 20, log: () => {}, types: ["pretrain"] });
  try {
    const job = await enqueueJob(db, "pretrain", { size: "nano", seed: 4 });
    const done = await settled(job.id);
    assert.equal(done.status, "done", done.error ?? "");
    assert.deepEqual(seen, [{ size: "nano", seed: 4, dataDir }]);
    const [run] = await db.select().from(runs).where(eq(runs.jobId, job.id));
    assert.deepEqual([run.role, run.modelSize, run.status], ["pretrain", "nano", "done"]);
    const rows = await db.select().from(metrics).where(eq(metrics.runId, run.id));
    const series = (name: string) =>
      rows.filter((r) => r.name === name).sort((a, b) => a.step - b.step).map((r) => [r.step, r.value]);
    assert.deepEqual(series("train_loss"), [[0, 7], [10, 5], [20, 4]]);
    assert.deepEqual(series("val_loss"), [[10, 5.5], [20, 4.5]]);
    assert.deepEqual(series("knowledge"), [[20, 0.25]]);
    assert.ok(live.some((e) => e.status === "running" && e.step === 20 && e.loss === 4 && e.total === 20));
    const [model] = await db.select().from(models).where(eq(models.name, "nano"));
    assert.deepEqual(
      [model.status, model.valLoss, model.params, model.checkpointKey, model.jobId],
      ["pretrained", 4.5, 12345, `worlds/${worldKey(activeWorldSpec(dataDir))}/models/nano`, job.id],
    );

    // The listing: disk wins for checkpoints, a live job for status, the database for failures.
    await db.insert(models).values({ name: "mini", status: "failed", valLoss: 9 });
    const queued = await enqueueJob(db, "pretrain-elsewhere", { size: "small" });
    await db.insert(models).values({ name: "small", status: "queued", jobId: queued.id });
    const disk = [
      {
        name: "nano",
        params: 111,
        tokens: 640,
        status: "partial" as const,
        val_loss: 6.5,
        step: 10,
        totalSteps: 20,
      },
      {
        name: "micro",
        params: 222,
        tokens: 1280,
        status: "pretrained" as const,
        val_loss: 3.25,
        knowledge: 0.5,
      },
      { name: "mini", params: 333, tokens: 10, status: "missing" as const, val_loss: null },
      { name: "small", params: 444, tokens: 1280, status: "pretrained" as const, val_loss: 3 },
    ];
    const listing = new Map((await listModels(db, dataDir, disk)).map((m) => [m.name, m]));
    const pick = (name: string) => {
      const m = listing.get(name)!;
      return [m.status, m.params, m.valLoss, m.checkpointPath];
    };
    assert.deepEqual(pick("nano"), ["partial", 111, 6.5, modelDir(dataDir, "nano")], "disk says partial");
    assert.deepEqual(pick("micro"), ["pretrained", 222, 3.25, modelDir(dataDir, "micro")]);
    assert.equal(listing.get("micro")!.knowledge, 0.5);
    assert.deepEqual(pick("mini"), ["failed", 333, null, null], "failed in the db, nothing on disk");
    assert.deepEqual(pick("small"), ["queued", 444, 3, modelDir(dataDir, "small")], "a queued job shows");
    await cancelJob(db, queued.id);
    assert.equal(
      (await listModels(db, dataDir, disk)).find((m) => m.name === "small")!.status,
      "pretrained",
      "a cancelled job no longer does",
    );
  } finally {
    await worker.stop();
  }
});

Deno.test("a throttled progress update is still written at the end of the interval", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  registerJobHandler("burst-then-quiet", async (ctx) => {
    ctx.progress({ step: 1, total: 10 });
    ctx.progress({ step: 2, total: 10, message: "burst" });
    ctx.progress({ step: 3, total: 10, message: "last of the burst" });
    await released;
    return {};
  });
  const bus = new EventBus();
  const steps: number[] = [];
  bus.subscribe((e) => e.type === "burst-then-quiet" && e.step !== undefined && steps.push(e.step));
  const worker = startWorker({ db, dataDir, bus, pollMs: 20, log: () => {}, types: ["burst-then-quiet"] });
  try {
    const job = await enqueueJob(db, "burst-then-quiet", {});
    // The job is quiet after its burst; within the 250 ms interval the row catches up with step 3.
    const progress = await waitFor("the trailing progress row", async () => {
      const p = (await getJob(db, job.id))?.progress as { step: number; message?: string } | null;
      return p?.step === 3 ? p : undefined;
    }, 3000);
    assert.equal(progress.message, "last of the burst");
    assert.deepEqual(steps, [1, 3], "step 2 was throttled away, step 3 went out on the trailing edge");
    release();
    assert.equal((await settled(job.id)).status, "done");
  } finally {
    release();
    await worker.stop();
  }
});

/**
 * The lab's database, except that inserts into `metrics` fail while `outage.failuresLeft` > 0 (each failed
 * statement uses one up): a stand-in for a Postgres that stops for a while and comes back.
 */
function metricsOutageDb(outage: { failuresLeft: number; failed: number }): typeof db {
  const failing = <T extends object>(builder: T): T =>
    new Proxy(builder, {
      get(target, prop) {
        if (prop === "then" && outage.failuresLeft > 0) {
          return (_: unknown, reject: (err: Error) => void) => {
            outage.failuresLeft--;
            outage.failed++;
            reject(new Error("connect ECONNREFUSED 127.0.0.1:5432 (stand-in outage)"));
          };
        }
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop === "then") return value.bind(target);
        return (...args: unknown[]) => {
          const out = value.apply(target, args);
          return out && typeof out === "object" ? failing(out) : out;
        };
      },
    });
  return new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "insert") return typeof value === "function" ? value.bind(target) : value;
      return (table: unknown) =>
        table === metrics ? failing(target.insert(metrics)) : target.insert(table as never);
    },
  });
}

Deno.test("a database outage of a few retries loses no metric row; a longer one fails the job, never done", async () => {
  const outage = { failuresLeft: 0, failed: 0 };
  const worker = startWorker({
    db: metricsOutageDb(outage),
    dataDir,
    pollMs: 20,
    log: () => {},
    types: ["toy-train"],
    writeRetryMs: [5, 10, 20, 40],
  });
  try {
    // Three refused inserts, then the database is back: the fourth try lands every row.
    outage.failuresLeft = 3;
    const brief = await enqueueJob(db, "toy-train", { steps: 12, seed: 5 });
    const done = await settled(brief.id);
    assert.equal(done.status, "done", done.error ?? "");
    assert.equal(outage.failed, 3, "the outage was hit");
    const { runId } = done.result as { runId: number };
    const rows = await db.select().from(metrics).where(eq(metrics.runId, runId));
    assert.deepEqual(rows.filter((r) => r.name === "loss").map((r) => r.step).sort((a, b) => a - b), [
      ...Array(12).keys(),
    ]);
    assert.equal(rows.filter((r) => r.name === "accuracy").length, 12);

    // Down for longer than the five tries, once the job has saved some state: the job fails with the reason,
    // its saved state kept to resume.
    outage.failed = 0;
    // One attempt: a failed write would otherwise be retried after a backoff (tested on its own below).
    const long = await enqueueJob(db, "toy-train", { steps: 40, seed: 6, saveEvery: 10, stepDelayMs: 10 }, {
      maxAttempts: 1,
    });
    await waitFor(
      "a saved state",
      async () => ((await getJob(db, long.id))?.state as { step?: number })?.step,
    );
    outage.failuresLeft = Infinity;
    const failed = await settled(long.id);
    assert.equal(failed.status, "failed");
    assert.match(failed.error ?? "", /database write failed 5 times .*ECONNREFUSED/);
    assert.equal(outage.failed, 5, "one write, tried once and retried four times");
    const saved = (failed.state as { step: number }).step;

    // The database is back: a retry through the API resumes from the saved state and loses no row.
    outage.failuresLeft = 0;
    const api = createApp({ db, dataDir, token: "t", bus: new EventBus(), dbKind: "pglite" });
    const retry = (id: number) =>
      api.request(`/api/jobs/${id}/retry`, { method: "POST", headers: { Authorization: "Bearer t" } });
    assert.equal((await retry(long.id)).status, 200);
    const resumed = await settled(long.id);
    assert.equal(resumed.status, "done", resumed.error ?? "");
    assert.equal((resumed.result as { resumedFromStep: number }).resumedFromStep, saved);
    const resumedRun = (resumed.result as { runId: number }).runId;
    const losses = await db.select().from(metrics)
      .where(and(eq(metrics.runId, resumedRun), eq(metrics.name, "loss")));
    assert.deepEqual(losses.map((r) => r.step).sort((a, b) => a - b), [...Array(40).keys()]);
    const again = await retry(long.id);
    assert.equal(again.status, 409, "a done job is not retried");
    assert.match(
      (await again.json()).error.message,
      /job \d+ is done: only a failed or cancelled job can be retried/,
    );
  } finally {
    outage.failuresLeft = 0;
    await worker.stop();
  }
});

Deno.test("a lease shorter than ten heartbeats is refused, naming both flags", () => {
  assert.throws(
    () => startWorker({ db, dataDir, leaseMs: 1500, heartbeatMs: 300, log: () => {} }),
    /--lease-ms 1500\) must last at least 10 heartbeats \(--heartbeat-ms 300\): raise --lease-ms to 3000/,
  );
});

Deno.test("/api/health answers 503 with the reason when the database does not answer a trivial query", async () => {
  const bus = new EventBus();
  const up = await createApp({ db, dataDir, token: "t", bus, dbKind: "pglite" }).request("/api/health");
  assert.equal(up.status, 200);
  assert.deepEqual(await up.json(), { ok: true, db: "pglite" });
  const downDb = new Proxy(db, {
    get: (target, prop) =>
      prop === "execute"
        ? () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:5432"))
        : Reflect.get(target, prop, target),
  });
  const down = await createApp({ db: downDb, dataDir, token: "t", bus, dbKind: "postgres" })
    .request("/api/health");
  assert.equal(down.status, 503);
  const body = await down.json();
  assert.equal(body.ok, false);
  assert.equal(body.error.code, "database_down");
  assert.match(body.error.message, /does not answer \(select 1\): connect ECONNREFUSED/);
});

Deno.test("the autotune cache is replaced by a rename, never rewritten in place", () => {
  const dir = Deno.makeTempDirSync({ prefix: "lab-tune-cache-" });
  try {
    const file = `${dir}/gpt-lab/matmul-autotune.json`;
    const entry = (block: number) => ({
      adapter: "a",
      method: 2,
      blocks: { NN: [block, block] as [number, number] },
      operands: "buffers" as const,
      gflops: {},
    });
    writeCacheEntry(file, "a", entry(16));
    // A second name for the old file (as a reader holding it open would see it): an in-place write shows
    // through it, a rename leaves it whole.
    Deno.linkSync(file, `${dir}/old.json`);
    writeCacheEntry(file, "b", entry(24));
    assert.deepEqual(Object.keys(JSON.parse(Deno.readTextFileSync(`${dir}/old.json`))), ["a"]);
    assert.deepEqual(Object.keys(JSON.parse(Deno.readTextFileSync(file))), ["a", "b"]);
    assert.deepEqual([...Deno.readDirSync(`${dir}/gpt-lab`)].map((e) => e.name), ["matmul-autotune.json"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a worker records where a job ran (host, owner, adapter) on its row; GET /api/jobs returns it", async () => {
  // The adapter as WebGPU names it, asked here without the lab's device code.
  const info = (await navigator.gpu.requestAdapter({ powerPreference: "high-performance" }))?.info;
  const worker = startWorker({ db, dataDir, pollMs: 20, log: () => {}, types: ["toy-train"] });
  try {
    const job = await enqueueJob(db, "toy-train", { steps: 2, seed: 1 });
    assert.equal((await settled(job.id)).status, "done");
    const app = createApp({ db, dataDir, token: "t", bus: new EventBus(), dbKind: "pglite" });
    const response = await app.request("/api/jobs", { headers: { Authorization: "Bearer t" } });
    assert.equal(response.status, 200);
    const listed = (await response.json() as { id: number; ranOn: Record<string, string> }[])
      .find((j) => j.id === job.id)!;
    assert.equal(listed.ranOn.host, Deno.hostname());
    assert.equal(listed.ranOn.owner, worker.owner);
    assert.ok(info?.description, "this machine has a WebGPU adapter");
    assert.match(
      listed.ranOn.adapter,
      new RegExp(`^${info.description.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
  } finally {
    await worker.stop();
  }
});

Deno.test("start --no-worker serves only (refused without DATABASE_URL); --workers N runs N jobs at once", () => {
  const before = Deno.env.get("DATABASE_URL");
  try {
    Deno.env.delete("DATABASE_URL");
    assert.equal(startOptions([]).worker, true);
    assert.throws(() => startOptions(["--no-worker"]), /--no-worker needs DATABASE_URL/);
    Deno.env.set("DATABASE_URL", "postgres://lab@127.0.0.1:1/lab");
    assert.equal(startOptions(["--no-worker"]).worker, false);
    assert.equal(startOptions(["--no-worker"]).workers, 0);
    assert.throws(
      () => startOptions(["--no-worker", "--workers", "2"]),
      /--workers and --no-worker contradict/,
    );
    // --workers N: N jobs at once, each on a thread of its own; one by default.
    assert.equal(startOptions([]).workers, 1);
    assert.equal(startOptions(["--workers", "2"]).workers, 2);
    for (const bad of ["0", "1.5", "9", "two"]) {
      assert.throws(
        () => startOptions(["--workers", bad]),
        new RegExp(`--workers must be a whole number 1–8 \\(jobs run at once\\), got "${bad}"`),
      );
    }
  } finally {
    if (before === undefined) Deno.env.delete("DATABASE_URL");
    else Deno.env.set("DATABASE_URL", before);
  }
});
