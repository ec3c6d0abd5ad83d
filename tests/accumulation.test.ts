/**
 * Gradient accumulation (GptModel.accumulateStep / applyAccumulated): a batch run as micro-batches, each
 * gradient weighted by its share of the batch's rows, gives the parameters of the whole batch's AdamW
 * steps — checked against the float64 reference on the whole batch, with equal and unequal shares, and
 * the micro-batch planning of kernels/memory.ts against hand-made limits.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { GptModel } from "../kernels/gpt.ts";
import { modelMemory, planMicroBatch } from "../kernels/memory.ts";
import {
  DEFAULT_ADAMW,
  newAdamWState,
  paramsFromFlat,
  refAdamWStep,
  refBackward,
  type RefBatch,
} from "../kernels/reference.ts";
import { nextTokenTargets } from "../kernels/gpt.ts";
import { cfg, T, testParameters } from "./helpers/tiny-gpt.ts";
import { finetuneClassifier, padSet } from "../server/lab/finetune.ts";
import { BASE_HYPER } from "../server/lab/ladder.ts";
import { finetuneMemory } from "../server/lab/own-models.ts";

const ROWS = 4;
// Every row valid: a finetuning batch (full batches, no empty text) is one.
const lengths = Int32Array.from([7, 4, 2, 5]);

function batchOf(seed: number) {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const tokens = new Int32Array(ROWS * T);
  const classTargets = new Float32Array(ROWS * 2);
  for (let b = 0; b < ROWS; b++) {
    for (let t = 0; t < lengths[b]; t++) tokens[b * T + t] = Math.floor(next() * cfg.vocabSize);
    const p = next();
    classTargets.set([1 - p, p], b * 2);
  }
  return { tokens, classTargets };
}

/** Rows [start, end) of the batch, as setBatch takes them. */
function rowsOf(batch: ReturnType<typeof batchOf>, start: number, end: number) {
  return {
    tokens: batch.tokens.slice(start * T, end * T),
    lengths: lengths.slice(start, end),
    classTargets: batch.classTargets.slice(start * 2, end * 2),
  };
}

/** Max |engine − reference| over every parameter, the key bias (an exactly-zero gradient) apart. */
function maxParamDiff(got: Map<string, ArrayLike<number>>, want: Map<string, ArrayLike<number>>) {
  const C = cfg.width;
  let diff = 0;
  for (const [name, p] of want) {
    for (let i = 0; i < p.length; i++) {
      if (name.endsWith("attn.c_attn.bias") && i >= C && i < 2 * C) continue;
      diff = Math.max(diff, Math.abs(got.get(name)![i] - p[i]));
    }
  }
  return diff;
}

// Micro-batches as row ranges: equal shares (2 + 2) and unequal ones (2 + 1 + 1: shares ½, ¼, ¼, which
// the running rescale between micro-batches must keep apart; the model's second row is empty padding).
const splits = [
  ["2 × 2", [[0, 2], [2, 4]]],
  ["2 + 1 + 1", [[0, 2], [2, 3], [3, 4]]],
] as const;
for (const [name, split] of splits) {
  Deno.test(`accumulation ${name}: two AdamW steps equal the whole batch's (float64 reference)`, async () => {
    const gpu = await getGpu();
    const flat = testParameters(5);
    const model = new GptModel(gpu, cfg, flat, { batchSize: 2, seqLen: T });
    const whole = new GptModel(gpu, cfg, flat, { batchSize: ROWS, seqLen: T });
    const params = paramsFromFlat(cfg, flat);
    const state = newAdamWState(cfg);
    try {
      for (const seed of [3, 4]) {
        const batch = batchOf(seed);
        for (const [start, end] of split) {
          model.setBatch(rowsOf(batch, start, end));
          model.accumulateStep("cls", { share: (end - start) / ROWS });
        }
        model.applyAccumulated();
        whole.setBatch(rowsOf(batch, 0, ROWS));
        whole.trainStep("cls");
        const ref: RefBatch = {
          B: ROWS,
          T,
          tokens: batch.tokens,
          lengths,
          targets: nextTokenTargets(batch.tokens, lengths, T),
          classTargets: Float64Array.from(batch.classTargets),
        };
        refAdamWStep(cfg, params, refBackward(cfg, params, ref, "cls"), state, DEFAULT_ADAMW);
      }
      const stats = await model.readStats();
      assert.equal(stats.steps, 2, "two updates recorded, not one per micro-batch");
      const wholeNorm = (await whole.readStats()).gradNorm;
      assert.ok(
        Math.abs(stats.gradNorm - wholeNorm) <= 1e-4 * wholeNorm,
        `grad norm ${stats.gradNorm} ≠ ${wholeNorm}`,
      );
      const accumulated = paramsFromFlat(cfg, await model.readParams());
      const unaccumulated = paramsFromFlat(cfg, await whole.readParams());
      // Two steps of lr 1e-3 move a weight by ≤ 2e-3; a wrong share moves it by a sizable part of that.
      const diff = maxParamDiff(accumulated, params);
      assert.ok(diff <= 1e-5, `accumulated vs float64 reference: max abs diff ${diff.toExponential(2)}`);
      const engineDiff = maxParamDiff(accumulated, unaccumulated);
      assert.ok(engineDiff <= 1e-5, `accumulated vs one batch: max abs diff ${engineDiff.toExponential(2)}`);
    } finally {
      model.destroy();
      whole.destroy();
    }
  });
}

