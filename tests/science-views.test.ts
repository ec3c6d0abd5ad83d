/**
 * How the dashboard's science views group and match results (web/lib/result-groups.ts), on hand-written
 * rows of a sweep of two tasks: a task at a time, figure 3's intervals from the same rows as its points,
 * PGR bars and cautions named by their task, the result that read a run, a median's interval in words.
 */
import assert from "node:assert/strict";
import type { CellSummary, RoleRun } from "../server/contract/results.ts";
import {
  accuracyInterval,
  cautionLines,
  checkpointReadings,
  medianIntervalText,
  methodLabel,
  onePerSeed,
  pgrBarGroups,
  probeWhiskers,
  scopeToTask,
  sharedTestSize,
  tasksOf,
} from "../web/lib/result-groups.ts";
import type { ResultRow, Run } from "../web/lib/types.ts";

const SWEEP = 7;

/** A role's record as a result keeps it and as its run's config holds it. */
function record(
  role: "weak" | "ceiling" | "student",
  size: string,
  seed: number,
  final: number,
  acc: number,
) {
  return {
    role,
    size,
    description: role === "student" ? "train2 labels of nano (naive)" : "train1 ground truth",
    hyper: { seed: seed * 1000 + 3 },
    steps: final,
    final: { step: final, valAcc: acc - 0.01, testAcc: acc },
    selected: { step: final - 10, valAcc: acc, testAcc: acc - 0.02 },
  };
}

/** One result of the sweep: nano→micro, naive unless said, its accuracies, intervals, steps and records. */
function row(
  id: number,
  task: string,
  seed: number,
  acc: { weak: number; ceiling: number; student: number },
  more: { method?: string; studentSteps?: number; warnings?: string[]; runs?: unknown[] } = {},
): ResultRow {
  const ci = (v: number) => ({ lo: v - 0.05, hi: v + 0.05 });
  const studentSteps = more.studentSteps ?? 30;
  return {
    id,
    experimentId: SWEEP,
    task,
    weakSize: "nano",
    strongSize: "micro",
    method: more.method ?? "naive",
    seed,
    weakAcc: acc.weak,
    ceilingAcc: acc.ceiling,
    studentAcc: acc.student,
    pgr: (acc.student - acc.weak) / (acc.ceiling - acc.weak),
    gapTooSmall: false,
    selectedStudentAcc: null,
    selectedPgr: null,
    selectedStep: null,
    agreement: null,
    oracleStudentAcc: null,
    oraclePgr: null,
    oracleStep: null,
    full: {
      task,
      ci: {
        weak_acc: ci(acc.weak),
        ceiling_acc: ci(acc.ceiling),
        student_acc: ci(acc.student),
        pgr: ci(0.5),
      },
      final: { ...READ, steps: { weak: 40, ceiling: 40, student: studentSteps } },
      selected: { ...READ, steps: { weak: 30, ceiling: 30, student: studentSteps - 10 } },
      warnings: more.warnings ?? [],
      runs: (more.runs ?? [
        record("weak", "nano", seed, 40, acc.weak),
        record("ceiling", "micro", seed, 40, acc.ceiling),
        record("student", "micro", seed, studentSteps, acc.student),
      ]) as RoleRun[],
    },
  };
}
const READ = { weak_acc: 0, ceiling_acc: 0, student_acc: 0, pgr: 0 };

/** A summary cell of nano→micro naive with hand-set means and intervals over its seeds. */
function cell(task: string, seeds: number[], means: [number, number, number], half = 0.1): CellSummary {
  const meanCi = (mean: number) => ({ mean, lo: mean - half, hi: mean + half });
  return {
    task,
    weak: "nano",
    strong: "micro",
    method: "naive",
    seeds,
    weak_acc: meanCi(means[0]),
    ceiling_acc: meanCi(means[1]),
    student_acc: meanCi(means[2]),
    pgr: 0.5,
    pgr_ci: meanCi(0.5),
    gap_too_small: false,
    gap_noise: 0.01,
    agreement: { all: null, supervisor_correct: null, supervisor_wrong: null },
    agreement_ci: { all: null, supervisor_correct: null, supervisor_wrong: null },
    oracle_student_acc: 0,
    oracle_pgr: 0,
    control_acc: null,
  };
}

// world-region: weak 0.50 / 0.52, student 0.60 / 0.62; world-trust: weak 0.70 / 0.72, student 0.80 / 0.84.
const ROWS = [
  row(1, "world-region", 0, { weak: 0.5, ceiling: 0.8, student: 0.6 }),
  row(2, "world-region", 1, { weak: 0.52, ceiling: 0.82, student: 0.62 }),
  row(3, "world-trust", 0, { weak: 0.7, ceiling: 0.9, student: 0.8 }, { studentSteps: 46 }),
  row(4, "world-trust", 1, { weak: 0.72, ceiling: 0.92, student: 0.84 }, { studentSteps: 46 }),
];
const CELLS = [
  cell("world-region", [0, 1], [0.51, 0.81, 0.61], 0.12),
  cell("world-trust", [0, 1], [0.71, 0.91, 0.82], 0.25),
];

