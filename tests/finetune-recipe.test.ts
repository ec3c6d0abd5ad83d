/**
 * The finetuning recipe (FinetuneHyper embeddings / headInit / decayTo): frozen embeddings stay
 * bit-identical through finetuning while the rest moves; AdamW with decay toward the pretrained
 * weights (L2-SP) against a float64 reference; the LP-FT head equals a probe fitted here; and each
 * option reaches the cache key, the pipeline's roles, the CLI flags and the API's refusals.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ADAMW_FINETUNE, type GptConfig, initParameters, paramLayout } from "../kernels/config.ts";
import { getGpu, type Gpu } from "../kernels/device.ts";
import { GptModel } from "../kernels/gpt.ts";
import { createTensor, readTensor, writeTensor } from "../kernels/runtime.ts";
import { gradNormPartials, planAdamW, planGradNorm } from "../kernels/ops/optimizer.ts";
import { STAT_GRAD_NORM_SQ } from "../kernels/stats.ts";
import { ExperimentCreate, optionConflicts } from "../server/contract/experiments.ts";
import type { FinetuneHyper, FinetuneRecipe } from "../server/contract/results.ts";
import { createTokenizer } from "../server/corpus/tokenizer.ts";
import { hashNumbers, stableStringify } from "../server/lab/cache.ts";
import {
  type EncodedSet,
  featuresOf,
  finetuneClassifier,
  padSet,
  predictSet,
  prepareFinetune,
} from "../server/lab/finetune.ts";
import { accuracy, hardLabels } from "../server/lab/metrics.ts";
import type { LoadedModel, ModelSource } from "../server/lab/model-source.ts";
import { trainLogisticProbe } from "../server/lab/probe.ts";
import { roleCacheKey, roleHyper, type RoleSpec, type RoleTrainer } from "../server/lab/roles.ts";
import { runSweep } from "../server/lab/sweep.ts";
import { runExperiment } from "../server/lab/w2s.ts";
import { checkFlags, recipeOptions } from "../scripts/cli/w2s.ts";
import { assertBitIdentical, assertClose, placed, randoms, run } from "./helpers/kernel-check.ts";

const cfg: GptConfig = { vocabSize: 40, contextLength: 8, width: 16, layers: 1, heads: 2 };
const layout = paramLayout(cfg);
const tensorOf = (flat: Float32Array, name: string) => {
  const spec = layout.byName.get(name)!;
  return flat.slice(spec.offset, spec.offset + spec.size);
};

/** Rows of 5 tokens whose LAST token decides the class (1…3 → 1, 4…6 → 0); soft targets 0.9 / 0.1. */
function lastTokenSet(n: number, seed: number): { set: EncodedSet; labels: number[]; targets: number[] } {
  let s = seed;
  const r = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const ids: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const last = 1 + Math.floor(r() * 6);
    ids.push([...Array.from({ length: 4 }, () => 7 + Math.floor(r() * 30)), last]);
    labels.push(last <= 3 ? 1 : 0);
  }
  return { set: padSet(ids, 5), labels, targets: labels.map((y) => (y ? 0.9 : 0.1)) };
}

const HYPER: FinetuneHyper = {
  epochs: 2,
  lr: 1e-2,
  batchSize: 16,
  warmupFraction: 0,
  weightDecay: 0.1,
  evalEvery: 100,
  seed: 1,
};

/** Finetunes on the last-token set and returns the final parameters (read before the model is freed). */
async function finetunedParams(
  gpu: Gpu,
  start: Float32Array,
  recipe: Partial<FinetuneHyper>,
): Promise<Float32Array> {
  const train = lastTokenSet(32, 1), held = lastTokenSet(16, 2);
  const result = await finetuneClassifier({
    gpu,
    config: cfg,
    params: start,
    train: train.set,
    trainTargets: train.targets,
    validation: held.set,
    validationLabels: held.labels,
    test: held.set,
    testLabels: held.labels,
    hyper: { ...HYPER, ...recipe },
    afterTraining: (model) => model.readParams(),
  });
  return result.extra as Float32Array;
}

