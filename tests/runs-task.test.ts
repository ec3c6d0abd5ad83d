/**
 * The runs table names the task of every run of a sweep over several tasks (GET /api/runs): the runs and
 * results are written by the sweep's own recorder (sweepRecording), as a demo job (every task in one job)
 * and as sweep-cell jobs (one task each, interleaved) store them; the task filter and the text filter
 * find them. A run whose experiment has not finished is named only where its job says (a sweep cell
 * holds one task); otherwise its task stays unknown rather than guessed.
 */
import assert from "node:assert/strict";
import { openDb } from "../db/client.ts";
import { experiments, jobs, runs } from "../db/schema.ts";
import { createApp } from "../server/api/app.ts";
import { EventBus } from "../server/jobs/bus.ts";
import { SWEEP_CELL_JOB, sweepRecording } from "../server/jobs/experiment-jobs.ts";
import type { JobContext } from "../server/jobs/registry.ts";
import type { SweepDeps } from "../server/lab/sweep.ts";
import type { ExperimentResult, Role, RoleRun } from "../server/contract/results.ts";
import { configDiff, runConfig } from "../web/lib/run-table.ts";
import { checkResponses } from "./helpers/openapi-check.ts";
import { waitFor } from "./helpers/wait.ts";

const dataDir = await Deno.makeTempDir({ prefix: "lab-runs-task-test-" });
const opened = await openDb({ dataDir });
const db = opened.db;
const app = checkResponses(createApp({ db, dataDir, token: "t", bus: new EventBus(), dbKind: opened.kind }));

Deno.test.afterAll(async () => {
  await opened.close();
  await Deno.remove(dataDir, { recursive: true });
});

type Row = { id: number; task: string | null; role: string; status: string; jobId: number | null };

async function table(query: string): Promise<{ rows: Row[]; total: number }> {
  const res = await app.request(`/api/runs?${query}`);
  assert.equal(res.status, 200, query);
  return { rows: await res.json(), total: Number(res.headers.get("x-total-count")) };
}

/** What a job's handler is given, as far as the recorder uses it. */
function jobContext(jobId: number): JobContext {
  return {
    db,
    dataDir,
    jobId,
    attempt: 1,
    params: {},
    signal: new AbortController().signal,
    progress: () => {},
    metrics: () => {},
    flushMetrics: async () => {},
    loadState: () => Promise.resolve(undefined),
    saveState: async () => {},
  };
}

const reading = (testAcc: number) => ({ step: 30, valAcc: testAcc - 0.05, testAcc });

/**
 * A role as the pipeline reports it. Runs of the two tasks differ only in what training measured (seconds,
 * accuracies): role, size, description and hyper are the same, as they are in a real sweep.
 */
function roleRun(role: Role, size: string, seed: number, seconds: number, acc: number): RoleRun {
  return {
    role,
    size,
    description: role === "student" ? "train2 labels of nano (naive)" : "train1 ground truth",
    validation: role === "student" ? "supervisor labels" : "ground truth",
    mode: "finetune",
    cached: false,
    hyper: {
      epochs: 2,
      lr: 1e-4,
      batchSize: 16,
      warmupFraction: 0.1,
      weightDecay: 0,
      evalEvery: 0,
      seed: seed * 1000 + 1,
    },
    steps: 30,
    seconds,
    final: reading(acc),
    selected: reading(acc),
    oracle: reading(acc),
    curve: [],
  };
}

function experimentResult(task: string, seed: number, roleRuns: RoleRun[]): ExperimentResult {
  const readings = { weak_acc: 0.6, ceiling_acc: 0.8, student_acc: 0.7, pgr: 0.5 };
  return {
    ...readings,
    task,
    weak: "nano",
    strong: "small",
    strongKnowledge: null,
    method: "naive",
    mode: "finetune",
    seed,
    n: { train1: 10, train2: 10, validation: 10, test: 10 },
    reading: "final",
    gap_too_small: false,
    gap_noise: 0.1,
    agreement: { all: 0.9, supervisor_correct: 1, supervisor_wrong: 0.5 },
    final: { ...readings, steps: { weak: 30, ceiling: 30, student: 30 } },
    selected: { ...readings, steps: { weak: 30, ceiling: 30, student: 30 } },
    oracle: { ...readings, steps: { weak: 30, ceiling: 30, student: 30 }, student_step: 30 },
    runs: roleRuns,
  } as unknown as ExperimentResult;
}

