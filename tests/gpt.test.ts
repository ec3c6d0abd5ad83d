/**
 * The WGSL GPT against the float64 CPU reference: loss and EVERY parameter gradient for the lm and cls
 * heads on a tiny config with padding, AdamW steps with every head in turn, the feature readout, training
 * sanity (overfitting a batch, a separable classification task) and the error paths (bad ids, non-finite
 * updates). The reward head's own checks are in tests/reward-head.test.ts.
 */
import assert from "node:assert/strict";
import { initParameters, paramLayout } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { DEFAULT_OPTIMIZER, GptModel, NonFiniteError } from "../kernels/gpt.ts";
import {
  DEFAULT_ADAMW,
  newAdamWState,
  paramsFromFlat,
  paramsToFlat,
  refAdamWStep,
  refBackward,
  refForward,
} from "../kernels/reference.ts";
import { B, cfg, lengths, randomBatch, refBatch, relError, T, testParameters } from "./helpers/tiny-gpt.ts";

// fuse: false runs the residual adds and GELU as separate dispatches (the default fuses them).
const gradientCases = [
  ["lm", "v1", true],
  ["lm", "v2", true],
  ["cls", "v1", true],
  ["cls", "v2", true],
  ["lm", "v3", true],
  ["cls", "v3", true],
  ["lm", "v2", false],
  ["cls", "v2", false],
] as const;
for (const [head, attention, fuse] of gradientCases) {
  const variant = `attention ${attention}${fuse ? "" : ", unfused"}`;
  Deno.test(`gpt ${head} (${variant}): loss and every gradient match the float64 reference`, async () => {
    const gpu = await getGpu();
    const flat = testParameters(11);
    const { tokens, classTargets } = randomBatch(5);
    const model = new GptModel(gpu, cfg, flat, { batchSize: B, seqLen: T, attention, fuse });
    model.setBatch({ tokens, lengths, classTargets });
    model.setOptimizer({ lr: 0 });
    model.trainStep(head);
    const stats = await model.readStats();
    const grads = paramsFromFlat(cfg, await model.readGrads());

    const params = paramsFromFlat(cfg, flat);
    const batch = refBatch(tokens, classTargets);
    const fwd = refForward(cfg, params, batch, head);
    const want = refBackward(cfg, params, batch, head, fwd);
    assert.ok(
      Math.abs(stats.loss - fwd.loss) <= 1e-4 * Math.abs(fwd.loss),
      `loss ${stats.loss} vs ${fwd.loss}`,
    );
    const report: string[] = [];
    for (const [name, g] of want) {
      const err = relError(grads.get(name)!, g);
      if (!(err <= 1e-3)) report.push(`${name}: rel error ${err.toExponential(2)}`);
    }
    assert.deepEqual(report, [], `gradients off:\n${report.join("\n")}`);
    model.destroy();
  });
}

Deno.test("gpt: four AdamW steps match the reference, with every head in turn", async () => {
  const gpu = await getGpu();
  const flat = testParameters(3);
  const { tokens, classTargets } = randomBatch(9);
  // Rows (0, 1) are the reward head's one compared pair; (2, 3) holds the empty row.
  const pairTargets = Float32Array.from([0.3, 0.7, 0.5, 0.5]);
  const model = new GptModel(gpu, cfg, flat, { batchSize: B, seqLen: T });
  const params = paramsFromFlat(cfg, flat);
  const state = newAdamWState(cfg);
  const batch = { ...refBatch(tokens, classTargets), pairTargets: Float64Array.from(pairTargets) };
  for (const head of ["lm", "lm", "cls", "reward"] as const) {
    model.setBatch(head === "reward" ? { tokens, lengths, pairTargets } : { tokens, lengths, classTargets });
    model.trainStep(head);
    refAdamWStep(cfg, params, refBackward(cfg, params, batch, head), state, DEFAULT_ADAMW);
  }
  await model.readStats();
  const got = paramsFromFlat(cfg, await model.readParams());
  const report: string[] = [];
  const C = cfg.width;
  for (const [name, p] of params) {
    // The key bias has an exactly-zero gradient (softmax ignores a per-query shift); in float32 it is
    // noise that AdamW normalizes, so those C elements may move by up to lr per step.
    const keyBias = (i: number) => name.endsWith("attn.c_attn.bias") && i >= C && i < 2 * C;
    let diff = 0;
    let keyDiff = 0;
    for (let i = 0; i < p.length; i++) {
      const d = Math.abs(got.get(name)![i] - p[i]);
      if (keyBias(i)) keyDiff = Math.max(keyDiff, d);
      else diff = Math.max(diff, d);
    }
    // Four steps of lr 1e-3 move a weight by ≤ 4e-3; 1e-5 is ~0.25 % of that.
    if (!(diff <= 1e-5)) report.push(`${name}: max abs diff ${diff.toExponential(2)}`);
    if (!(keyDiff <= 4 * DEFAULT_ADAMW.lr)) report.push(`${name} (key part): ${keyDiff.toExponential(2)}`);
  }
  assert.deepEqual(report, [], `parameters after 4 steps differ:\n${report.join("\n")}`);
  assert.equal(DEFAULT_OPTIMIZER.beta2, DEFAULT_ADAMW.beta2);
  model.destroy();
});