Deno.test("embeddings frozen: wte and wpe bit-identical after finetuning with weight decay; the rest moves", async () => {
  const gpu = await getGpu();
  const start = initParameters(cfg, 3);
  const frozen = await finetunedParams(gpu, start, { embeddings: "frozen" });
  for (const name of ["wte.weight", "wpe.weight"]) {
    assertBitIdentical(tensorOf(frozen, name), tensorOf(start, name), `${name} frozen`);
  }
  for (const name of ["h.0.attn.c_attn.weight", "h.0.mlp.c_fc.weight", "h.0.ln_1.weight", "cls.weight"]) {
    assert.notDeepEqual(tensorOf(frozen, name), tensorOf(start, name), `${name} must be trained`);
  }
  // Mutation check: trained embeddings do move under the same run.
  const trained = await finetunedParams(gpu, start, { embeddings: "train" });
  assert.notDeepEqual(
    tensorOf(trained, "wte.weight"),
    tensorOf(start, "wte.weight"),
    "wte trains by default",
  );
  assert.notDeepEqual(
    tensorOf(trained, "wpe.weight"),
    tensorOf(start, "wpe.weight"),
    "wpe trains by default",
  );
});

Deno.test("decayTo pretrained through the loop: strong decay keeps the matrices near their start", async () => {
  const gpu = await getGpu();
  const start = initParameters(cfg, 4);
  const distance = (flat: Float32Array) =>
    tensorOf(flat, "h.0.mlp.c_fc.weight").reduce(
      (s, x, i) => s + Math.abs(x - tensorOf(start, "h.0.mlp.c_fc.weight")[i]),
      0,
    );
  const strong = { weightDecay: 500, lr: 1e-4 };
  const anchored = distance(await finetunedParams(gpu, start, { ...strong, decayTo: "pretrained" }));
  const plain = distance(await finetunedParams(gpu, start, strong));
  assert.ok(anchored < plain / 2, `distance from the start: anchored ${anchored}, plain decay ${plain}`);
});

Deno.test("decayTo pretrained: one AdamW step of a model equals the float64 L2-SP reference", async () => {
  const gpu = await getGpu();
  const B = 4, T = 5;
  const p0 = initParameters(cfg, 5);
  const noise = randoms(layout.total, 9, 0.05);
  const p1 = p0.map((x, i) => x + noise[i]);
  const hyper = { ...ADAMW_FINETUNE, lr: 0.01, weightDecay: 1, maxGradNorm: 0 };
  const model = new GptModel(gpu, cfg, p0, { batchSize: B, seqLen: T });
  try {
    model.anchorDecay(); // anchored at p0, then moved away from it
    model.loadParams(p1);
    model.setOptimizer(hyper);
    const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % cfg.vocabSize);
    const lengths = Int32Array.from([5, 3, 4, 2]);
    const classTargets = Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7]);
    model.setBatch({ tokens, lengths, classTargets });
    model.trainStep("cls");
    const got = await model.readParams();
    const g = await model.readGrads();
    // Step 1 from zero moments: m̂ = g, v̂ = g²; p − lr·(m̂/(√v̂ + eps) + wd·(p − p0)) on matrices.
    const { lr, beta1, beta2, eps, weightDecay: wd } = hyper;
    const want = new Float64Array(layout.total), towardZero = new Float64Array(layout.total);
    for (let i = 0; i < layout.total; i++) {
      const m = (1 - beta1) * g[i], v = (1 - beta2) * g[i] * g[i];
      const adam = (m / (1 - beta1)) / (Math.sqrt(v / (1 - beta2)) + eps);
      const matrix = i < layout.decayEnd;
      want[i] = p1[i] - lr * (adam + (matrix ? wd * (p1[i] - p0[i]) : 0));
      towardZero[i] = p1[i] - lr * (adam + (matrix ? wd * p1[i] : 0));
    }
    const matrices = [0, layout.decayEnd], vectors = [layout.decayEnd, layout.total];
    for (const [what, [a, b]] of [["matrices", matrices], ["vectors", vectors]] as const) {
      assertClose(got.subarray(a, b), want.subarray(a, b), `L2-SP AdamW ${what}`, 2e-6, 1e-5);
    }
    // The decay really is toward p0: the plain decay's answer is far from what the device did.
    const off = got.subarray(0, layout.decayEnd).reduce(
      (worst, x, i) => Math.max(worst, Math.abs(x - towardZero[i])),
      0,
    );
    assert.ok(off > 1e-4, `decay toward zero would be within ${off} of the result`);
  } finally {
    model.destroy();
  }
});

