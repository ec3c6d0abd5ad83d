/** The job queue and worker on an embedded PGlite: leasing, expiry, cancel, resume and the toy-train job. */
import assert from "node:assert/strict";
import { and, eq } from "drizzle-orm";
import { openDb } from "../db/client.ts";
import { metrics, runs } from "../db/schema.ts";
import { EventBus } from "../server/jobs/bus.ts";
import "../server/jobs/handlers.ts";
import {
  cancelJob,
  enqueueJob,
  getJob,
  leaseNextJob,
  renewLease,
  requeueExpiredJobs,
} from "../server/jobs/queue.ts";
import { toyDataset, toyEvaluate, toySgdStep } from "../server/jobs/toy_train.ts";
import { startWorker } from "../server/jobs/worker.ts";

const dataDir = await Deno.makeTempDir({ prefix: "lab-jobs-test-" });
const { db, close } = await openDb({ dataDir });

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

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

Deno.test("toy-train runs to done, learns the blobs and writes every metric row", async () => {
  const bus = new EventBus();
  const events: string[] = [];
  bus.subscribe((e) => events.push(`${e.jobId}:${e.status}`));
  const worker = startWorker({ db, dataDir, bus, pollMs: 20, log: () => {}, types: ["toy-train", "w2s"] });
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
    const orphan = await enqueueJob(db, "w2s", { task: "x" }, { bus });
    const next = await enqueueJob(db, "toy-train", { steps: 5 }, { bus });
    const failed = await settled(orphan.id);
    assert.equal(failed.status, "failed");
    assert.match(failed.error ?? "", /no handler is registered for job type "w2s" \(registered: .*toy-train/);
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
    const { jobs } = await import("../db/schema.ts");
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