Deno.test("scopeToTask: one task at a time, the sweep's first by default, in the sweep's order", () => {
  assert.deepEqual(tasksOf(ROWS), ["world-region", "world-trust"]);
  assert.deepEqual(tasksOf(ROWS, ["world-trust", "world-region"]), ["world-trust", "world-region"]);
  const first = scopeToTask(ROWS, null, ["world-trust", "world-region"]);
  assert.equal(first.task, "world-trust");
  assert.deepEqual(first.rows.map((r) => r.id), [3, 4]);
  assert.deepEqual(scopeToTask(ROWS, "world-region").rows.map((r) => r.id), [1, 2]);
  assert.equal(scopeToTask(ROWS, "no-such-task").task, "world-region");
});

Deno.test("accuracyInterval: a point's interval is of its own rows, never another task's", () => {
  const region = ROWS.filter((r) => r.task === "world-region");
  const trust = ROWS.filter((r) => r.task === "world-trust");
  // Each task's student mean gets its own cell's t-interval, which contains it.
  assert.deepEqual(accuracyInterval(region, "student_acc", CELLS), {
    lo: 0.61 - 0.12,
    hi: 0.61 + 0.12,
    seeds: 2,
  });
  const t = accuracyInterval(trust, "student_acc", CELLS)!;
  assert.ok(t.lo <= 0.82 && 0.82 <= t.hi && Math.abs(t.hi - t.lo - 0.5) < 1e-9, JSON.stringify(t));
  // Rows of two tasks (the sweep page's old average) have no interval: no one task's cell is theirs.
  assert.equal(accuracyInterval(ROWS, "student_acc", CELLS), null);
  // Only the other task's cell: none (the old lookup ignored the task).
  assert.equal(accuracyInterval(region, "student_acc", [CELLS[1]]), null);
  // A cell over other seeds, or whose mean is not the rows' mean, is not theirs either.
  assert.equal(
    accuracyInterval(region, "student_acc", [cell("world-region", [0, 2], [0.51, 0.81, 0.61])]),
    null,
  );
  assert.equal(
    accuracyInterval(region, "student_acc", [cell("world-region", [0, 1], [0.51, 0.81, 0.7])]),
    null,
  );
  // One row: its own Wilson interval over test examples.
  assert.deepEqual(accuracyInterval([ROWS[2]], "weak_acc", CELLS), {
    lo: 0.7 - 0.05,
    hi: 0.7 + 0.05,
    seeds: 1,
  });
});

Deno.test("onePerSeed: a weak or ceiling model counted once per seed, whatever the pairs it serves", () => {
  const small = { ...ROWS[0], id: 9, strongSize: "small" };
  assert.deepEqual(onePerSeed([ROWS[0], small, ROWS[1]]).map((r) => r.id), [1, 2]);
});

Deno.test("pgrBarGroups: bars of several tasks are grouped and named per task, each group once", () => {
  const groups = pgrBarGroups([...CELLS, { ...CELLS[0], method: "auxconf" }]);
  assert.deepEqual(groups.map((g) => g.label), ["world-region · nano→micro", "world-trust · nano→micro"]);
  assert.deepEqual(groups.map((g) => g.cells.map((c) => c.method)), [["naive", "auxconf"], ["naive"]]);
  assert.equal(new Set(groups.map((g) => g.key)).size, groups.length);
  assert.deepEqual(pgrBarGroups([CELLS[0]]).map((g) => g.label), ["nano→micro"]);
});

Deno.test("methodLabel: cells of one pair and method apart by their settings", () => {
  assert.equal(methodLabel({ method: "naive" }), "naive");
  assert.equal(methodLabel({ method: "naive", settings: "" }), "naive");
  assert.equal(methodLabel({ method: "naive", settings: "maxExamples 16" }), "naive (maxExamples 16)");
});

Deno.test("cautionLines: each caution names its task, pair, method and seed", () => {
  const rows = [
    row(1, "world-region", 0, { weak: 0.5, ceiling: 0.8, student: 0.6 }, { warnings: ["weak near chance"] }),
    row(2, "world-trust", 0, { weak: 0.5, ceiling: 0.8, student: 0.6 }, { warnings: ["weak near chance"] }),
  ];
  assert.deepEqual(cautionLines(rows), [
    "world-region nano→micro (naive, seed 0): weak near chance",
    "world-trust nano→micro (naive, seed 0): weak near chance",
  ]);
});