Deno.test("accumulation: applyAccumulated without a micro-batch and a share outside (0, 1] are refused", async () => {
  const gpu = await getGpu();
  const model = new GptModel(gpu, cfg, testParameters(1), { batchSize: 2, seqLen: T });
  try {
    assert.throws(() => model.applyAccumulated(), /no micro-batch was accumulated/);
    model.setBatch(rowsOf(batchOf(1), 0, 2));
    assert.throws(() => model.accumulateStep("cls", { share: 0 }), /share 0 must be in \(0, 1\]/);
  } finally {
    model.destroy();
  }
});

Deno.test("planMicroBatch: the largest micro-batch whose need fits, split evenly; refused below one row", () => {
  const shape = { batchSize: 32, seqLen: T };
  const bytesAt = (rows: number) => modelMemory(cfg, { ...shape, batchSize: rows }).total;
  const roomy = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27, deviceMemory: 2 ** 34 };
  assert.deepEqual(planMicroBatch(cfg, shape, roomy).microBatch, 32);
  // Room for 11 rows but not 12: 32 rows take 3 micro-batches, evened out to 11, 11, 10.
  const tight = { ...roomy, deviceMemory: (bytesAt(11) + bytesAt(12)) / 2 };
  const plan = planMicroBatch(cfg, shape, tight);
  assert.deepEqual([plan.microBatch, plan.microBatches], [11, 3]);
  assert.equal(plan.need.total, bytesAt(11));
  assert.match(plan.summary, /batch 32 as 3 micro-batches of ≤ 11 rows/);
  assert.match(plan.summary, /AdamW state \d/);
  // Pairs: a micro-batch holds whole pairs (2 rows each).
  const pairs = planMicroBatch(cfg, { ...shape, rowsPerExample: 2 }, tight);
  assert.deepEqual([pairs.microBatch, pairs.microBatches], [5, 7]);
  const none = { ...roomy, deviceMemory: bytesAt(1) - 1 };
  assert.throws(() => planMicroBatch(cfg, shape, none), /at batch 1 × 7 .*exceeds the adapter's memory/s);
});

Deno.test("finetuneClassifier: microBatch 2 of batch 4 trains as the whole batch does, and is recorded", async () => {
  const gpu = await getGpu();
  let seed = 17;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const texts = (n: number) =>
    Array.from(
      { length: n },
      () => Array.from({ length: 2 + Math.floor(next() * 5) }, () => 1 + Math.floor(next() * 30)),
    );
  const train = padSet(texts(8), T), test = padSet(texts(6), T);
  const labels = Array.from({ length: 6 }, (_, i) => i % 2);
  const hyper = {
    epochs: 1,
    lr: 1e-2,
    batchSize: 4,
    warmupFraction: 0,
    weightDecay: 0,
    evalEvery: 10,
    seed: 2,
  };
  const run = (microBatch?: number, lr = hyper.lr) =>
    finetuneClassifier({
      gpu,
      config: cfg,
      params: testParameters(9),
      train,
      trainTargets: Array.from({ length: 8 }, (_, i) => (i % 3 === 0 ? 0.9 : 0.2)),
      validation: test,
      validationLabels: labels,
      test,
      testLabels: labels,
      predict: { test },
      hyper: { ...hyper, lr },
      ...(microBatch ? { microBatch } : {}),
    });
  const whole = await run();
  const micro = await run(2);
  assert.equal(whole.microBatch, 4, "the batch fits: no accumulation");
  assert.equal(micro.microBatch, 2);
  assert.equal(micro.steps, whole.steps);
  const ones = await run(1);
  // Training moves the predictions far more than the tolerance: the comparison can tell.
  const start = (await run(undefined, 1e-9)).predictions.test;
  const gap = (a: number[], b: number[]) => Math.max(...a.map((p, i) => Math.abs(p - b[i])));
  assert.ok(gap(whole.predictions.test, start) > 1e-2, "training moved the predictions");
  assert.ok(gap(whole.predictions.test, micro.predictions.test) <= 1e-4, "2 × 2 accumulated vs batch 4");
  assert.ok(gap(whole.predictions.test, ones.predictions.test) <= 1e-4, "4 × 1 accumulated vs batch 4");
  await assert.rejects(() => run(5), /microBatch 5 must be an integer in 1…4/);
});

Deno.test("own models: a default batch that does not fit is planned as micro-batches, not refused", () => {
  const seqLen = cfg.contextLength;
  const bytesAt = (rows: number) => modelMemory(cfg, { batchSize: rows, seqLen }).total;
  const B = BASE_HYPER.batchSize;
  const limits = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27, deviceMemory: bytesAt(3) };
  const memory = finetuneMemory(cfg, limits);
  assert.deepEqual(memory.problems, []);
  // 3 rows fit, 4 do not: ⌈B / 3⌉ micro-batches, evened out.
  assert.equal(memory.microBatch, Math.ceil(B / Math.ceil(B / 3)));
  assert.match(memory.plan!, new RegExp(`batch ${B} as ${Math.ceil(B / 3)} micro-batches`));
  const refused = finetuneMemory(cfg, { ...limits, deviceMemory: bytesAt(1) - 1 });
  assert.equal(refused.problems.length, 1);
  assert.equal(refused.microBatch, undefined);
});
