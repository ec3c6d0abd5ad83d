/**
 * Supervisor "given": an imported weak-label file (openai/weak-to-strong's rows: `gt_label` the truth,
 * `soft_label` [P(0), P(1)] the supervisor's) drives the student with no weak model trained. A stand-in
 * trainer records what each role receives: the student's targets must be exactly the file's P(1) on all of
 * train, the weak accuracy the file's labels on test counted here by hand (they are wrong on a known
 * subset), and a task without weak_label is refused by name.
 */
import assert from "node:assert/strict";
import type { Gpu } from "../kernels/device.ts";
import { ExperimentCreate } from "../server/contract/experiments.ts";
import type { FinetuneResult } from "../server/lab/finetune.ts";
import type { RoleTrainer, RoleTraining } from "../server/lab/roles.ts";
import { type ExperimentOptions, runExperiment } from "../server/lab/w2s.ts";
import { loadTaskSplits } from "../server/tasks/load.ts";
import { randomWords, tinyModels, writeJsonl } from "./helpers/tiny-ladder.ts";

const SPLIT_OF = (i: number) => (i < 60 ? "train" : i < 80 ? "val" : "test");
/** The supervisor is wrong on every fifth row, and more often on val (so val and test differ). */
const wrong = (i: number) => i % 5 === 0 || (SPLIT_OF(i) === "val" && i % 4 === 1);

/** 120 rows: a unique text, the truth, and a supervisor's P(1) distinct per row, on the wrong side where wrong. */
function weakLabelRows() {
  const word = randomWords(11, 5, 8);
  return Array.from({ length: 120 }, (_, i) => {
    const truth = (i * 7) % 3 === 0 ? 1 : 0;
    const sure = 0.6 + (i % 30) / 100;
    const p1 = (truth === 1) !== wrong(i) ? sure : 1 - sure;
    return { txt: `${word()} ${i}`, gt_label: truth, soft_label: [1 - p1, p1], split: SPLIT_OF(i) };
  });
}

const READINGS: Record<string, number> = { ceiling: 0.95, student: 0.9 };

function standIn(calls: RoleTraining[]): RoleTrainer {
  return (input) => {
    calls.push(input);
    const at = (step: number) => ({ step, valAcc: 0.5, testAcc: READINGS[input.role] });
    const predictions = Object.fromEntries(
      Object.entries(input.predict).map(([name, set]) => [name, Array.from({ length: set.n }, () => 0.7)]),
    );
    const result: FinetuneResult = {
      curve: [],
      final: at(30),
      selected: at(10),
      oracle: at(20),
      predictions,
      steps: 30,
      seconds: 0,
    };
    return Promise.resolve(result);
  };
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

Deno.test("supervisor given: the student learns the file's P(1); weak accuracy is the file's on test", async () => {
  const dir = await Deno.makeTempDir({ prefix: "given-labels-" });
  try {
    const rows = weakLabelRows();
    const task = await writeJsonl(dir, "weak-labels.jsonl", rows);
    const options: ExperimentOptions = {
      task,
      weak: "given",
      strong: "big",
      method: "naive",
      seed: 3,
      supervisor: "given",
    };
    const calls: RoleTraining[] = [];
    const result = await runExperiment(options, {
      models: tinyModels(),
      trainer: standIn(calls),
      gpu: {} as Gpu,
    });

    // No weak model: the ceiling and the student only.
    assert.deepEqual(calls.map((c) => `${c.role}:${c.size}`), ["ceiling:big", "student:big"]);
    const [ceiling, student] = calls;

    // The student's targets are the file's P(1) on ALL of train, in the order the trainer sees the rows.
    const byText = new Map(rows.map((r) => [r.txt, r]));
    const splits = await loadTaskSplits(task, 3);
    const train = [...splits.train1, ...splits.train2].map((e) => byText.get(e.txt)!);
    assert.equal(train.length, 60);
    assert.deepEqual(student.trainTargets, train.map((r) => r.soft_label[1]));
    const fileTrain = rows.filter((r) => r.split === "train").map((r) => r.soft_label[1]);
    assert.deepEqual([...student.trainTargets].sort(), fileTrain.sort());
    // The ceiling learns the same rows' truth; the student selects on the file's hard labels of val.
    assert.deepEqual(ceiling.trainTargets, train.map((r) => r.gt_label));
    const valRows = splits.validation.map((e) => byText.get(e.txt)!);
    assert.deepEqual(student.validationLabels, valRows.map((r) => (r.soft_label[1] > 0.5 ? 1 : 0)));

    // Weak accuracy: the file's labels on test, against truth: 40 test rows, 8 of them wrong (every fifth).
    const testRows = rows.map((r, i) => ({ r, i })).filter(({ r }) => r.split === "test");
    const right = testRows.filter(({ i }) => !wrong(i)).length;
    assert.equal(right, 32);
    assert.ok(close(result.weak_acc, right / testRows.length));
    assert.ok(close(result.pgr, (0.9 - 0.8) / (0.95 - 0.8)));
    const trainRight = rows.filter((r, i) => r.split === "train" && !wrong(i)).length;
    assert.ok(close(result.weak_label_acc, trainRight / 60));
    assert.equal(result.supervisor, "given");
    assert.equal(result.weak, "given");
    assert.deepEqual(result.chain, ["given", "big"]);
    assert.ok(result.runs.every((r) => r.role !== "weak"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("supervisor given: a task without weak_label, a weak size or bootstrap is refused by name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "given-labels-" });
  try {
    const word = randomWords(5, 5, 8);
    const plain = Array.from({ length: 40 }, (_, i) => ({ txt: `${word()} ${i}`, hard_label: i % 2 }));
    const task = await writeJsonl(dir, "plain.jsonl", plain);
    const base: ExperimentOptions = { task, weak: "given", strong: "big", method: "naive", seed: 0 };
    const trainer = standIn([]);
    await assert.rejects(
      runExperiment({ ...base, supervisor: "given" }, { models: tinyModels(), trainer, gpu: {} as Gpu }),
      new RegExp(`task ${task.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} has no \`weak_label\` .* on 40 of 40`),
    );
    await assert.rejects(
      runExperiment({ ...base, weak: "tiny", supervisor: "given" }, { models: tinyModels(), trainer }),
      /weak: with supervisor given no weak model is trained/,
    );
    const bad = ExperimentCreate.safeParse({
      task: "t",
      weak: "tiny",
      strong: "big",
      method: "bootstrap",
      supervisor: "given",
    });
    assert.ok(!bad.success);
    assert.deepEqual(bad.error.issues.map((i) => i.path[0]).sort(), ["supervisor", "weak"]);
    assert.ok(
      ExperimentCreate.safeParse({ task: "t", weak: "given", strong: "big", supervisor: "given" }).success,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