/** A stored run of the sweep whose config is the given record (what the job recorder writes). */
function run(id: number, rec: ReturnType<typeof record> | null): Run {
  return {
    id,
    experimentId: SWEEP,
    jobId: null,
    role: rec?.role ?? "student",
    modelSize: rec?.size ?? "micro",
    // A run's task is not what ties it to its result here: its role, size and config are.
    task: null,
    status: "done",
    config: rec,
    startedAt: "",
    finishedAt: null,
    seconds: null,
  };
}

Deno.test("checkpointReadings: a run is read at the steps of its own result, or nothing is said", () => {
  // The trust student of seed 1 ended at step 46; the first row of its role and size (region) says 30.
  const trustStudent = run(147, record("student", "micro", 1, 46, 0.84));
  assert.deepEqual(checkpointReadings(trustStudent, ROWS), [
    { step: 46, checkpoint: "final" },
    { step: 36, checkpoint: "selected" },
  ]);
  assert.deepEqual(checkpointReadings(run(148, record("student", "micro", 0, 30, 0.6)), ROWS), [
    { step: 30, checkpoint: "final" },
    { step: 20, checkpoint: "selected" },
  ]);
  // A weak model serves every method of its pair: its results agree on what it is.
  const auxconf = row(5, "world-region", 0, { weak: 0.5, ceiling: 0.8, student: 0.65 }, {
    method: "auxconf",
  });
  assert.equal(
    checkpointReadings(run(149, record("weak", "nano", 0, 40, 0.5)), [...ROWS, auxconf])[0].step,
    40,
  );
  // Records alike in two tasks: which result read it is unknown, so nothing is said.
  const twin = record("student", "micro", 0, 30, 0.6);
  const alike = [
    row(1, "world-region", 0, { weak: 0.5, ceiling: 0.8, student: 0.6 }, { runs: [twin] }),
    row(3, "world-trust", 0, { weak: 0.7, ceiling: 0.9, student: 0.8 }, { runs: [twin] }),
  ];
  assert.deepEqual(checkpointReadings(run(150, twin), alike), []);
  // A run no result recorded (still training, no config; or another experiment's) is not read.
  assert.deepEqual(checkpointReadings(run(151, null), ROWS), []);
  assert.deepEqual(checkpointReadings({ ...trustStudent, experimentId: SWEEP + 1 }, ROWS), []);
  assert.deepEqual(checkpointReadings(run(152, record("student", "micro", 1, 46, 0.99)), ROWS), []);
});

Deno.test("medianIntervalText: a median's interval, or a dash: never a zero-width interval", () => {
  assert.equal(medianIntervalText({ median_ci: { lo: 0.091, hi: 0.468 }, cells: 3 }), "[0.09, 0.47]");
  assert.equal(medianIntervalText({ median_ci: null, cells: 1 }), "— (one cell)");
  assert.equal(medianIntervalText({ median_ci: undefined, cells: 1 }), "— (one cell)");
  assert.equal(medianIntervalText({ median_ci: { lo: null, hi: null }, cells: 1 }), "— (one cell)");
  assert.equal(medianIntervalText({ median_ci: { lo: 0.304, hi: 0.304 }, cells: 1 }), "— (one cell)");
  assert.equal(medianIntervalText({ median_ci: { lo: null, hi: null }, cells: 0 }), "—");
  // One cell over several seeds: its own t-interval is an interval.
  assert.equal(medianIntervalText({ median_ci: { lo: 0.2, hi: 0.4 }, cells: 1 }), "[0.20, 0.40]");
});

Deno.test("probe saliency: a single probe's 95 % Wilson interval over the test set; a mean over probes has none", () => {
  const lists = [
    { color: "a", points: [{ layer: 0, accuracies: [0.8] }, { layer: 1, accuracies: [0.7, 0.9] }] },
    { color: "b", points: [{ layer: 0, accuracies: [1] }] },
  ];
  const whiskers = probeWhiskers(lists, 10);
  // 8 of 10 correct: the textbook Wilson interval (0.4902, 0.9433); 10 of 10 reaches 1.
  assert.equal(whiskers.length, 2);
  assert.deepEqual([whiskers[0].x, whiskers[0].color], [0, "a"]);
  assert.ok(Math.abs(whiskers[0].lo - 0.4902) < 1e-4 && Math.abs(whiskers[0].hi - 0.9433) < 1e-4);
  assert.equal(whiskers[1].hi, 1);
  assert.deepEqual(probeWhiskers(lists, undefined), [], "no test size known: no interval");
  const row = (test: number) => ({ full: { n: { train1: 1, train2: 1, validation: 1, test } } }) as ResultRow;
  assert.equal(sharedTestSize([row(298), row(298)]), 298);
  assert.equal(sharedTestSize([row(298), row(60)]), undefined, "two test sets: no one n");
});
