/**
 * A sweep in lanes (runInLanes in server/lab/sweep.ts; workers in sweep-pool.ts): the results equal the
 * sweep's one after another, in plan order; a group (one task and seed: the experiments that share roles)
 * runs whole in one lane, and each lane's callbacks hear only its own experiments; progress counts every
 * lane's experiments and names what each runs; in workers, imported tasks are asked of this side, roles and
 * results come back, an abort rejects with its reason, and a failing callback fails the sweep.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ExperimentCache } from "../server/lab/cache.ts";
import { ladderModelSource } from "../server/lab/model-source.ts";
import {
  type LaneCallbacks,
  roleGroups,
  runPlanned,
  runSweep,
  type SweepDeps,
  type SweepLanes,
  type SweepOptions,
  sweepPlan,
} from "../server/lab/sweep.ts";
import { workerLanes } from "../server/lab/sweep-pool.ts";
import type { ExperimentResult } from "../server/contract/results.ts";
import type { TaskExample } from "../server/tasks/types.ts";
import { randomWords, TINY_CORPUS, tinyLadder, tinyModels } from "./helpers/tiny-ladder.ts";

/** An imported task of 160 two-word texts; the label is whether the last letter is in a–m. */
function lastLetterTask(seed: number): TaskExample[] {
  const word = randomWords(seed, 2, 3);
  return Array.from({ length: 160 }, () => {
    const txt = `${word()} ${word()}`;
    return { txt, hard_label: txt.charCodeAt(txt.length - 1) <= 109 ? 1 : 0 };
  });
}
const TASKS: Record<string, TaskExample[]> = { "last-a": lastLetterTask(5), "last-b": lastLetterTask(6) };
const importedTasks = (name: string) => Promise.resolve(TASKS[name]);

/** An experiment's readings without its timings (seconds differ between any two runs). */
const readings = (r: ExperimentResult) => ({
  ...r,
  seconds: 0,
  runs: r.runs.map((run) => ({ ...run, seconds: 0 })),
});
/** The same without cache counts: lanes in one process share one cache's counters. */
const uncounted = (r: ExperimentResult) => ({
  ...readings(r),
  cache: undefined,
  runs: r.runs.map((run) => ({ ...run, seconds: 0, cached: undefined })),
});

/** Lanes in this process, each logging the experiments its callbacks hear. */
function loggedLanes(log: Map<number, string[]>, concurrency: number): SweepLanes {
  return {
    concurrency,
    open: (n) => {
      log.set(n, []);
      const callbacks: LaneCallbacks = {
        onStart: (o) => log.get(n)!.push(`start ${o.task} ${o.weak}→${o.strong} ${o.method} s${o.seed}`),
        onExperiment: (r, i) => void log.get(n)!.push(`done ${i} ${r.task} s${r.seed}`),
      };
      return { run: runPlanned, callbacks };
    },
  };
}

const SWEEP: SweepOptions = {
  tasks: ["last-a", "last-b"],
  sizes: ["tiny", "small"],
  methods: ["naive", "auxconf"],
  seeds: [0, 1],
  epochs: 1,
  batchSize: 16,
};

