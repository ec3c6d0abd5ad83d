/**
 * The finetune loop: the learning-rate schedule by hand, padding/truncation, a learnable rule learned,
 * and the aux confidence target the GPU computes per batch against metrics.auxconfTargets (the CPU
 * statement of the same openai rule): the device's loss at lr 0 must equal the cross-entropy of the
 * student's own probabilities against auxconfTargets.
 */
import assert from "node:assert/strict";
import { type GptConfig, initParameters, paramLayout } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { GptModel } from "../kernels/gpt.ts";
import {
  batchPlan,
  featuresOf,
  finetuneClassifier,
  finetuneLr,
  padSet,
  predictSet,
  selectExamples,
  totalSteps,
} from "../server/lab/finetune.ts";
import { mulberry32 } from "../kernels/random.ts";
import { auxconfTargets } from "../server/lab/metrics.ts";
import { paramsFromFlat, refForward } from "../kernels/reference.ts";
import { watchReadBacks } from "./helpers/read-backs.ts";

Deno.test("finetune: warmup then cosine decay to zero, by hand", () => {
  // total 100, warmup 10 % = 10 steps: step 0 → lr/10, step 9 → lr; then cos from step 10 to 100.
  assert.equal(finetuneLr(0, 100, 1, 0.1), 0.1);
  assert.equal(finetuneLr(9, 100, 1, 0.1), 1);
  assert.equal(finetuneLr(10, 100, 1, 0.1), 1);
  assert.ok(Math.abs(finetuneLr(55, 100, 1, 0.1) - 0.5) < 1e-12); // halfway through the decay
  assert.ok(Math.abs(finetuneLr(100, 100, 1, 0.1)) < 1e-12);
});

Deno.test("finetune: padding keeps the last T tokens and records lengths", () => {
  const set = padSet([[1, 2, 3, 4, 5], [7]], 3);
  assert.deepEqual([...set.tokens], [3, 4, 5, 7, 0, 0]);
  assert.deepEqual([...set.lengths], [3, 1]);
});

const cfg: GptConfig = { vocabSize: 40, contextLength: 8, width: 16, layers: 1, heads: 2 };

function ruleSet(n: number, seed: number) {
  let s = seed;
  const r = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const ids: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from({ length: 2 + Math.floor(r() * 4) }, () => Math.floor(r() * cfg.vocabSize));
    ids.push(row);
    labels.push(row[row.length - 1] % 2); // the last token's parity
  }
  return { set: padSet(ids, 6), labels };
}

Deno.test("finetune: learns a rule of the last token; selection and oracle read the curve", async () => {
  const gpu = await getGpu();
  const train = ruleSet(160, 1), val = ruleSet(60, 2), test = ruleSet(60, 3);
  const result = await finetuneClassifier({
    gpu,
    config: cfg,
    params: initParameters(cfg, 1),
    train: train.set,
    trainTargets: train.labels,
    validation: val.set,
    validationLabels: val.labels,
    test: test.set,
    testLabels: test.labels,
    predict: { test: test.set },
    hyper: {
      epochs: 8,
      lr: 3e-3,
      batchSize: 32,
      warmupFraction: 0.1,
      weightDecay: 0,
      evalEvery: 10,
      seed: 1,
    },
  });
  assert.equal(result.steps, 40);
  assert.deepEqual(result.curve.map((p) => p.step), [10, 20, 30, 40]);
  assert.ok(result.final.testAcc >= 0.9, `final test accuracy ${result.final.testAcc}`);
  // The predictions returned are the FINAL model's (the paper's reading): their accuracy is its test accuracy.
  const predicted = result.predictions.test.map((p) => (p > 0.5 ? 1 : 0));
  const acc = predicted.filter((p, i) => p === test.labels[i]).length / test.labels.length;
  assert.equal(acc, result.final.testAcc);
  assert.equal(result.final.step, result.steps);
  assert.equal(result.oracle.testAcc, Math.max(...result.curve.map((p) => p.testAcc)));
  // The selected point's test predictions (what its intervals read) are that checkpoint's, not the final's.
  const selected = result.selectedTest!.map((p) => (p > 0.5 ? 1 : 0));
  assert.equal(
    selected.filter((p, i) => p === test.labels[i]).length / test.labels.length,
    result.selected.testAcc,
  );
  assert.ok(result.selected.step < result.final.step, `selected at step ${result.selected.step}`);
  assert.notDeepEqual(result.selectedTest, result.predictions.test);
});