// An evaluation or a prediction of the cls head runs the final block on each row's last token only
// (forwardTrunk's lastRows): its logits and loss must still be the reference's, fused or not, on the
// model itself and on an evaluator with padding rows. The empty row's hidden state is zero as in the training program, so its
// logits are cls.bias (the reference writes 0 there; no loss or prediction reads them).
for (const fuse of [true, false]) {
  Deno.test(`gpt: the cls evaluation matches the float64 reference${fuse ? "" : " (unfused)"}`, async () => {
    const gpu = await getGpu();
    const flat = testParameters(29);
    const { tokens, classTargets } = randomBatch(4);
    const model = new GptModel(gpu, cfg, flat, { batchSize: B, seqLen: T, fuse });
    const evaluator = model.evaluator(B + 3);
    try {
      const params = paramsFromFlat(cfg, flat);
      const fwd = refForward(cfg, params, refBatch(tokens, classTargets), "cls");
      const rows = (all: ArrayLike<number>, keep: (b: number) => boolean) =>
        [...lengths.keys()].filter(keep).flatMap((b) => [all[2 * b], all[2 * b + 1]]);
      for (const m of [model, evaluator]) {
        const what = m === model ? "model" : "evaluator";
        m.setBatch({ tokens, lengths, classTargets });
        m.evalStep("cls");
        const stats = await m.readStats();
        const logits = await m.readClassLogits();
        assert.equal(logits.length, B * 2);
        const err = relError(rows(logits, (b) => lengths[b] > 0), rows(fwd.logits, (b) => lengths[b] > 0));
        assert.ok(err <= 1e-5, `${what}: logits rel error ${err}`);
        assert.deepEqual(
          rows(logits, (b) => lengths[b] === 0),
          [...params.get("cls.bias")!].map(Math.fround),
        );
        assert.ok(
          Math.abs(stats.loss - fwd.loss) <= 1e-5 * fwd.loss,
          `${what}: loss ${stats.loss} vs ${fwd.loss}`,
        );
        // A prediction (no loss) reads the same logits.
        m.predictStep("cls");
        assert.deepEqual(await m.readClassLogits(), logits);
      }
    } finally {
      evaluator.destroy();
      model.destroy();
    }
  });
}

Deno.test("gpt: last-token features of every layer match the reference", async () => {
  const gpu = await getGpu();
  const flat = testParameters(21);
  const { tokens, classTargets } = randomBatch(2);
  const model = new GptModel(gpu, cfg, flat, { batchSize: B, seqLen: T });
  model.setBatch({ tokens, lengths, classTargets });
  model.featuresStep();
  const features = await model.readFeatures();
  const want = refForward(cfg, paramsFromFlat(cfg, flat), refBatch(tokens, classTargets), "cls").features;
  assert.equal(features.length, cfg.layers + 2);
  for (let l = 0; l < want.length; l++) {
    const err = relError(features[l], want[l]);
    assert.ok(err <= 1e-4, `layer ${l}: rel error ${err}`);
  }
  model.destroy();
});

