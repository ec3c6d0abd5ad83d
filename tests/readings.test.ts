/**
 * The readings that make a result readable, against hand-computed values: options that a method or mode
 * would silently ignore are refused (API schema, pipeline), a model within test noise of chance is
 * flagged with a plain warning, and per-layer probes read the layer that holds the concept.
 */
import assert from "node:assert/strict";
import type { Gpu } from "../kernels/device.ts";
import { ExperimentCreate, optionConflicts, SweepCreate } from "../server/contract/experiments.ts";
import { chanceCheck } from "../server/lab/metrics.ts";
import type { ModelSource } from "../server/lab/model-source.ts";
import { probeLayers } from "../server/lab/saliency.ts";
import { resultWarnings, runExperiment } from "../server/lab/w2s.ts";

Deno.test("options a method or mode would ignore are refused, each naming its field", () => {
  const fields = (o: Parameters<typeof optionConflicts>[0]) => optionConflicts(o).map((c) => c.field);
  assert.deepEqual(fields({ methods: ["auxconf"], studentMode: "probe" }), ["studentMode"]);
  assert.deepEqual(fields({ methods: ["generative"], generativeBase: "auxconf", studentMode: "probe" }), [
    "studentMode",
  ]);
  assert.deepEqual(fields({ methods: ["naive"], studentMode: "probe", probes: true }), ["probes"]);
  assert.deepEqual(fields({ methods: ["naive"], alphaMax: 0.75 }), ["alphaMax"]);
  assert.deepEqual(fields({ methods: ["naive"], lmEpochs: 3, bootstrapSizes: ["x"] }), [
    "lmEpochs",
    "bootstrapSizes",
  ]);
  // What the chosen methods do read passes.
  assert.deepEqual(fields({ methods: ["naive", "auxconf"], alphaMax: 0.75, studentMode: "finetune" }), []);
  assert.deepEqual(fields({ methods: ["naive"], studentMode: "probe" }), []);
  assert.deepEqual(fields({ methods: ["bootstrap"], bootstrapSizes: ["x"] }), []);

  // The API's schemas refuse them with the field's path.
  const bad = ExperimentCreate.safeParse({
    task: "t",
    weak: "a",
    strong: "b",
    method: "auxconf",
    studentMode: "probe",
  });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error!.issues.map((i) => i.path.join(".")), ["studentMode"]);
  const sweep = SweepCreate.safeParse({
    tasks: ["t"],
    sizes: ["a", "b"],
    methods: ["naive"],
    seeds: [0],
    alphaMax: 1,
  });
  assert.deepEqual(sweep.error!.issues.map((i) => i.path.join(".")), ["alphaMax"]);
  // The oracle is always reported and never selects: there is no knob to ignore.
  const oracleKnob = ExperimentCreate.safeParse({
    task: "t",
    weak: "a",
    strong: "b",
    earlyStoppingOracle: false,
  });
  assert.equal(oracleKnob.success, false);
});

Deno.test("the pipeline refuses a probe student with the aux-confidence loss before training anything", async () => {
  let loads = 0;
  const models: ModelSource = {
    sizes: ["a", "b"],
    load: () => {
      loads++;
      return Promise.reject(new Error("not reached"));
    },
  };
  await assert.rejects(
    runExperiment({ task: "t", weak: "a", strong: "b", method: "auxconf", seed: 0, mode: "probe" }, {
      models,
      gpu: {} as Gpu,
    }),
    /studentMode: the aux-confidence loss needs a finetuned student/,
  );
  assert.equal(loads, 0);
});

Deno.test("chance: the majority-class rate ± 1.96·√(r(1−r)/n); a model at or below its top is flagged", () => {
  const labels = [...Array(60).fill(1), ...Array(40).fill(0)];
  // r = 0.6, noise = 1.96 · √(0.24 / 100) = 0.096019.
  const check = chanceCheck(labels, { weak: 0.696, ceiling: 0.9, student: 0.697 }); // 0.696 ≤ 0.696019 < 0.697
  assert.ok(Math.abs(check.rate - 0.6) < 1e-12);
  assert.ok(Math.abs(check.noise - 0.096019) < 1e-6);
  assert.deepEqual(check.near, { weak: true, ceiling: false, student: false });
  // A new user's first experiment: weak 0.483, student 0.500 on 118 balanced test examples.
  const balanced = [...Array(59).fill(1), ...Array(59).fill(0)];
  const first = chanceCheck(balanced, { weak: 0.483, ceiling: 0.585, student: 0.5 });
  assert.deepEqual(first.near, { weak: true, ceiling: true, student: true });
  const accuracies = { weak_acc: 0.483, ceiling_acc: 0.585, student_acc: 0.5 };
  const warnings = resultWarnings({ ...accuracies, chance: first, gap_too_small: true, gap_noise: 0.127 });
  assert.equal(warnings.length, 4);
  // The model's own accuracy beside the chance band, so neither number reads as the other.
  assert.match(
    warnings[0],
    /weak model is within noise of chance: test accuracy 0\.483, chance 0\.500 ± 0\.090;/,
  );
  assert.match(warnings[1], /ceiling model .*test accuracy 0\.585,/);
  assert.match(warnings[3], /gap too small/);
  assert.deepEqual(
    resultWarnings({ ...accuracies, chance: check, gap_too_small: false, gap_noise: 0.05 }).length,
    1,
  );
});

Deno.test("per-layer probes: the layer that holds the concept reads it, a noise layer does not", () => {
  // Layer 0: features unrelated to the label; layer 1: the label is the sign of the first feature.
  const rows = 200;
  const label = (i: number) => (i * 37) % 5 < 2 ? 1 : 0;
  const noise = (i: number) => Float32Array.from([((i * 13) % 7) / 7, ((i * 29) % 11) / 11]);
  const signal = (i: number) => Float32Array.from([label(i) ? 1 + (i % 3) / 10 : -1 - (i % 3) / 10, 0.5]);
  const train = [
    Array.from({ length: rows }, (_, i) => noise(i)),
    Array.from({ length: rows }, (_, i) => signal(i)),
  ];
  const test = [
    Array.from({ length: 50 }, (_, i) => noise(i + 1000)),
    Array.from({ length: 50 }, (_, i) => signal(i + 1000)),
  ];
  const targets = Array.from({ length: rows }, (_, i) => label(i));
  const testLabels = Array.from({ length: 50 }, (_, i) => label(i + 1000));
  const probes = probeLayers("lp(gt)", train, targets, test, testLabels);
  assert.deepEqual(probes.map((p) => [p.kind, p.layer]), [["lp(gt)", 0], ["lp(gt)", 1]]);
  assert.equal(probes[1].accuracy, 1);
  // The noise layer can do no better than the majority class of test (60 % zeros here).
  const majority = Math.max(...[0, 1].map((c) => testLabels.filter((y) => y === c).length / 50));
  assert.ok(probes[0].accuracy <= majority + 1e-12, `noise layer ${probes[0].accuracy} vs ${majority}`);
});
