/**
 * The runs table names the task of every run of a sweep over several tasks (GET /api/runs). A run records
 * its task when its row is written, so the runs of an experiment still training carry it: the pipeline
 * (runSweep with a stand-in trainer) writes them through the sweep's own recorder (sweepRecording), as the
 * demo job does (every task in one job). Runs stored before runs recorded their task (migration 0006) are
 * written here as the recorder wrote them then, with no task in the row: the results that report them name
 * theirs, as sweep-cell jobs (one task each, interleaved) and a demo job stored them; one whose experiment
 * has not finished is named only where its job says (a sweep cell holds one task), otherwise its task
 * stays unknown rather than guessed. The task filter and the text filter find them.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import { type LabDb, openDb } from "../db/client.ts";
import * as schema from "../db/schema.ts";
import { experiments, jobs, runs } from "../db/schema.ts";
import type { Gpu } from "../kernels/device.ts";
import { createApp } from "../server/api/app.ts";
import { EventBus } from "../server/jobs/bus.ts";
import { sweepRecording } from "../server/jobs/experiment-jobs.ts";
import { SWEEP_CELL_JOB } from "../server/contract/jobs.ts";
import type { JobContext } from "../server/jobs/registry.ts";
import type { RoleTrainer } from "../server/lab/roles.ts";
import type { TaskExample } from "../server/tasks/types.ts";
import { runSweep, type SweepDeps, type SweepOptions } from "../server/lab/sweep.ts";
import type { ExperimentResult, Role, RoleRun } from "../server/contract/results.ts";
import { configDiff, runConfig } from "../web/lib/run-table.ts";
import { checkResponses } from "./helpers/openapi-check.ts";
import { randomWords, tinyModels } from "./helpers/tiny-ladder.ts";
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

/**
 * An experiment's runs and result as the recorder stored them before runs recorded their task: without the
 * pipeline's onStart, which names the task, the rows hold none.
 */
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

/** The task each run row of an experiment holds itself, in id order. */
/** A sweep and the running demo job that trains it, every task in one job. */
async function runningDemo(config: object) {
  const [sweep] = await db.insert(experiments).values({ kind: "sweep", name: "demo", config }).returning();
  const [job] = await db.insert(jobs).values({
    type: "demo",
    status: "running",
    params: { ...config, experimentId: sweep.id },
  }).returning();
  return { sweep, job };
}

async function storedTasks(experimentId: number): Promise<(string | null)[]> {
  const rows = await db.select({ task: runs.task }).from(runs).where(eq(runs.experimentId, experimentId))
    .orderBy(runs.id);
  return rows.map((r) => r.task);
}

/** 80 examples of an imported task: two seeded random words each, labels alternating. */
function importedExamples(seed: number): TaskExample[] {
  const word = randomWords(seed, 2, 4);
  return Array.from(
    { length: 80 },
    (_, i) => ({ txt: `${word()} ${word()}`, hard_label: i % 2 === 0 ? 0 : 1 }),
  );
}

/**
 * Trains nothing: every role returns the same readings and soft labels, its seconds counting the roles. The
 * `hold`-th role sends its first curve point, as finetuning does, and waits for `release` before it ends.
 */
function standInTrainer(deps: SweepDeps, hold: number, release: Promise<void>): RoleTrainer {
  let roles = 0;
  return async (input) => {
    const seconds = ++roles;
    if (seconds === hold) {
      deps.onEval!(input.role, input.size, {
        step: 0,
        epoch: 0,
        lr: 0,
        trainLoss: NaN,
        valAcc: 0.5,
        testAcc: 0.5,
        alpha: 0,
      });
      await release;
    }
    const predictions = Object.fromEntries(
      Object.entries(input.predict).map(([name, set]) => [
        name,
        Array.from({ length: set.n }, (_, i) => (i % 10) / 10 + 0.05),
      ]),
    );
    return {
      curve: [],
      final: reading(0.7),
      selected: reading(0.7),
      oracle: reading(0.7),
      predictions,
      steps: 30,
      seconds,
    };
  };
}