Deno.test("two lanes in this process: the one-after-another results, whole groups per lane, progress over both", async () => {
  const root = await Deno.makeTempDir({ prefix: "lanes-" });
  try {
    const deps = (dir: string): SweepDeps => ({
      models: tinyModels(),
      cache: new ExperimentCache(join(root, dir)),
      importedTasks,
    });
    const alone = await runSweep(SWEEP, deps("alone"));
    const log = new Map<number, string[]>();
    const progress: { step: number; total: number; stage: string }[] = [];
    const written: number[] = [];
    const together = await runSweep(SWEEP, {
      ...deps("together"),
      lanes: loggedLanes(log, 2),
      onProgress: (p) => progress.push(p),
      onExperiment: (_, i) => void written.push(i),
    });
    assert.equal(together.experiments, 8);
    assert.deepEqual(
      together.cells.map((c) => c.results.map(uncounted)),
      alone.cells.map((c) => c.results.map(uncounted)),
      "the same experiments to the same readings, in plan order",
    );
    const ends = [...log.values()].flat().filter((l) => l.startsWith("done")).map((l) =>
      Number(l.split(" ")[1])
    );
    assert.deepEqual(
      ends.toSorted((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
      "each end heard once, by its lane",
    );
    assert.deepEqual(written, [], "a lane's callbacks stand in for the sweep's: no result is written twice");

    // Groups by task and seed: plan order is task, pair, method, seed.
    const plan = await sweepPlan(SWEEP, tinyModels());
    assert.deepEqual(roleGroups(plan, plan.map((_, i) => i)), [[0, 2], [1, 3], [4, 6], [5, 7]]);
    const lanes = [...log.values()];
    assert.equal(lanes.length, 2);
    for (const lane of lanes) {
      const starts = lane.filter((l) => l.startsWith("start")).length;
      assert.equal(starts, lane.filter((l) => l.startsWith("done")).length, "a lane hears its own ends");
      assert.ok(starts % 2 === 0 && starts > 0, `whole groups of two per lane: ${lane.join("; ")}`);
    }
    assert.ok(progress.every((p) => p.total === 8), "counted over the whole plan");
    assert.ok(progress.every((p, i) => i === 0 || p.step >= progress[i - 1].step - 1e-9), "never back");
    assert.ok(progress.some((p) => p.stage.includes(" · ")), "a stage that names both lanes");
    assert.ok(progress.some((p) => !Number.isInteger(p.step)), "the running experiments' shares");
    assert.ok(progress.at(-1)!.step <= 8);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The ladder's names (the workers load them from disk), one task: two groups, one per seed. */
const WORKER_SWEEP: SweepOptions = {
  ...SWEEP,
  tasks: ["last-a"],
  sizes: ["nano", "micro"],
  methods: ["naive"],
};

Deno.test("two lanes in workers: the same results, tasks asked of this side, runs and results reported", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lanes-workers-" });
  try {
    await tinyLadder(dataDir);
    const models = ladderModelSource(dataDir, { corpus: TINY_CORPUS });
    const alone = await runSweep(WORKER_SWEEP, {
      models,
      cache: new ExperimentCache(join(dataDir, "alone")),
      importedTasks,
    });
    const asked: string[] = [];
    const roles = new Map<number, string[]>();
    const cacheDir = join(dataDir, "together");
    const together = await runSweep(WORKER_SWEEP, {
      models,
      importedTasks: (name) => (asked.push(name), importedTasks(name)),
      lanes: workerLanes({ dataDir, corpus: TINY_CORPUS, cacheDir }, {
        concurrency: 2,
        callbacks: (n) => ({ onRun: (run) => void roles.set(n, [...roles.get(n) ?? [], run.role]) }),
      }),
    });
    assert.deepEqual(
      together.cells.map((c) => c.results.map(readings)),
      alone.cells.map((c) => c.results.map(readings)),
      "workers train to the same readings as this process",
    );
    assert.deepEqual(asked, ["last-a", "last-a"], "each worker asked for the imported task");
    assert.deepEqual([...roles.values()].map((r) => r.toSorted()), [
      ["ceiling", "student", "weak"],
      ["ceiling", "student", "weak"],
    ], "each lane's runs came to its own callbacks");
    assert.ok((await Array.fromAsync(Deno.readDir(cacheDir))).length > 0, "the workers filled the cache");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("lanes in workers: an abort rejects with its reason, a failing callback with its error", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lanes-stop-" });
  try {
    await tinyLadder(dataDir);
    const deps = (): SweepDeps => ({
      models: ladderModelSource(dataDir, { corpus: TINY_CORPUS }),
      importedTasks,
    });
    const source = { dataDir, corpus: TINY_CORPUS };
    const user = new AbortController();
    await assert.rejects(
      runSweep(WORKER_SWEEP, {
        ...deps(),
        signal: user.signal,
        lanes: workerLanes(source, { concurrency: 2 }),
        onProgress: () => user.abort(new Error("cancelled by the user")),
      }),
      /cancelled by the user/,
    );
    await assert.rejects(
      runSweep(WORKER_SWEEP, {
        ...deps(),
        lanes: workerLanes(source, {
          concurrency: 2,
          callbacks: () => ({ onExperiment: () => Promise.reject(new Error("the store is down")) }),
        }),
      }),
      /the store is down/,
    );
    await assert.rejects(
      runSweep(WORKER_SWEEP, {
        ...deps(),
        trainer: () => Promise.reject(new Error("never called")),
        lanes: workerLanes(source, { concurrency: 2 }),
      }),
      /a trainer stand-in runs in this process/,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
