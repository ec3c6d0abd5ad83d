/**
 * A sweep as jobs on PGlite: the sweep job fans out into sweep-cell jobs that two workers (each with its own
 * data directory: no shared disk) share, and the summary it assembles equals the one-job path's (runSweep
 * in this process on a fresh cache). A worker that alone leases from the queue (lanes 2) runs a sweep in its
 * job instead, in two worker lanes, to the same summary. A w2s job whose size is being pretrained waits for
 * that job.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { openDb } from "../db/client.ts";
import { experiments, jobs, results, runs, taskExamples, tasks } from "../db/schema.ts";
import { SweepCreate } from "../server/contract/experiments.ts";
import {
  dbTaskLookup,
  makeSweepHandlers,
  sweepOptions,
  sweepSummary,
} from "../server/jobs/experiment-jobs.ts";
import { SWEEP_CELL_JOB } from "../server/contract/jobs.ts";
import "../server/jobs/handlers.ts";
import { enqueueJob, finishJob, getJob, leaseNextJob } from "../server/jobs/queue.ts";
import { registerJobHandler } from "../server/jobs/registry.ts";
import { startWorker } from "../server/jobs/worker.ts";
import { ExperimentCache } from "../server/lab/cache.ts";
import { runSweep } from "../server/lab/sweep.ts";
import { randomWords, TINY_CORPUS, tinyLadder, tinyModels } from "./helpers/tiny-ladder.ts";
import { ladderModelSource, type ModelSource } from "../server/lab/model-source.ts";
import { EventBus } from "../server/jobs/bus.ts";
import { waitFor } from "./helpers/wait.ts";

const root = await Deno.makeTempDir({ prefix: "lab-sweep-jobs-test-" });
const { db, close } = await openDb({ dataDir: join(root, "server") });

Deno.test.afterAll?.(async () => {
  await close();
  await Deno.remove(root, { recursive: true });
});

const settled = (id: number) =>
  waitFor(`job ${id} to finish`, async () => {
    const job = await getJob(db, id);
    return job && ["done", "failed", "cancelled"].includes(job.status) ? job : undefined;
  }, 60_000);

/** An imported task of 240 two-word texts; the label is whether the last letter is in a–m. */
async function importTask(name: string): Promise<void> {
  const word = randomWords(99, 2, 3);
  const rows = Array.from({ length: 240 }, () => {
    const txt = `${word()} ${word()}`;
    return { txt, hard_label: txt.charCodeAt(txt.length - 1) <= 109 ? 1 : 0 };
  });
  await db.insert(tasks).values({ name, exampleCount: rows.length });
  await db.insert(taskExamples).values(rows.map((example, idx) => ({ taskName: name, idx, example })));
}