Deno.test("runs table: the runs of an experiment still training carry its task (the demo: every task in one job)", async () => {
  const config: SweepOptions = {
    tasks: ["rows-a", "rows-b"],
    sizes: ["tiny", "small"],
    methods: ["naive"],
    seeds: [0],
  };
  const { sweep, job } = await runningDemo(config);
  const recording = await sweepRecording(jobContext(job.id), sweep.id);
  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  const examples: Record<string, TaskExample[]> = {
    "rows-a": importedExamples(1),
    "rows-b": importedExamples(2),
  };
  // Roles train in plan order: rows-a's weak, ceiling and student, then rows-b's weak; the fifth role,
  // rows-b's ceiling, holds on in training.
  const sweepDone = runSweep(config, {
    ...recording,
    models: tinyModels(),
    gpu: {} as Gpu,
    importedTasks: (name) => Promise.resolve(examples[name]),
    trainer: standInTrainer(recording, 5, released),
  });
  try {
    await waitFor("rows-b's ceiling in training", async () => (await storedTasks(sweep.id)).length === 5);
    const training = await table(`experimentId=${sweep.id}&sort=id&order=asc`);
    assert.deepEqual(training.rows.map((r) => [r.role, r.status, r.task]), [
      ["weak", "done", "rows-a"],
      ["ceiling", "done", "rows-a"],
      ["student", "done", "rows-a"],
      ["weak", "done", "rows-b"],
      ["ceiling", "running", "rows-b"],
    ]);
    // Each row holds its task from the moment it was written, before its experiment has a result.
    assert.deepEqual(await storedTasks(sweep.id), ["rows-a", "rows-a", "rows-a", "rows-b", "rows-b"]);
    const b = await table(`experimentId=${sweep.id}&task=rows-b`);
    assert.deepEqual(b.rows.map((r) => r.role).sort(), ["ceiling", "weak"]);
  } finally {
    release();
  }
  await sweepDone;
  const all = await table(`experimentId=${sweep.id}&sort=id&order=asc`);
  assert.deepEqual(all.rows.map((r) => [r.role, r.status, r.task]), [
    ["weak", "done", "rows-a"],
    ["ceiling", "done", "rows-a"],
    ["student", "done", "rows-a"],
    ["weak", "done", "rows-b"],
    ["ceiling", "done", "rows-b"],
    ["student", "done", "rows-b"],
  ]);
});

/** The start of an experiment as the pipeline announces it (the recorder reads its task). */
const started = (task: string) => ({
  task,
  weak: "nano",
  strong: "small",
  method: "naive" as const,
  seed: 0,
});

Deno.test("runs table: a demo's sweep in two lanes keeps each lane's run in training apart", async () => {
  const config = { tasks: ["world"], sizes: ["nano", "small"], methods: ["naive"], seeds: [0] };
  const { sweep, job } = await runningDemo(config);
  const reported: { runIds?: number[] }[] = [];
  const recording = await sweepRecording(
    { ...jobContext(job.id), progress: (p) => void reported.push(p) },
    sweep.id,
    { lanes: 2 },
  );
  assert.equal(recording.lanes?.concurrency, 2);
  const opened = [0, 1].map((n) => recording.lanes!.open(n));
  opened.forEach((lane) => lane.close?.());
  const [coast, region] = opened.map((lane) => ({ ...recording, ...lane.callbacks }));
  // Both lanes train a weak nano at once: two rows in training, each of its lane's task.
  coast.onStart!(started("world-coast"));
  region.onStart!(started("world-region"));
  const coastWeak = await startRun(coast, job.id, "weak", "nano");
  const regionWeak = await startRun(region, job.id, "weak", "nano");
  assert.notEqual(coastWeak, regionWeak);
  recording.onProgress!({ step: 0.5, total: 2, unit: "experiments", stage: "both lanes" });
  assert.deepEqual(reported.at(-1)?.runIds?.toSorted(), [coastWeak, regionWeak].toSorted(), "both live runs");
  const [rw, rc, rs] = experimentRuns(0, 0.5);
  const [cw, cc, cs] = experimentRuns(0, 0);
  await region.onRun!(rw);
  await coast.onRun!(cw);
  for (const run of [rc, rs]) await region.onRun!(run);
  await region.onExperiment!(experimentResult("world-region", 0, [rw, rc, rs]), 1, 2);
  for (const run of [cc, cs]) await coast.onRun!(run);
  await coast.onExperiment!(experimentResult("world-coast", 0, [cw, cc, cs]), 0, 2);
  const all = await table(`experimentId=${sweep.id}&sort=id&order=asc`);
  assert.deepEqual(all.rows.map((r) => [r.id, r.role, r.status, r.task]), [
    [coastWeak, "weak", "done", "world-coast"],
    [regionWeak, "weak", "done", "world-region"],
    [all.rows[2].id, "ceiling", "done", "world-region"],
    [all.rows[3].id, "student", "done", "world-region"],
    [all.rows[4].id, "ceiling", "done", "world-coast"],
    [all.rows[5].id, "student", "done", "world-coast"],
  ], "each weak run finished in its own row; no run of one lane written over the other's");
});

