/**
 * The reward head (Bradley–Terry over pairs of rows) on the WGSL engine against the float64 reference, on
 * the tiny padded config with 4 pairs: rewards, loss, valid-pair count, correct pairs and EVERY parameter
 * gradient; the loss by hand from the float64 rewards; the aux-confidence variant against the reference
 * with the logconf targets of server/lab/metrics.ts; a pair with an empty member contributes nothing; the
 * loss is symmetric under swapping a pair's members and differs from the cls head's; a preference is
 * learned; and the errors (odd batch size, odd rows, both target kinds, wrong length, too many pairs).
 * The PyTorch comparison of the reward head is with the other heads' (tests/gpt-torch.test.ts and
 * tests/reference.test.ts).
 */
import assert from "node:assert/strict";
import { initParameters } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { type Batch, GptModel } from "../kernels/gpt.ts";
import { MAX_CLASS_ROWS } from "../kernels/ops/crossentropy.ts";
import { paramsFromFlat, refBackward, type RefBatch, refForward } from "../kernels/reference.ts";
import { auxconfTargets } from "../server/lab/metrics.ts";
import { cfg, relError, testParameters } from "./helpers/tiny-gpt.ts";

const B = 8;
const T = 7;
/** Pairs (rows 2i, 2i+1): (7, 4), (5, 3), (2, 0) left out for its empty row, (6, 1). */
const lengths = Int32Array.from([7, 4, 5, 3, 2, 0, 6, 1]);
const PAIRS = B / 2;
const VALID_PAIRS = [0, 1, 3];

function seededTokens(seed: number, rowLengths = lengths): Int32Array {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const tokens = new Int32Array(rowLengths.length * T);
  for (let b = 0; b < rowLengths.length; b++) {
    for (let t = 0; t < rowLengths[b]; t++) tokens[b * T + t] = Math.floor(next() * cfg.vocabSize);
  }
  return tokens;
}

/** [t_first, t_second] per pair; t_second = p(second preferred). */
const pairTargets = Float32Array.from([0.1, 0.9, 0.8, 0.2, 0.5, 0.5, 0.35, 0.65]);

function refPairBatch(tokens: Int32Array, targets: ArrayLike<number>, rowLengths = lengths): RefBatch {
  return { B: rowLengths.length, T, tokens, lengths: rowLengths, pairTargets: Float64Array.from(targets) };
}

/** A model on the batch with lr 0 (so a train step leaves the parameters and reads its gradients). */
function modelOn(gpu: Awaited<ReturnType<typeof getGpu>>, flat: Float32Array, batch: Batch, rows = B) {
  const model = new GptModel(gpu, cfg, flat, { batchSize: rows, seqLen: T });
  model.setBatch(batch);
  model.setOptimizer({ lr: 0, weightDecay: 0 });
  return model;
}

/**
 * Every parameter gradient within 1e-3 of the reference's, relative to each tensor's largest; ln_f.bias,
 * whose exact gradient is zero (a shift of every reward cancels in r₂ − r₁), within 1e-6 of the largest
 * gradient of all.
 */