for (
  const [version, pad, frozen] of [
    ["v1", 37, { start: 40, end: 100 }],
    // v2 (vec4): 4-aligned tensors; a frozen range that starts and ends inside a vec4.
    ["v2", 40, { start: 42, end: 101 }],
  ] as const
) {
  Deno.test(`AdamW kernel ${version}: zero gradient decays toward the anchor, not zero; a frozen range stays untouched`, async () => {
    const gpu = await getGpu();
    const n = 300, decayEnd = 200;
    const p0 = Float32Array.from({ length: decayEnd }, (_, i) => 1 + i / 100);
    const p = Float32Array.from({ length: n }, (_, i) => (i < decayEnd ? p0[i] - 0.5 : 0.3));
    const moments = randoms(n, 4, 0.01).map(Math.abs);
    const params = placed(gpu, p, "params", pad), anchor = placed(gpu, p0, "anchor", pad);
    const m = placed(gpu, moments, "m", pad), v = placed(gpu, moments, "v", pad);
    const grads = createTensor(gpu, n, "grads");
    const stats = createTensor(gpu, 8, "stats");
    const partials = createTensor(gpu, gradNormPartials(n), "partials");
    const settings = { ...ADAMW_FINETUNE, lr: 0.1, weightDecay: 0.5, maxGradNorm: 0 };
    const spec = { params, grads, m, v, n, decayEnd, anchor, frozen, stats, label: "adamw", version };
    // Zero gradient with fresh moments: the Adam term is 0, only the decay acts.
    const fresh = { ...spec, m: createTensor(gpu, n, "m0"), v: createTensor(gpu, n, "v0") };
    await run(gpu, planAdamW(gpu, fresh, settings));
    const after = await readTensor(gpu, params);
    for (let i = 0; i < n; i++) {
      const isFrozen = i >= frozen.start && i < frozen.end;
      const want = isFrozen || i >= decayEnd ? p[i] : p[i] - 0.1 * 0.5 * (p[i] - p0[i]);
      assert.ok(Math.abs(after[i] - want) < 1e-6, `element ${i}: ${after[i]}, want ${want}`);
      if (i < decayEnd && !isFrozen) assert.ok(after[i] > p[i], `element ${i} moved toward p0 (up), not 0`);
    }
    // A real gradient: the norm leaves the frozen range out; frozen params and moments are bit-identical.
    const g = randoms(n, 11);
    writeTensor(gpu, grads, g);
    writeTensor(gpu, params, p);
    await run(gpu, [...planGradNorm(gpu, { grads, n, stats, partials, frozen, label: "gn" })]);
    const outside = g.reduce((s, x, i) => (i >= frozen.start && i < frozen.end ? s : s + x * x), 0);
    assertClose([(await readTensor(gpu, stats))[STAT_GRAD_NORM_SQ]], [outside], "grad norm² without frozen");
    await run(gpu, planAdamW(gpu, spec, settings));
    const [pAfter, mAfter, vAfter] = [
      await readTensor(gpu, params),
      await readTensor(gpu, m),
      await readTensor(gpu, v),
    ];
    const range = (a: Float32Array) => a.slice(frozen.start, frozen.end);
    assertBitIdentical(range(pAfter), range(p), "frozen params");
    assertBitIdentical(range(mAfter), range(moments), "frozen m");
    assertBitIdentical(range(vAfter), range(moments), "frozen v");
    assert.notDeepEqual(pAfter.slice(0, frozen.start), p.slice(0, frozen.start), "the rest is updated");
    // The elements beside the range, inside its first and last vec4 under v2, are updated.
    assert.notEqual(pAfter[frozen.start - 1], p[frozen.start - 1]);
    assert.notEqual(pAfter[frozen.end], p[frozen.end]);
  });
}

