/**
 * The pipeline's wiring, with a stand-in trainer (nothing is trained): which targets and which validation
 * labels each role receives — weak: train1 ground truth; student: the weak model's soft labels on train2,
 * selected against the weak model's hard labels on validation; ceiling: train2 ground truth — that test
 * ground truth goes to nothing but the readings, and that the result's readings, agreement and weak-label
 * accuracy are the trainer's, recomputed here by hand. Swap any role's targets and a test here fails.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type GptConfig, initParameters } from "../kernels/config.ts";
import type { Gpu } from "../kernels/device.ts";
import { createTokenizer } from "../server/corpus/tokenizer.ts";
import { hashNumbers } from "../server/lab/cache.ts";
import type { FinetuneResult } from "../server/lab/finetune.ts";
import type { ModelSource } from "../server/lab/model-source.ts";
import type { RoleTrainer, RoleTraining } from "../server/lab/roles.ts";
import { pgrBootstrap } from "../server/lab/metrics.ts";
import { type ExperimentOptions, runExperiment } from "../server/lab/w2s.ts";
import { formatResult } from "../scripts/cli/w2s.ts";
import { loadTaskSplits } from "../server/tasks/load.ts";

const tokenizer = createTokenizer({ merges: 0 });
const config = (width: number): GptConfig => ({
  vocabSize: tokenizer.vocabSize,
  contextLength: 16,
  width,
  layers: 1,
  heads: 1,
});
const CONFIGS: Record<string, GptConfig> = { a: config(8), b: config(16), c: config(24) };

const models: ModelSource = {
  sizes: ["a", "b", "c"],
  load(size) {
    const params = initParameters(CONFIGS[size], 1);
    return Promise.resolve({ size, config: CONFIGS[size], params, tokenizer, hash: hashNumbers(params) });
  },
};

/** Each role's soft labels carry its own last digits, so where a number came from can be told. */
const ROLE_MARK: Record<string, number> = {
  weak: 0.001,
  bootstrap: 0.002,
  student: 0.003,
  ceiling: 0.004,
  control: 0.005,
};

/** Soft labels the stand-in "predicts": a known pattern per role and size, both sides of 0.5. */
const softLabel = (role: string, size: string, i: number) =>
  ((i * 7 + size.charCodeAt(0)) % 9) / 10 + 0.05 + ROLE_MARK[role];

/** Readings the stand-in reports: distinct numbers per role, so the result's fields can be traced. */
const READINGS: Record<string, { final: number; selected: number; oracle: number }> = {
  weak: { final: 0.61, selected: 0.62, oracle: 0.63 },
  ceiling: { final: 0.91, selected: 0.92, oracle: 0.93 },
  student: { final: 0.71, selected: 0.72, oracle: 0.79 },
  bootstrap: { final: 0.66, selected: 0.67, oracle: 0.68 },
  control: { final: 0.52, selected: 0.53, oracle: 0.58 },
};

/**
 * Each role's test predictions at its selected point: its pattern shifted, so they differ from its final
 * predictions (a stand-in: they need not match the reading it reports).
 */
const selectedLabel = (role: string, size: string, i: number) =>
  softLabel(role, size, 2 * i + Math.round(1000 * ROLE_MARK[role]));

/** `keepSelected: false` stands for a role cached before its selected-point predictions were kept. */
function standIn(calls: RoleTraining[], { keepSelected = true } = {}): RoleTrainer {
  return (input) => {
    calls.push(input);
    const r = READINGS[input.role];
    const predictions = Object.fromEntries(
      Object.entries(input.predict).map(([name, set]) => [
        name,
        Array.from({ length: set.n }, (_, i) => softLabel(input.role, input.size, i)),
      ]),
    );
    const result: FinetuneResult = {
      curve: [],
      final: { step: 30, valAcc: 0.5, testAcc: r.final },
      selected: { step: 10, valAcc: 0.6, testAcc: r.selected },
      oracle: { step: 20, valAcc: 0.55, testAcc: r.oracle },
      predictions,
      ...(keepSelected
        ? {
          selectedTest: Array.from(input.testLabels, (_, i) => selectedLabel(input.role, input.size, i)),
        }
        : {}),
      steps: 30,
      seconds: 0,
    };
    return Promise.resolve(result);
  };
}