/**
 * The three roles of one naive experiment; `salt` sets apart what training measured (seconds and accuracies
 * as a clock and a test set give them, not round numbers: they must come back from the store unchanged).
 */
function experimentRuns(seed: number, salt: number): RoleRun[] {
  return [
    roleRun("weak", "nano", seed, Math.PI * (1 + salt), 2 / 3 + salt / 7),
    roleRun("ceiling", "small", seed, Math.E * (2 + salt) + 1e-9, 0.1 + 0.7 + salt / 7),
    roleRun("student", "small", seed, Math.SQRT2 * (3 + salt) / 1e3, 5 / 7 + salt / 7),
  ];
}

async function record(deps: SweepDeps, task: string, seed: number, roleRuns: RoleRun[]) {
  for (const run of roleRuns) await deps.onRun!(run);
  await deps.onExperiment!(experimentResult(task, seed, roleRuns), 0, 1);
}

/** A run that has started training (its first curve point) and not finished. */
async function startRun(deps: SweepDeps, jobId: number, role: Role, size: string): Promise<number> {
  const before = new Set((await db.select({ id: runs.id }).from(runs)).map((r) => r.id));
  deps.onEval!(role, size, { step: 0, epoch: 0, lr: 0, trainLoss: NaN, valAcc: 0.5, testAcc: 0.5, alpha: 0 });
  const [row] = await waitFor(`the running ${role} of job ${jobId}`, async () => {
    const rows = (await db.select({ id: runs.id, jobId: runs.jobId }).from(runs))
      .filter((r) => !before.has(r.id) && r.jobId === jobId);
    return rows.length > 0 && rows;
  });
  return row.id;
}

const byId = (rows: Row[]) => new Map(rows.map((r) => [r.id, r.task]));

Deno.test("runs table: every run of a sweep over the world suite in one job (the demo) has its task", async () => {
  const config = { tasks: ["world"], sizes: ["nano", "small"], methods: ["naive"], seeds: [0] };
  const [sweep] = await db.insert(experiments).values({ kind: "sweep", name: "demo", config }).returning();
  const [job] = await db.insert(jobs).values({
    type: "demo",
    status: "running",
    params: { ...config, experimentId: sweep.id },
  }).returning();
  const deps = await sweepRecording(jobContext(job.id), sweep.id);
  await record(deps, "world-coast", 0, experimentRuns(0, 0));
  await record(deps, "world-region", 0, experimentRuns(0, 0.5));
  const running = await startRun(deps, job.id, "weak", "nano");

  const all = await table(`experimentId=${sweep.id}&sort=id&order=asc`);
  assert.equal(all.total, 7);
  assert.deepEqual(all.rows.map((r) => [r.role, r.task]), [
    ["weak", "world-coast"],
    ["ceiling", "world-coast"],
    ["student", "world-coast"],
    ["weak", "world-region"],
    ["ceiling", "world-region"],
    ["student", "world-region"],
    // Its experiment has not finished, and one job trains every task: nothing says which task it is.
    ["weak", null],
  ]);
  assert.equal(byId(all.rows).get(running), null);

  const coast = await table(`experimentId=${sweep.id}&task=world-coast`);
  assert.equal(coast.total, 3);
  assert.ok(coast.rows.every((r) => r.task === "world-coast"));
  assert.equal((await table(`experimentId=${sweep.id}&task=world-region`)).total, 3);
  // "world" names the suite, not a task: no run is of it.
  assert.equal((await table(`experimentId=${sweep.id}&task=world`)).total, 0);
  assert.equal((await table(`experimentId=${sweep.id}&q=REGION`)).total, 3);
  // The configuration diff of the two tasks' weak models names the task as what differs.
  const [coastWeak, regionWeak] = all.rows.filter((r) => r.role === "weak") as unknown as Parameters<
    typeof runConfig
  >[0][];
  const diff = configDiff(runConfig(coastWeak), runConfig(regionWeak)).filter((d) => d.differs);
  assert.deepEqual(diff.map((d) => [d.key, d.a, d.b]), [["task", "world-coast", "world-region"]]);
});