Deno.test("runs stored without their task: every run of the world suite in one job (the demo) that a result reports has its task", async () => {
  const config = { tasks: ["world"], sizes: ["nano", "small"], methods: ["naive"], seeds: [0] };
  const { sweep, job } = await runningDemo(config);
  const deps = await sweepRecording(jobContext(job.id), sweep.id);
  await record(deps, "world-coast", 0, experimentRuns(0, 0));
  await record(deps, "world-region", 0, experimentRuns(0, 0.5));
  const running = await startRun(deps, job.id, "weak", "nano");
  assert.deepEqual(await storedTasks(sweep.id), Array(7).fill(null), "rows as stored before migration 0006");

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
  // One run's own page names its task as its table row does.
  for (const row of [all.rows[0], all.rows[3], all.rows[6]]) {
    const res = await app.request(`/api/runs/${row.id}`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).task, row.task, `GET /api/runs/${row.id}`);
  }

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

Deno.test("runs stored without their task: runs of a two-task sweep's cell jobs, written interleaved, each have their task", async () => {
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
  assert.deepEqual(await storedTasks(sweep.id), Array(7).fill(null), "rows as stored before migration 0006");

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

Deno.test("runs stored without their task: a cell's first run in training has no task until a run of its cell is placed", async () => {
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

const MIGRATIONS = fileURLToPath(new URL("../db/migrations", import.meta.url));

Deno.test("migration 0006: runs stored before it are kept, without a task in the row, and the table names theirs", async () => {
  // The schema as it was before 0006: migrations 0000–0005 only.
  const before = await Deno.makeTempDir({ prefix: "runs-task-migrations-" });
  const client = new PGlite();
  try {
    await Deno.mkdir(`${before}/meta`);
    const journal = JSON.parse(await Deno.readTextFile(`${MIGRATIONS}/meta/_journal.json`));
    journal.entries = journal.entries.filter((e: { idx: number }) => e.idx < 6);
    await Deno.writeTextFile(`${before}/meta/_journal.json`, JSON.stringify(journal));
    for (const e of journal.entries) {
      await Deno.copyFile(`${MIGRATIONS}/${e.tag}.sql`, `${before}/${e.tag}.sql`);
    }
    const old = drizzle(client, { schema });
    await migrate(old, { migrationsFolder: before });
    await client.query(
      `insert into experiments (id, kind, config) values
        (1, 'experiment', '{"task": "world-region", "weak": "nano", "strong": "small", "method": "naive", "seed": 0}'),
        (2, 'sweep', '{"tasks": ["world-coast"], "sizes": ["nano", "small"], "methods": ["naive"], "seeds": [0]}')`,
    );
    await client.query(
      `insert into runs (experiment_id, role, model_size, status) values
        (1, 'weak', 'nano', 'done'), (1, 'ceiling', 'small', 'running'), (2, 'weak', 'nano', 'running'),
        (null, 'pretrain', 'nano', 'done')`,
    );

    await migrate(old, { migrationsFolder: MIGRATIONS });
    const rows = (await client.query("select role, model_size, status, task from runs order by id")).rows;
    assert.deepEqual(rows, [
      { role: "weak", model_size: "nano", status: "done", task: null },
      { role: "ceiling", model_size: "small", status: "running", task: null },
      { role: "weak", model_size: "nano", status: "running", task: null },
      { role: "pretrain", model_size: "nano", status: "done", task: null },
    ]);
    const migrated = checkResponses(
      createApp({ db: old as unknown as LabDb, dataDir, token: "t", bus: new EventBus(), dbKind: "pglite" }),
    );
    const res = await migrated.request("/api/runs?sort=id&order=asc");
    assert.equal(res.status, 200);
    const listed: Row[] = await res.json();
    assert.deepEqual(listed.map((r) => [r.role, r.task]), [
      ["weak", "world-region"],
      ["ceiling", "world-region"],
      ["weak", "world-coast"],
      ["pretrain", null],
    ]);
  } finally {
    await client.close();
    await Deno.remove(before, { recursive: true });
  }
});