Deno.test("aux confidence: the GPU target per batch equals auxconfTargets (soft weak rate)", async () => {
  const gpu = await getGpu();
  const B = 12;
  const T = 4;
  const params = initParameters(cfg, 3);
  // A non-zero class head so the student's probabilities spread.
  const layout = paramLayout(cfg);
  const head = layout.byName.get("cls.weight")!;
  let s = 5;
  for (let i = 0; i < head.size; i++) {
    params[head.offset + i] = ((s = (s * 69069 + 1) % 4294967296) / 4294967296 - 0.5) * 4;
  }
  const model = new GptModel(gpu, cfg, params, { batchSize: B, seqLen: T });
  try {
    const tokens = new Int32Array(B * T).map((_, i) => (i * 7 + 3) % cfg.vocabSize);
    const lengths = Int32Array.from({ length: B }, (_, i) => 1 + (i % T));
    // Soft weak labels whose mean (5.8/12 ≈ 0.483) differs from their hard positive rate (5/12): the
    // threshold lands between different ranks (h = 0.517·11 ≈ 5.7 vs 0.583·11 ≈ 6.4), so 6 vs 5 positives.
    const weak = [0.9, 0.2, 0.6, 0.45, 0.1, 0.8, 0.3, 0.55, 0.4, 0.7, 0.35, 0.45];
    const classTargets = new Float32Array(weak.flatMap((p) => [1 - p, p]));
    model.setOptimizer({ weightDecay: 0 });
    for (const alpha of [1, 0.4]) {
      model.setBatch({ tokens, lengths, classTargets });
      model.trainStep("cls", { lr: 0, auxAlpha: alpha });
      const stats = await model.readStats();
      const logits = await model.readClassLogits();
      const student = weak.map((_, b) => 1 / (1 + Math.exp(-(logits[b * 2 + 1] - logits[b * 2]))));
      const targets = auxconfTargets(student, weak, alpha);
      const expected = targets.reduce(
        (sum, t, b) => sum - (t * Math.log(student[b]) + (1 - t) * Math.log(1 - student[b])),
        0,
      ) / B;
      assert.ok(
        Math.abs(stats.loss - expected) < 1e-4,
        `α=${alpha}: device loss ${stats.loss}, CPU ${expected}`,
      );
      // The hard part must matter: with α = 1 the loss differs from plain CE on the weak labels.
      if (alpha === 1) {
        const plain = weak.reduce((sum, t, b) =>
          sum - (t * Math.log(student[b]) + (1 - t) * Math.log(1 - student[b])), 0) / B;
        assert.ok(Math.abs(plain - expected) > 1e-3);
      }
    }
  } finally {
    model.destroy();
  }
});

Deno.test("finetune: full batches only — 98 examples, batch 32, 4 epochs: 12 steps of 32, the remainder carried", () => {
  const hyper = { epochs: 4, batchSize: 32 };
  const batches = batchPlan(98, hyper, mulberry32(5));
  // 4 · 98 = 392 rows in the stream; ⌊392 / 32⌋ = 12 batches, 8 rows of the last pass unused.
  assert.equal(batches.length, 12);
  assert.equal(totalSteps(98, hyper), 12);
  assert.ok(batches.every((b) => b.length === 32), "every batch is full");
  // The first 98 rows of the stream are a permutation of the examples (one pass), and so are the next 98.
  const stream = batches.flat();
  for (const pass of [0, 1, 2]) {
    assert.deepEqual([...stream.slice(pass * 98, (pass + 1) * 98)].sort((a, b) => a - b), [
      ...Array(98).keys(),
    ]);
  }
  // Fewer examples than a batch: one batch of all of them per pass.
  assert.deepEqual(batchPlan(5, { epochs: 2, batchSize: 32 }, mulberry32(1)).map((b) => b.length), [5, 5]);
});