function assertGradients(got: Float32Array, want: Map<string, Float64Array>, what: string) {
  const grads = paramsFromFlat(cfg, got);
  const report: string[] = [];
  const largest = Math.max(...[...want.values()].map((g) => g.reduce((m, x) => Math.max(m, Math.abs(x)), 0)));
  for (const [name, g] of want) {
    if (name === "ln_f.bias") {
      const worst = grads.get(name)!.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      assert.ok(g.every((x) => Math.abs(x) <= 1e-12 * largest), `${what}: reference ${name} is not zero`);
      if (!(worst <= 1e-6 * largest)) report.push(`${name}: ${worst.toExponential(2)}, exactly 0 in float64`);
      continue;
    }
    const err = relError(grads.get(name)!, g);
    if (!(err <= 1e-3)) report.push(`${name}: rel error ${err.toExponential(2)}`);
  }
  assert.deepEqual(report, [], `${what}: gradients off:\n${report.join("\n")}`);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

Deno.test("reward head: rewards, loss, count, correct pairs and every gradient match the float64 reference", async () => {
  const gpu = await getGpu();
  const flat = testParameters(17);
  const tokens = seededTokens(3);
  const model = modelOn(gpu, flat, { tokens, lengths, pairTargets });
  try {
    model.trainStep("reward");
    const stats = await model.readStats();
    const rewards = await model.readRewards();
    const grads = await model.readGrads();

    const params = paramsFromFlat(cfg, flat);
    const batch = refPairBatch(tokens, pairTargets);
    const fwd = refForward(cfg, params, batch, "reward");
    assert.equal(rewards.length, B);
    assert.ok(relError(rewards, fwd.logits) <= 1e-4, `rewards ${rewards} vs ${fwd.logits}`);
    // Bradley–Terry by hand over the valid pairs, from the float64 rewards.
    let loss = 0, correct = 0;
    for (const i of VALID_PAIRS) {
      const [first, second] = [fwd.logits[2 * i], fwd.logits[2 * i + 1]];
      const [tFirst, tSecond] = [pairTargets[2 * i], pairTargets[2 * i + 1]];
      loss -= tFirst * Math.log(sigmoid(first - second)) + tSecond * Math.log(sigmoid(second - first));
      if ((second > first) === (tSecond > tFirst)) correct++;
    }
    loss /= VALID_PAIRS.length;
    assert.ok(Math.abs(fwd.loss - loss) <= 1e-12 * loss, `reference loss ${fwd.loss} vs by hand ${loss}`);
    assert.ok(Math.abs(stats.loss - loss) <= 1e-4 * loss, `loss ${stats.loss} vs ${loss}`);
    assert.equal(stats.count, VALID_PAIRS.length);
    assert.equal(stats.correct, correct);
    assert.ok(correct > 0 && correct < VALID_PAIRS.length, `a case with right and wrong pairs (${correct})`);
    assertGradients(grads, refBackward(cfg, params, batch, "reward", fwd), "reward");

    // The eval program gives the same rewards and loss, and no gradient step.
    model.evalStep("reward");
    const evaluated = await model.readStats();
    assert.ok(Math.abs(evaluated.loss - stats.loss) <= 1e-6 * loss);
    assert.deepEqual(await model.readRewards(), rewards);
    // So does a prediction (no loss).
    model.predictStep("reward");
    assert.deepEqual(await model.readRewards(), rewards);
  } finally {
    model.destroy();
  }
});

Deno.test("reward head with the aux-confidence target matches the reference on the logconf targets", async () => {
  const gpu = await getGpu();
  const flat = testParameters(23);
  const tokens = seededTokens(8);
  const params = paramsFromFlat(cfg, flat);
  const plain = refForward(cfg, params, refPairBatch(tokens, pairTargets), "reward");
  // The student's p(second preferred) and the supervisor's soft label over the valid pairs.
  const student = VALID_PAIRS.map((i) => sigmoid(plain.logits[2 * i + 1] - plain.logits[2 * i]));
  const weak = VALID_PAIRS.map((i) => pairTargets[2 * i + 1]);
  const model = modelOn(gpu, flat, { tokens, lengths, pairTargets });
  try {
    for (const alpha of [1, 0.6]) {
      const mixed = Float64Array.from(pairTargets);
      auxconfTargets(student, weak, alpha).forEach((t, k) => {
        mixed[2 * VALID_PAIRS[k]] = 1 - t;
        mixed[2 * VALID_PAIRS[k] + 1] = t;
      });
      const batch = refPairBatch(tokens, mixed);
      const fwd = refForward(cfg, params, batch, "reward");
      model.trainStep("reward", { auxAlpha: alpha });
      const stats = await model.readStats();
      assert.ok(
        Math.abs(stats.loss - fwd.loss) <= 1e-4 * fwd.loss,
        `α=${alpha}: ${stats.loss} vs ${fwd.loss}`,
      );
      assertGradients(await model.readGrads(), refBackward(cfg, params, batch, "reward", fwd), `α=${alpha}`);
      // The hard part matters: the loss differs from the plain soft-target loss.
      assert.ok(Math.abs(fwd.loss - plain.loss) > 1e-3, `α=${alpha}: ${fwd.loss} vs plain ${plain.loss}`);
    }
  } finally {
    model.destroy();
  }
});

Deno.test("reward head: a pair with an empty member contributes nothing to the loss or the gradients", async () => {
  const gpu = await getGpu();
  const flat = testParameters(5);
  const tokens = seededTokens(11);
  const run = async (rowTokens: Int32Array, targets: Float32Array) => {
    const model = modelOn(gpu, flat, { tokens: rowTokens, lengths, pairTargets: targets });
    model.trainStep("reward");
    const result = { stats: await model.readStats(), grads: await model.readGrads() };
    model.destroy();
    return result;
  };
  const base = await run(tokens, pairTargets);
  // Pair 2 (rows 4 and 5, row 5 empty): new tokens in row 4 and opposite targets.
  const changedTokens = tokens.slice();
  for (let t = 0; t < lengths[4]; t++) changedTokens[4 * T + t] = (tokens[4 * T + t] + 5) % cfg.vocabSize;
  const changedTargets = pairTargets.slice();
  changedTargets.set([1, 0], 4);
  const changed = await run(changedTokens, changedTargets);
  assert.equal(changed.stats.count, 3);
  assert.equal(changed.stats.loss, base.stats.loss);
  assert.deepEqual(changed.grads, base.grads);
  // Control: the same change in a valid pair (pair 1) moves the loss.
  const moved = pairTargets.slice();
  moved.set([0.2, 0.8], 2);
  assert.ok(Math.abs((await run(tokens, moved)).stats.loss - base.stats.loss) > 1e-3);
});

Deno.test("reward head: swapping a pair's members and its targets keeps the loss; the cls head's loss differs", async () => {
  const gpu = await getGpu();
  const flat = testParameters(29);
  const tokens = seededTokens(4);
  const onePair = Int32Array.from([6, 3]);
  const pair = tokens.slice(0, 2 * T);
  const swapped = new Int32Array(2 * T);
  swapped.set(pair.subarray(T, 2 * T), 0);
  swapped.set(pair.subarray(0, T), T);
  const loss = async (batch: Batch, head: "reward" | "cls") => {
    const model = modelOn(gpu, flat, batch, 2);
    model.trainStep(head);
    const value = (await model.readStats()).loss;
    model.destroy();
    return value;
  };
  const forward = await loss(
    { tokens: pair, lengths: onePair, pairTargets: Float32Array.from([1, 0]) },
    "reward",
  );
  const backward = await loss(
    { tokens: swapped, lengths: Int32Array.from([3, 6]), pairTargets: Float32Array.from([0, 1]) },
    "reward",
  );
  assert.ok(Math.abs(forward - backward) <= 1e-6 * forward, `${forward} vs swapped ${backward}`);
  const want = refForward(cfg, paramsFromFlat(cfg, flat), refPairBatch(pair, [1, 0], onePair), "reward").loss;
  assert.ok(Math.abs(forward - want) <= 1e-4 * want, `${forward} vs reference ${want}`);
  // The same rows under the class head (row 0 class 0, row 1 class 1) give another loss.
  const cls = await loss(
    { tokens: pair, lengths: onePair, classTargets: Float32Array.from([1, 0, 0, 1]) },
    "cls",
  );
  assert.ok(Math.abs(cls - forward) > 1e-2, `cls ${cls} vs reward ${forward}`);
});

Deno.test("reward head learns a preference (the shorter text) to every pair ordered right", async () => {
  const gpu = await getGpu();
  const rowLengths = Int32Array.from([2, 6, 5, 3, 4, 7, 6, 2]);
  const tokens = seededTokens(31, rowLengths);
  // Target: the shorter member is preferred.
  const targets = new Float32Array(B);
  for (let i = 0; i < PAIRS; i++) targets[2 * i + (rowLengths[2 * i + 1] < rowLengths[2 * i] ? 1 : 0)] = 1;
  const model = new GptModel(gpu, cfg, initParameters(cfg, 6), { batchSize: B, seqLen: T });
  try {
    model.setBatch({ tokens, lengths: rowLengths, pairTargets: targets });
    model.setOptimizer({ lr: 1e-2, weightDecay: 0 });
    for (let i = 0; i < 60; i++) model.trainStep("reward");
    model.evalStep("reward");
    const stats = await model.readStats();
    const rewards = await model.readRewards();
    for (let i = 0; i < PAIRS; i++) {
      const secondPreferred = targets[2 * i + 1] === 1;
      assert.equal(rewards[2 * i + 1] > rewards[2 * i], secondPreferred, `pair ${i}: rewards ${rewards}`);
    }
    assert.equal(stats.correct, PAIRS);
    assert.ok(stats.loss < 0.1, `loss ${stats.loss}`);
  } finally {
    model.destroy();
  }
});

Deno.test("reward head: bad shapes and targets are refused with named errors", async () => {
  const gpu = await getGpu();
  const flat = initParameters(cfg, 1);
  const model = new GptModel(gpu, cfg, flat, { batchSize: B, seqLen: T });
  const odd = new GptModel(gpu, cfg, flat, { batchSize: 5, seqLen: T });
  try {
    const tokens = seededTokens(2);
    assert.throws(
      () => model.setBatch({ tokens: tokens.slice(0, 3 * T), lengths: lengths.slice(0, 3), pairTargets }),
      /pairTargets need an even number of rows \(pairs 2i, 2i\+1\), got 3 rows/,
    );
    assert.throws(
      () => model.setBatch({ tokens, lengths, pairTargets, classTargets: new Float32Array(2 * B) }),
      /classTargets \(cls head\) or pairTargets \(reward head\), not both/,
    );
    assert.throws(
      () => model.setBatch({ tokens, lengths, pairTargets: new Float32Array(4) }),
      /pairTargets must hold \(rows\/2\)·2 = 8 values, got 4/,
    );
    assert.throws(() => odd.trainStep("reward"), /even batchSize, got 5/);
    assert.throws(() => odd.evalStep("reward"), /even batchSize, got 5/);
    assert.throws(
      () => model.trainStep("lm", { auxAlpha: 0.5 }),
      /auxAlpha applies to the cls and reward heads/,
    );
  } finally {
    model.destroy();
    odd.destroy();
  }
  const rows = 2 * MAX_CLASS_ROWS + 2;
  const wide = new GptModel(gpu, cfg, flat, { batchSize: rows, seqLen: 1 });
  try {
    assert.throws(() => wide.evalStep("reward"), /1025 pairs exceeds the pair loss's limit of 1024 pairs/);
  } finally {
    wide.destroy();
  }
});