Deno.test("runs table: runs of a two-task sweep's cell jobs, written interleaved, each have their task", async () => {
  const config = {
    tasks: ["world-coast", "world-region"],
    sizes: ["nano", "small"],
    methods: ["naive", "auxconf"],
    seeds: [0],
  };
  const [sweep] = await db.insert(experiments).values({ kind: "sweep", config }).returning();
  const [parent] = await db.insert(jobs).values({
    type: "sweep",
    status: "running",
    params: { ...config, experimentId: sweep.id },
  }).returning();
  const [coastJob, regionJob] = await db.insert(jobs).values([0, 1].map((i) => ({
    type: SWEEP_CELL_JOB,
    status: "running",
    parentId: parent.id,
    params: { ...config, experimentId: sweep.id, indices: [i] },
  }))).returning();
  const coast = await sweepRecording(jobContext(coastJob.id), sweep.id);
  const region = await sweepRecording(jobContext(regionJob.id), sweep.id);
  // Two workers: the cells' roles finish in turn, each cell's experiment is written when its student is done.
  const [cw, cc, cs] = experimentRuns(0, 0);
  const [rw, rc, rs] = experimentRuns(0, 0.5);
  await coast.onRun!(cw);
  await region.onRun!(rw);
  await coast.onRun!(cc);
  await region.onRun!(rc);
  await region.onRun!(rs);
  await region.onExperiment!(experimentResult("world-region", 0, [rw, rc, rs]), 1, 2);
  await coast.onRun!(cs);
  await coast.onExperiment!(experimentResult("world-coast", 0, [cw, cc, cs]), 0, 2);
  // The coast cell's next experiment (auxconf) has started: the cell is one task's.
  const coastRunning = await startRun(coast, coastJob.id, "student", "small");

  const all = await table(`experimentId=${sweep.id}&sort=id&order=asc&limit=100`);
  assert.equal(all.total, 7);
  for (const row of all.rows) {
    assert.equal(row.task, row.jobId === coastJob.id ? "world-coast" : "world-region", `run ${row.id}`);
  }
  assert.equal(byId(all.rows).get(coastRunning), "world-coast");
  const coastRows = await table(`experimentId=${sweep.id}&task=world-coast`);
  assert.deepEqual(
    coastRows.rows.map((r) => r.jobId),
    [coastJob.id, coastJob.id, coastJob.id, coastJob.id],
  );
  const regionRows = await table(`task=world-region&experimentId=${sweep.id}`);
  assert.equal(regionRows.total, 3);
  assert.ok(regionRows.rows.every((r) => r.jobId === regionJob.id));
});

Deno.test("runs table: a cell's first run in training has no task until a run of its cell is placed", async () => {
  const config = {
    tasks: ["world-coast", "world-region"],
    sizes: ["nano", "small"],
    methods: ["naive"],
    seeds: [1],
  };
  const [sweep] = await db.insert(experiments).values({ kind: "sweep", config }).returning();
  const [cell] = await db.insert(jobs).values({
    type: SWEEP_CELL_JOB,
    status: "running",
    params: { ...config, experimentId: sweep.id, indices: [1] },
  }).returning();
  const deps = await sweepRecording(jobContext(cell.id), sweep.id);
  await startRun(deps, cell.id, "weak", "nano");
  const [row] = (await table(`experimentId=${sweep.id}`)).rows;
  assert.equal(row.task, null);
  assert.equal((await table(`experimentId=${sweep.id}&task=world-coast`)).total, 0);
});