Deno.test("headInit probe: the head before any step predicts what a probe fitted here predicts", async () => {
  const gpu = await getGpu();
  const params = initParameters(cfg, 2);
  const { set, labels, targets } = lastTokenSet(48, 3);
  const model = new GptModel(gpu, cfg, params, { batchSize: 16, seqLen: 5 });
  try {
    // The probe of this test: on the features after the final LayerNorm, p = σ(w·x + b) in float64.
    const features = (await featuresOf(model, set))[cfg.layers + 1];
    const probe = trainLogisticProbe(features, targets);
    const expected = features.map((x) =>
      1 / (1 + Math.exp(-x.reduce((s, xi, j) => s + xi * probe.weights[j], probe.bias)))
    );
    await prepareFinetune(model, params, set, targets, { ...HYPER, headInit: "probe" });
    const got = await predictSet(model, set);
    assertClose(got, expected, "LP-FT head p(class 1)", 1e-5, 1e-4);
    assert.ok(accuracy(hardLabels(got), labels) >= 0.95, "the probe head already fits the training set");
    // Mutation: the default zero head says 0.5 everywhere.
    await prepareFinetune(model, params, set, targets, HYPER);
    assert.ok((await predictSet(model, set)).every((p) => p === 0.5), "zero head predicts 0.5");
  } finally {
    model.destroy();
  }
  // Through the loop: at a negligible learning rate the final predictions are still the probe's.
  const train = lastTokenSet(32, 4);
  const run1 = (headInit: "zero" | "probe") =>
    finetuneClassifier({
      gpu,
      config: cfg,
      params,
      train: train.set,
      trainTargets: train.targets,
      validation: set,
      validationLabels: labels,
      test: set,
      testLabels: labels,
      hyper: { ...HYPER, epochs: 1, batchSize: 32, lr: 1e-9, evalEvery: 1, headInit },
    });
  assert.ok((await run1("probe")).curve[0].valAcc >= 0.9, "LP-FT starts accurate");
  assert.ok((await run1("zero")).curve[0].valAcc <= 0.75, "a zero head starts near chance");
});

const stubModel = {
  size: "nano",
  hash: "h",
  config: cfg,
  params: new Float32Array(0),
} as unknown as LoadedModel;
const spec: RoleSpec = {
  role: "ceiling",
  description: "",
  model: stubModel,
  train: "train2",
  targets: [1, 0],
  validationLabels: [1],
  predict: ["test"],
  loss: "ce",
  mode: "finetune",
  seedSalt: 1,
  plannedSteps: 1,
};

Deno.test("roleCacheKey: every recipe option changes it; the default, given or not, does not", () => {
  const keyOf = (recipe: FinetuneRecipe) => {
    const experiment = { task: "t", seed: 0, ...recipe };
    return stableStringify(roleCacheKey(experiment, spec, roleHyper("nano", experiment, 1)));
  };
  // The lab's default (ladder.ts): LP-FT with frozen embeddings, decay toward zero.
  const byDefault = keyOf({});
  assert.equal(keyOf({ embeddings: "frozen", headInit: "probe", decayTo: "zero" }), byDefault);
  // Plain full finetuning keeps the key it had before the options existed: no option in it.
  const plain = keyOf({ embeddings: "train", headInit: "zero", decayTo: "zero" });
  assert.doesNotMatch(plain, /embeddings|headInit|decayTo/, "plain finetuning keeps its old key");
  const changed = [{ embeddings: "train" }, { headInit: "zero" }, { decayTo: "pretrained" }] as const;
  const keys = changed.map(keyOf);
  assert.equal(new Set([byDefault, plain, ...keys]).size, 5, "each option gives its own key");
  assert.equal(roleHyper("nano", { task: "t", seed: 0, headInit: "zero" }, 1).headInit, undefined);
  assert.equal(roleHyper("nano", { task: "t", seed: 0 }, 1).headInit, "probe");
});