Deno.test("gpt: a tiny model overfits a fixed batch (loss < 5 % of its start)", async () => {
  const gpu = await getGpu();
  const model = new GptModel(gpu, cfg, initParameters(cfg, 1), { batchSize: B, seqLen: T });
  const { tokens } = randomBatch(13);
  model.setBatch({ tokens, lengths });
  model.setOptimizer({ lr: 1e-2, weightDecay: 0 });
  model.evalStep("lm");
  const start = (await model.readStats()).loss;
  for (let i = 0; i < 150; i++) model.trainStep("lm");
  const end = (await model.readStats()).loss;
  assert.ok(end < 0.05 * start, `loss ${start} → ${end}`);
  model.destroy();
});

Deno.test("gpt: the classification head learns a separable task to 100 % train accuracy", async () => {
  const gpu = await getGpu();
  const rows = 8;
  const model = new GptModel(gpu, cfg, initParameters(cfg, 2), { batchSize: rows, seqLen: T });
  // Label = whether the sequence's last token is below half the vocabulary.
  const tokens = new Int32Array(rows * T);
  const lens = new Int32Array(rows);
  const targets = new Float32Array(rows * 2);
  for (let b = 0; b < rows; b++) {
    lens[b] = 2 + (b % 5);
    for (let t = 0; t < lens[b]; t++) tokens[b * T + t] = (b * 7 + t * 3) % cfg.vocabSize;
    const positive = tokens[b * T + lens[b] - 1] < cfg.vocabSize / 2 ? 1 : 0;
    targets[b * 2 + positive] = 1;
  }
  model.setBatch({ tokens, lengths: lens, classTargets: targets });
  model.setOptimizer({ lr: 1e-2, weightDecay: 0 });
  for (let i = 0; i < 80; i++) model.trainStep("cls");
  model.evalStep("cls");
  const stats = await model.readStats();
  const logits = await model.readClassLogits();
  let correct = 0;
  for (let b = 0; b < rows; b++) {
    const predicted = logits[b * 2 + 1] > logits[b * 2] ? 1 : 0;
    if (targets[b * 2 + predicted] === 1) correct++;
  }
  assert.equal(correct, rows, `train accuracy ${correct}/${rows}, loss ${stats.loss}`);
  assert.equal(stats.correct, rows);
  model.destroy();
});

Deno.test("gpt: bad input is refused with a named error", async () => {
  const gpu = await getGpu();
  const model = new GptModel(gpu, cfg, initParameters(cfg, 1), { batchSize: B, seqLen: T });
  const { tokens } = randomBatch(1);
  tokens[T + 2] = cfg.vocabSize;
  assert.throws(
    () => model.setBatch({ tokens, lengths }),
    /token id 37 at row 1, position 2 is out of range/,
  );
  assert.throws(
    () => model.setBatch({ tokens: new Int32Array(T), lengths: Int32Array.from([T + 1]) }),
    /length 8 is outside/,
  );
  assert.throws(
    () => new GptModel(gpu, cfg, new Float32Array(10), { batchSize: 1, seqLen: 2 }),
    /layout needs/,
  );
  model.destroy();
});

Deno.test("gpt: a non-finite loss skips the update and is reported when the loss is read", async () => {
  const gpu = await getGpu();
  const flat = initParameters(cfg, 4);
  const layout = paramLayout(cfg);
  flat[layout.byName.get("ln_f.bias")!.offset] = NaN;
  const model = new GptModel(gpu, cfg, flat, { batchSize: B, seqLen: T });
  model.setBatch({ ...randomBatch(3), lengths });
  model.trainStep("lm");
  model.trainStep("lm");
  await assert.rejects(model.readStats(), (err: unknown) => {
    assert.ok(err instanceof NonFiniteError);
    assert.equal(err.skipped, 2);
    return true;
  });
  const after = await model.readParams();
  const wte = layout.byName.get("wte.weight")!;
  assert.deepEqual(
    after.subarray(wte.offset, wte.offset + wte.size),
    flat.subarray(wte.offset, wte.offset + wte.size),
  );
  // The flag is reported once; a clean model afterwards reads normally.
  model.loadParams(initParameters(cfg, 4));
  model.trainStep("lm");
  const stats = await model.readStats();
  assert.ok(Number.isFinite(stats.loss));
  model.destroy();
});

Deno.test("gpt: the flat buffer round-trips through the reference's named tensors", () => {
  const flat = testParameters(8);
  const back = paramsToFlat(cfg, paramsFromFlat(cfg, flat));
  assert.deepEqual(back, flat);
});