Deno.test("a sweep fans out into cell jobs over two workers and sums up as the one-job sweep does", async () => {
  await importTask("last-letter");
  const request = SweepCreate.parse({
    tasks: ["last-letter"],
    sizes: ["tiny", "small", "big"],
    methods: ["naive"],
    seeds: [0],
    epochs: 1,
    batchSize: 16,
  });
  // Every cell waits (up to 20 s) until a second cell runs: each worker runs one job at a time, so the
  // cells cannot all land on whichever worker polls first.
  const handlers = makeSweepHandlers(() => Promise.resolve(tinyModels()));
  let cellsStarted = 0;
  registerJobHandler("sweep", handlers.sweep);
  registerJobHandler(SWEEP_CELL_JOB, async (ctx) => {
    cellsStarted++;
    await waitFor("a second cell to start", () => Promise.resolve(cellsStarted >= 2), 20_000).catch(() => {});
    return await handlers.cell(ctx);
  });
  const [experiment] = await db.insert(experiments).values({ kind: "sweep", config: request }).returning();
  const job = await enqueueJob(db, "sweep", { ...request, experimentId: experiment.id });
  await db.update(experiments).set({ jobId: job.id }).where(eq(experiments.id, experiment.id));
  const workers = ["w1", "w2"].map((owner) =>
    startWorker({ db, dataDir: join(root, owner), owner, pollMs: 20, log: () => {} })
  );
  let finished;
  try {
    finished = await settled(job.id);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
  assert.equal(finished.status, "done", finished.error ?? "");

  const cells = await db.select().from(jobs).where(eq(jobs.parentId, job.id)).orderBy(jobs.id);
  assert.equal(cells.length, 3, "one cell job per pair (one task, method and seed)");
  assert.ok(cells.every((c) => c.status === "done" && c.type === SWEEP_CELL_JOB));
  const owners = new Set(cells.map((c) => (c.ranOn as { owner: string }).owner));
  assert.deepEqual([...owners].sort(), ["w1", "w2"], "the cells ran on both workers");
  assert.deepEqual(
    cells.map((c) => (c.params as { indices: number[] }).indices),
    [[0], [1], [2]],
  );

  // The one-job path: the same sweep in this process, on a cache of its own.
  const progress: { step: number; total: number; unit?: string }[] = [];
  const reference = await runSweep(sweepOptions(request), {
    models: tinyModels(),
    cache: new ExperimentCache(join(root, "reference-cache")),
    importedTasks: dbTaskLookup(db),
    onProgress: (p) => progress.push(p),
  });
  assert.deepEqual(finished.result, JSON.parse(JSON.stringify(sweepSummary(reference))));
  // The sweep counts experiments, the running one's share included: 0 … 3 of 3, in order.
  assert.ok(progress.every((p) => p.unit === "experiments" && p.total === 3), JSON.stringify(progress[0]));
  assert.ok(progress.every((p, i) => i === 0 || p.step >= progress[i - 1].step), "steps never go back");
  assert.ok(progress.some((p) => !Number.isInteger(p.step)), "a share of the running experiment shows");
  assert.equal(progress.at(-1)!.step, 3);
  const rows = await db.select().from(results).where(eq(results.experimentId, experiment.id));
  assert.deepEqual(
    rows.map((r) => `${r.weakSize}→${r.strongSize}`).sort(),
    ["small→big", "tiny→big", "tiny→small"],
  );
  const [stored] = await db.select().from(experiments).where(eq(experiments.id, experiment.id));
  assert.equal(stored.status, "done");
  // Each cell wrote its runs with their task: three roles of each of the three pairs.
  const cellRuns = await db.select({ task: runs.task }).from(runs).where(
    eq(runs.experimentId, experiment.id),
  );
  assert.deepEqual(cellRuns.map((r) => r.task), Array(9).fill("last-letter"));
});

Deno.test("a worker that alone leases (lanes 2) runs the sweep in the job, in two worker lanes", async () => {
  await importTask("last-letter-lanes");
  const request = SweepCreate.parse({
    tasks: ["last-letter-lanes"],
    sizes: ["nano", "micro"],
    methods: ["naive", "auxconf"],
    seeds: [0, 1],
    epochs: 1,
    batchSize: 16,
  });
  const dataDir = join(root, "solo");
  await tinyLadder(dataDir);
  let loads = 0;
  const counted = (dir: string): Promise<ModelSource> => {
    const source = ladderModelSource(dir, { corpus: TINY_CORPUS });
    return Promise.resolve({ ...source, load: (size) => (loads++, source.load(size)) });
  };
  registerJobHandler("sweep", makeSweepHandlers(counted, TINY_CORPUS).sweep);
  const [experiment] = await db.insert(experiments).values({ kind: "sweep", config: request }).returning();
  const job = await enqueueJob(db, "sweep", { ...request, experimentId: experiment.id });
  const bus = new EventBus();
  const messages: string[] = [];
  bus.subscribe((e) => void (e.message && messages.push(e.message)));
  const worker = startWorker({ db, dataDir, bus, owner: "solo", pollMs: 20, lanes: 2, log: () => {} });
  let finished;
  try {
    finished = await settled(job.id);
  } finally {
    await worker.stop();
  }
  assert.equal(finished.status, "done", finished.error ?? "");
  assert.deepEqual(await db.select().from(jobs).where(eq(jobs.parentId, job.id)), [], "no cell jobs");

  const reference = await runSweep(sweepOptions(request), {
    models: ladderModelSource(dataDir, { corpus: TINY_CORPUS }),
    cache: new ExperimentCache(join(root, "solo-reference-cache")),
    importedTasks: dbTaskLookup(db),
  });
  assert.deepEqual(finished.result, JSON.parse(JSON.stringify(sweepSummary(reference))));
  assert.equal(loads, 0, "the lanes' workers loaded the models: this thread only planned the sweep");
  assert.ok(messages.some((m) => m.startsWith("4/4 ")), `progress over the plan: ${messages.at(-1)}`);
  // Each experiment stored once, with its three roles' runs and their task.
  const rows = await db.select().from(results).where(eq(results.experimentId, experiment.id));
  assert.deepEqual(rows.map((r) => `${r.method} s${r.seed}`).sort(), [
    "auxconf s0",
    "auxconf s1",
    "naive s0",
    "naive s1",
  ]);
  const laneRuns = await db.select({ task: runs.task, role: runs.role }).from(runs).where(
    eq(runs.experimentId, experiment.id),
  );
  assert.deepEqual(
    laneRuns.map((r) => `${r.task} ${r.role}`).sort(),
    ["ceiling", "student", "weak"].flatMap((role) => Array(4).fill(`last-letter-lanes ${role}`)),
  );
});

Deno.test("a w2s or sweep job waits for the pretraining of its size, and fails with it, naming it", async () => {
  const pretrain = await enqueueJob(db, "pretrain", { size: "nano" });
  const config = { task: "world-region", weak: "nano", strong: "micro", method: "naive", seed: 0 };
  const [experiment] = await db.insert(experiments).values({ kind: "experiment", config }).returning();
  const w2s = await enqueueJob(db, "w2s", { ...config, experimentId: experiment.id });
  const sweepConfig = SweepCreate.parse({
    tasks: ["world-region"],
    sizes: ["nano", "micro"],
    methods: ["naive"],
    seeds: [0],
  });
  const [sweepRow] = await db.insert(experiments).values({ kind: "sweep", config: sweepConfig }).returning();
  const sweep = await enqueueJob(db, "sweep", { ...sweepConfig, experimentId: sweepRow.id });
  const dataDir = join(root, "w2s-worker");
  const worker = startWorker({ db, dataDir, pollMs: 20, log: () => {}, types: ["w2s", "sweep"] });
  try {
    for (const id of [w2s.id, sweep.id]) {
      const waiting = await waitFor(`job ${id} to wait`, async () => {
        const job = await getJob(db, id);
        return job?.status === "queued" && job.waitsFor.length > 0 ? job : undefined;
      });
      assert.deepEqual(waiting.waitsFor, [pretrain.id]);
      assert.equal(waiting.attempts, 0, "waiting uses no attempt");
      assert.ok(waiting.runAfter && waiting.runAfter.getTime() > Date.now() - 1000);
      assert.equal(waiting.error, null);
    }
    const leased = await leaseNextJob(db, "pretrainer", 60_000, ["pretrain"]);
    assert.equal(leased?.id, pretrain.id);
    await finishJob(db, pretrain.id, "pretrainer", { status: "failed", error: "out of memory" });
    for (const id of [w2s.id, sweep.id]) {
      const failed = await settled(id);
      assert.equal(
        failed.error,
        `job ${pretrain.id} (pretrain), which this job waits for, failed: out of memory`,
      );
    }

    // No pretrain job for the size: today's message, naming the command that makes it.
    const alone = await enqueueJob(db, "w2s", { ...config, experimentId: experiment.id });
    const failedAlone = await settled(alone.id);
    assert.equal(failedAlone.status, "failed");
    assert.match(
      failedAlone.error ?? "",
      /size "nano" has no pretrained checkpoint.*lab pretrain --size nano/,
    );
  } finally {
    await worker.stop();
  }
});