Deno.test("pairs: features are second − first, predictions σ(w·(h₂ − h₁)) through the reward head", async () => {
  const gpu = await getGpu();
  const params = initParameters(cfg, 3);
  const reward = paramLayout(cfg).byName.get("reward.weight")!;
  const random = mulberry32(5);
  const w = Array.from({ length: cfg.width }, () => random() - 0.5);
  params.set(w, reward.offset);
  const ids = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10], [11, 12], [13]];
  const rows = padSet(ids, 6);
  const pairs = padSet(ids, 6, true);
  assert.equal(pairs.n, 3);
  // Four rows per batch: two pairs, so the three pairs span two batches.
  const model = new GptModel(gpu, cfg, params, { batchSize: 4, seqLen: 6 });
  try {
    const h = (await featuresOf(model, rows))[cfg.layers + 1];
    const d = (await featuresOf(model, pairs))[cfg.layers + 1];
    const p = await predictSet(model, pairs);
    assert.equal(d.length, 3);
    for (let i = 0; i < 3; i++) {
      let score = 0;
      for (let c = 0; c < cfg.width; c++) {
        const diff = h[2 * i + 1][c] - h[2 * i][c];
        assert.ok(Math.abs(d[i][c] - diff) < 1e-6, `pair ${i} feature ${c}`);
        score += w[c] * diff;
      }
      const expected = 1 / (1 + Math.exp(-score));
      assert.ok(Math.abs(p[i] - expected) < 1e-4, `pair ${i}: ${p[i]} vs ${expected}`);
    }
  } finally {
    model.destroy();
  }
  // A fold of pairs keeps both rows of each pair, in the fold's order.
  const fold = selectExamples(pairs, [2, 0]);
  assert.equal(fold.n, 2);
  assert.equal(fold.pairs, true);
  assert.deepEqual([...fold.lengths], [2, 1, 3, 2]);
});

Deno.test("predictSet and featuresOf queue every batch's read and wait once; answers as batch by batch", async () => {
  const gpu = await getGpu();
  const params = initParameters(cfg, 4);
  const head = paramLayout(cfg).byName.get("cls.weight")!;
  const random = mulberry32(9);
  params.set(Array.from({ length: head.size }, () => random() - 0.5), head.offset);
  // 10 examples, 4 rows per batch: batches of 4, 4 and 2 (a partial last batch).
  const ids = Array.from(
    { length: 10 },
    (_, i) => Array.from({ length: 1 + (i % 5) }, (_, t) => (i * 7 + t) % 40),
  );
  const set = padSet(ids, 6);
  const model = new GptModel(gpu, cfg, params, { batchSize: 4, seqLen: 6 });
  try {
    let got: number[] = [];
    let features: Float32Array[] = [];
    const log = await watchReadBacks(async () => {
      got = await predictSet(model, set);
      features = (await featuresOf(model, set))[cfg.layers + 1];
    });
    const sizes = [...log.mostPendingBySize.entries()];
    assert.ok(sizes.some(([, n]) => n === 3) && sizes.every(([, n]) => n <= 3), `pending reads ${sizes}`);
    // The same batches read one at a time.
    const want: number[] = [];
    const wantFeatures: Float32Array[] = [];
    for (let start = 0; start < set.n; start += 4) {
      const n = Math.min(4, set.n - start);
      const rows = {
        tokens: set.tokens.slice(start * 6, (start + n) * 6),
        lengths: set.lengths.slice(start, start + n),
      };
      model.setBatch(rows);
      model.evalStep("cls");
      const logits = await model.readClassLogits();
      for (let i = 0; i < n; i++) want.push(1 / (1 + Math.exp(-(logits[2 * i + 1] - logits[2 * i]))));
      model.featuresStep();
      const all = (await model.readFeatures())[cfg.layers + 1];
      for (let i = 0; i < n; i++) wantFeatures.push(all.slice(i * cfg.width, (i + 1) * cfg.width));
    }
    assert.deepEqual(got, want);
    assert.deepEqual(features, wantFeatures);
    assert.ok(new Set(got).size > 5, "the predictions differ between examples");
  } finally {
    model.destroy();
  }
});