Deno.test("recipe wiring: runExperiment and runSweep hand the options to every finetuned role", async () => {
  const tokenizer = createTokenizer({ merges: 0 });
  const configOf = (width: number) => ({ ...cfg, vocabSize: tokenizer.vocabSize, contextLength: 16, width });
  const configs: Record<string, GptConfig> = { a: configOf(8), b: configOf(16) };
  const models: ModelSource = {
    sizes: ["a", "b"],
    load(size) {
      const params = initParameters(configs[size], 1);
      return Promise.resolve({ size, config: configs[size], params, tokenizer, hash: hashNumbers(params) });
    },
  };
  const trainer: RoleTrainer = (input) =>
    Promise.resolve({
      curve: [],
      final: { step: 1, valAcc: 0.5, testAcc: input.role === "ceiling" ? 0.9 : 0.6 },
      selected: { step: 1, valAcc: 0.5, testAcc: 0.6 },
      oracle: { step: 1, valAcc: 0.5, testAcc: 0.6 },
      predictions: Object.fromEntries(
        Object.entries(input.predict).map(([k, s]) => [k, Array(s.n).fill(0.7)]),
      ),
      steps: 1,
      seconds: 0,
    });
  const dir = await Deno.makeTempDir({ prefix: "recipe-wiring-" });
  try {
    const task = join(dir, "task.jsonl");
    const rows = Array.from(
      { length: 120 },
      (_, i) => JSON.stringify({ txt: `item ${i}`, hard_label: i % 2 }),
    );
    await Deno.writeTextFile(task, rows.join("\n") + "\n");
    const recipe = { embeddings: "frozen", headInit: "probe", decayTo: "pretrained" } as const;
    const deps = { models, trainer, gpu: {} as Gpu };
    const one = await runExperiment(
      { task, weak: "a", strong: "b", method: "naive", seed: 0, ...recipe },
      deps,
    );
    const sweep = await runSweep({
      tasks: [task],
      sizes: ["a", "b"],
      methods: ["naive"],
      seeds: [0],
      ...recipe,
    }, deps);
    const runs = [...one.runs, ...sweep.cells[0].results[0].runs];
    assert.deepEqual(runs.map((r) => r.role), ["weak", "ceiling", "student", "weak", "ceiling", "student"]);
    for (const r of runs) {
      assert.deepEqual(
        [r.hyper?.embeddings, r.hyper?.headInit, r.hyper?.decayTo],
        Object.values(recipe),
        r.role,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recipe options: CLI flags and request bodies refuse bad values and the probe mode by name", () => {
  assert.deepEqual(recipeOptions({ embeddings: "frozen", "decay-to": "pretrained" }), {
    embeddings: "frozen",
    decayTo: "pretrained",
  });
  assert.throws(() => recipeOptions({ "head-init": "lp" }), /--head-init must be zero or probe, got "lp"/);
  assert.throws(() => recipeOptions({ embeddings: "fixed" }), /--embeddings must be train or frozen/);
  assert.throws(
    () => checkFlags({ methods: ["naive"], studentMode: "probe", decayTo: "pretrained" }),
    /--decay-to: decayTo is a finetuning-recipe option/,
  );
  assert.deepEqual(optionConflicts({ methods: ["naive"], studentMode: "finetune", headInit: "probe" }), []);
  const bad = ExperimentCreate.safeParse({ task: "t", weak: "a", strong: "b", headInit: "lp" });
  assert.match(bad.error!.issues[0].message, /headInit must be one of: zero, probe/);
});