async function writeTask(dir: string): Promise<string> {
  const lines = Array.from({ length: 200 }, (_, i) => {
    const text = `item ${String.fromCharCode(97 + (i * 7) % 26)}${String.fromCharCode(97 + (i * 11) % 26)}`;
    return JSON.stringify({ txt: text, hard_label: (i * 5) % 3 === 0 ? 1 : 0 });
  });
  const path = join(dir, "task.jsonl");
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

const labels = (list: { hard_label: number }[]) => list.map((e) => e.hard_label);
const hard = (p: readonly number[]) => p.map((x) => (x > 0.5 ? 1 : 0));

Deno.test("w2s wiring: each role receives the targets and validation labels of its role", async () => {
  const dir = await Deno.makeTempDir({ prefix: "w2s-wiring-" });
  try {
    const task = await writeTask(dir);
    const options: ExperimentOptions = { task, weak: "a", strong: "c", method: "naive", seed: 4 };
    const calls: RoleTraining[] = [];
    const result = await runExperiment(options, { models, trainer: standIn(calls), gpu: {} as Gpu });
    const splits = await loadTaskSplits(task, 4);
    const gt = {
      train1: labels(splits.train1),
      train2: labels(splits.train2),
      validation: labels(splits.validation),
      test: labels(splits.test),
    };
    assert.deepEqual(calls.map((c) => `${c.role}:${c.size}`), ["weak:a", "ceiling:c", "student:c"]);
    const [weak, ceiling, student] = calls;

    // weak: train1 ground truth, selected on validation ground truth; labels train2, validation, test.
    assert.deepEqual(weak.trainTargets, gt.train1);
    assert.deepEqual(weak.validationLabels, gt.validation);
    assert.deepEqual(Object.keys(weak.predict).sort(), ["test", "train2", "validation"]);
    // ceiling: train2 ground truth.
    assert.deepEqual(ceiling.trainTargets, gt.train2);
    assert.deepEqual(ceiling.validationLabels, gt.validation);
    // student: the weak model's SOFT labels on train2; validation labelled by the weak model (hard).
    const weakOn = (n: number) => Array.from({ length: n }, (_, i) => softLabel("weak", "a", i));
    assert.deepEqual(student.trainTargets, weakOn(gt.train2.length));
    assert.deepEqual(student.validationLabels, hard(weakOn(gt.validation.length)));
    assert.notDeepEqual(student.trainTargets, gt.train2);
    // Test ground truth reaches every role only as its test labels (readings and the oracle).
    for (const call of calls) assert.deepEqual(call.testLabels, gt.test);

    // The headline is the trainer's FINAL reading; the other two stand beside it with their steps.
    assert.equal(result.reading, "final");
    assert.deepEqual([result.weak_acc, result.ceiling_acc, result.student_acc], [0.61, 0.91, 0.71]);
    assert.ok(Math.abs(result.pgr - (0.71 - 0.61) / (0.91 - 0.61)) < 1e-12);
    assert.deepEqual(
      [result.selected.weak_acc, result.selected.ceiling_acc, result.selected.student_acc],
      [0.62, 0.92, 0.72],
    );
    assert.deepEqual(result.selected.steps, { weak: 10, ceiling: 10, student: 10 });
    assert.equal(result.oracle.student_acc, 0.79);
    assert.equal(result.oracle.student_step, 20);
    assert.deepEqual(result.final.steps, { weak: 30, ceiling: 30, student: 30 });

    // Agreement and weak-label accuracy come from the final models' predictions, counted here by hand.
    const studentTest = hard(Array.from({ length: gt.test.length }, (_, i) => softLabel("student", "c", i)));
    const weakTest = hard(weakOn(gt.test.length));
    const same = studentTest.filter((p, i) => p === weakTest[i]).length / gt.test.length;
    assert.ok(Math.abs(result.agreement.all! - same) < 1e-12);
    const weakRight = hard(weakOn(gt.train2.length)).filter((p, i) => p === gt.train2[i]).length;
    assert.ok(Math.abs(result.weak_label_acc - weakRight / gt.train2.length) < 1e-12);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("w2s wiring: the selected reading's intervals come from each model's test predictions at that point", async () => {
  const dir = await Deno.makeTempDir({ prefix: "w2s-wiring-" });
  try {
    const task = await writeTask(dir);
    const options: ExperimentOptions = { task, weak: "a", strong: "c", method: "naive", seed: 4 };
    const result = await runExperiment(options, { models, trainer: standIn([]), gpu: {} as Gpu });
    const test = labels((await loadTaskSplits(task, 4)).test);
    const n = test.length;
    // Wilson by hand: centre (p + z²/2n) / (1 + z²/n), half z/(1 + z²/n) · √(p(1 − p)/n + z²/4n²).
    const z = 1.96;
    const wilson = (acc: number) => {
      const p = Math.round(acc * n) / n;
      const centre = (p + z * z / (2 * n)) / (1 + z * z / n);
      const half = z / (1 + z * z / n) * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n));
      return [centre - half, centre + half];
    };
    const ci = result.selected.ci!;
    for (const [key, acc] of [["weak_acc", 0.62], ["ceiling_acc", 0.92], ["student_acc", 0.72]] as const) {
      const [lo, hi] = wilson(acc);
      assert.ok(
        Math.abs(ci[key].lo - lo) < 1e-9 && Math.abs(ci[key].hi - hi) < 1e-9,
        `${key}: ${ci[key].lo}`,
      );
    }
    // The PGR interval: the paired bootstrap of the headline, on the selected-point predictions (not the
    // final ones, which the headline's interval reads).
    const bootstrapOn = (label: typeof softLabel) => {
      const [w, c, s] = [["weak", "a"], ["ceiling", "c"], ["student", "c"]].map(([role, size]) =>
        hard(Array.from({ length: n }, (_, i) => label(role, size, i)))
      );
      return pgrBootstrap(test, w, c, s, 1000, 4);
    };
    const sel = bootstrapOn(selectedLabel), fin = bootstrapOn(softLabel);
    assert.deepEqual(ci.pgr, sel);
    assert.notDeepEqual(sel, fin, "the two sets of predictions must tell the wiring apart");
    assert.deepEqual(result.ci.pgr, fin);
    // lab w2s prints them: the student's selected reading and the selected PGR with their intervals.
    const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)}%`;
    const printed = formatResult(result);
    assert.ok(printed.includes(`72.0% @10 [${pct(ci.student_acc.lo)}, ${pct(ci.student_acc.hi)}]`), printed);
    assert.ok(
      printed.includes(
        `selected ${result.selected.pgr.toFixed(2)} [${sel.lo.toFixed(2)}, ${sel.hi.toFixed(2)}]`,
      ),
      printed,
    );

    // Roles cached before the predictions were kept: accuracies still have intervals, the PGR none.
    const old = await runExperiment(options, {
      models,
      trainer: standIn([], { keepSelected: false }),
      gpu: {} as Gpu,
    });
    assert.equal(old.selected.ci!.pgr, null);
    assert.deepEqual(old.selected.ci!.student_acc, ci.student_acc);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("w2s wiring: bootstrap cross-fits — each fold learns the previous labels of its rows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "w2s-wiring-" });
  try {
    const task = await writeTask(dir);
    const calls: RoleTraining[] = [];
    await runExperiment(
      { task, weak: "a", strong: "c", method: "bootstrap", seed: 4 },
      { models, trainer: standIn(calls), gpu: {} as Gpu },
    );
    const splits = await loadTaskSplits(task, 4);
    const n2 = splits.train2.length;
    assert.deepEqual(calls.map((c) => `${c.role}:${c.size}`), [
      "weak:a",
      "bootstrap:b",
      "bootstrap:b",
      "ceiling:c",
      "student:c",
    ]);
    const [, fold1, fold2, , student] = calls;
    // The two folds split train2; each trains on the weak labels of its own rows and labels the other's.
    const weakLabel = (i: number) => softLabel("weak", "a", i);
    assert.equal(fold1.trainTargets.length + fold2.trainTargets.length, n2);
    assert.equal(fold1.predict.train2.n, fold2.trainTargets.length);
    assert.equal(fold2.predict.train2.n, fold1.trainTargets.length);
    const weakTargets = new Set(Array.from({ length: n2 }, (_, i) => weakLabel(i)));
    for (const t of [...fold1.trainTargets, ...fold2.trainTargets]) {
      assert.ok(weakTargets.has(t), `fold target ${t}`);
    }
    // The student learns the intermediate model's cross-fitted labels, never the weak model's directly.
    const crossFit = new Set(Array.from({ length: n2 }, (_, k) => softLabel("bootstrap", "b", k)));
    assert.ok(student.trainTargets.every((t) => crossFit.has(t)), "student targets come from the folds");
    assert.ok(!student.trainTargets.some((t) => weakTargets.has(t)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("w2s wiring: the random-init control learns train2 ground truth from a never-pretrained start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "w2s-wiring-" });
  try {
    const task = await writeTask(dir);
    const calls: RoleTraining[] = [];
    const result = await runExperiment(
      { task, weak: "a", strong: "c", method: "naive", seed: 4, control: true },
      { models, trainer: standIn(calls), gpu: {} as Gpu },
    );
    const splits = await loadTaskSplits(task, 4);
    assert.deepEqual(calls.map((c) => c.role), ["weak", "ceiling", "student", "control"]);
    const [, ceiling, , control] = calls;
    assert.deepEqual(control.trainTargets, labels(splits.train2));
    assert.deepEqual(control.validationLabels, labels(splits.validation));
    // The ceiling starts from the pretrained checkpoint; the control from random init, not from it.
    const pretrained = hashNumbers(initParameters(CONFIGS.c, 1));
    assert.equal(ceiling.startsFrom, pretrained);
    assert.equal(control.startsFrom, hashNumbers(initParameters(CONFIGS.c, 4)));
    assert.equal(result.control?.ceiling_acc, 0.52);
    assert.equal(result.control?.step, 30);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