Deno.test("an evaluator of more rows reads its trainer's current parameters: answers equal the float64 reference", async () => {
  const gpu = await getGpu();
  const params = initParameters(cfg, 6);
  const head = paramLayout(cfg).byName.get("cls.weight")!;
  const random = mulberry32(11);
  params.set(Array.from({ length: head.size }, () => (random() - 0.5) * 4), head.offset);
  const ids = Array.from(
    { length: 10 },
    (_, i) => Array.from({ length: 1 + (i % 6) }, (_, t) => (i * 5 + t) % 40),
  );
  const set = padSet(ids, 6);
  const trainer = new GptModel(gpu, cfg, params, { batchSize: 4, seqLen: 6 });
  // 12 rows: the whole set in one batch, 3 training batches' worth.
  const evaluator = trainer.evaluator(12);
  try {
    assert.equal(evaluator.B, 12);
    // One step at a large lr: the parameters the evaluator must see are the trained ones.
    trainer.setOptimizer({ lr: 0.05, weightDecay: 0 });
    trainer.setBatch({ ...rows4(set), classTargets: new Float32Array(8).fill(0.5).map((_, i) => i % 2) });
    trainer.trainStep("cls");
    const trained = await trainer.readParams();
    const reference = (flat: Float32Array) => {
      const fwd = refForward(cfg, paramsFromFlat(cfg, flat), {
        B: set.n,
        T: 6,
        tokens: set.tokens,
        lengths: set.lengths,
        classTargets: new Float64Array(set.n * 2).fill(0.5),
      }, "cls");
      const p = [...Array(set.n).keys()].map((i) =>
        1 / (1 + Math.exp(fwd.logits[2 * i] - fwd.logits[2 * i + 1]))
      );
      return { p, lnf: fwd.features[cfg.layers + 1] };
    };
    const want = reference(trained);
    const before = reference(params);
    assert.ok(
      want.p.some((p, i) => Math.abs(p - before.p[i]) > 1e-2),
      "the step moved the predictions (a stale copy would be caught)",
    );
    const got = await predictSet(evaluator, set);
    got.forEach((p, i) => assert.ok(Math.abs(p - want.p[i]) < 1e-4, `example ${i}: ${p} vs ${want.p[i]}`));
    const features = (await featuresOf(evaluator, set))[cfg.layers + 1];
    features.forEach((row, i) =>
      row.forEach((x, c) => {
        const w = want.lnf[i * cfg.width + c];
        assert.ok(Math.abs(x - w) < 1e-4, `features ${i}.${c}: ${x} vs ${w}`);
      })
    );
    // It evaluates and nothing else; freeing it leaves the trainer's parameters.
    assert.throws(() => evaluator.trainStep("cls"), /forward-only/);
    assert.throws(() => evaluator.loadParams(trained), /another model's parameters/);
    evaluator.destroy();
    assert.deepEqual(await trainer.readParams(), trained);
  } finally {
    trainer.destroy();
  }
});

/** The first 4 rows of a set (the trainer's batch). */
function rows4(set: ReturnType<typeof padSet>) {
  return { tokens: set.tokens.slice(0, 4 * set.T), lengths: set.lengths.slice(0, 4) };
}
