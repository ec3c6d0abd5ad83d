/**
 * The one finetune loop of the lab: weak supervisor, ceiling, student and bootstrap step all train here.
 *
 * Examples are tokenized, cut to their LAST seqLen tokens (the class head reads the last non-padding
 * token, so the end of a text matters most) and right-padded. The model is the pretrained GPT with its
 * 2-class head; targets are soft (p(class 1) per example: ground truth gives 0/1, weak labels give the
 * supervisor's probabilities). A pairwise task's example is two rows read by the scalar reward head, its
 * target p(second preferred) and its loss Bradley–Terry (kernels/gpt.ts); the rest of the loop is the same.
 * AdamW with linear warmup and cosine decay to zero; data reshuffled every
 * epoch from the seed, in full batches only (batchPlan). A batch that does not fit the adapter runs as
 * micro-batches (kernels/memory.ts planMicroBatch) whose gradients, each weighted by its share of the
 * batch's examples (every row of a full batch is valid), sum to the batch's before one AdamW step.
 * Every `evalEvery` steps the model is scored on validation and test (the curves).
 *
 * Three readings of one run, all returned; the model that predicts (labels for the next role,
 * agreement, intervals) is the final one, as in the paper and the openai code:
 *   final     the model after the last step — the headline;
 *   selected  the point with the best validation accuracy against the labels the role may see (GT for
 *             weak and ceiling; for a student the supervisor's labels, so it measures agreement with
 *             the supervisor and, used to select, would pick the checkpoint that imitates it most);
 *   oracle    the point with the best TEST accuracy (ground-truth early stopping): reported beside the
 *             others as an upper bound, never used to pick anything.
 *
 * The recipe options of FinetuneHyper (absent: plain full finetuning from a zero head) are applied by
 * prepareFinetune: the head fitted first as a logistic probe (LP-FT), frozen embeddings, weight decay
 * toward the starting weights (L2-SP).
 * The aux confidence (logconf) loss is computed on the device per batch (kernels/gpt.ts, `auxAlpha`);
 * its weight follows auxconfAlpha (linear warmup over the first 20 % of steps, no jump).
 * A second mode trains nothing in the trunk: frozen features of one layer + a converged logistic
 * regression (probe.ts), the openai repo's `linear_probe` option.
 */

import {
  ADAMW_FINETUNE,
  EMBEDDING_PARAMS,
  type GptConfig,
  HEAD_PARAMS,
  NUM_CLASSES,
  type ParamLayout,
} from "../../kernels/config.ts";
import type { Gpu } from "../../kernels/device.ts";
import { GptModel } from "../../kernels/gpt.ts";
import { adapterMemoryLimits, modelMemory, planEvalRows, planMicroBatch } from "../../kernels/memory.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import { seededRandom, shuffled } from "../../kernels/random.ts";
import { accuracy, auxconfAlpha, hardLabels } from "./metrics.ts";
import type { CurvePoint, FinetuneHyper, Reading } from "../contract/results.ts";
import { type LogisticProbe, trainLogisticProbe } from "./probe.ts";
import { learningRateAt } from "./schedule.ts";

/**
 * Tokenized examples, right-padded to T. A pairwise set (a preference task) holds two rows per example,
 * rows 2i (the first text) and 2i + 1 (the second), read by the reward head as one comparison.
 */
export interface EncodedSet {
  /** Examples (pairs for a pairwise set). */
  n: number;
  T: number;
  /** Rows · T token ids; rows = n, or 2n for a pairwise set. */
  tokens: Int32Array;
  lengths: Int32Array;
  pairs?: boolean;
}

/** Rows of the model batch one example takes. */
export const rowsPerExample = (set: Pick<EncodedSet, "pairs">) => (set.pairs ? 2 : 1);

/** Token ids of each text (empty texts are an error: the head needs a last token). */
export function tokenizeTexts(tokenizer: Tokenizer, texts: readonly string[]): number[][] {
  return texts.map((text, i) => {
    const ids = tokenizer.encode(text);
    if (ids.length === 0) throw new Error(`example ${i} tokenizes to nothing: ${JSON.stringify(text)}`);
    return ids;
  });
}

/**
 * Right-pads token lists into a batchable set, keeping the last T tokens of longer texts. `pairs`: the
 * lists are pairs in a row (first, second, first, second, …), one example each.
 */
export function padSet(ids: readonly number[][], T: number, pairs = false): EncodedSet {
  if (pairs && ids.length % 2 !== 0) throw new Error(`padSet: ${ids.length} texts do not make pairs`);
  const tokens = new Int32Array(ids.length * T);
  const lengths = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const row = ids[i].length > T ? ids[i].slice(ids[i].length - T) : ids[i];
    tokens.set(row, i * T);
    lengths[i] = row.length;
  }
  return { n: pairs ? ids.length / 2 : ids.length, T, tokens, lengths, ...(pairs ? { pairs } : {}) };
}

/** The rows of the examples `indices` of a set, in that order (both rows of each pair). */
function rows(set: EncodedSet, indices: readonly number[]): { tokens: Int32Array; lengths: Int32Array } {
  const per = rowsPerExample(set);
  const rowIds = indices.flatMap((i) => (per === 2 ? [2 * i, 2 * i + 1] : [i]));
  const tokens = new Int32Array(rowIds.length * set.T);
  const lengths = new Int32Array(rowIds.length);
  rowIds.forEach((row, i) => {
    tokens.set(set.tokens.subarray(row * set.T, (row + 1) * set.T), i * set.T);
    lengths[i] = set.lengths[row];
  });
  return { tokens, lengths };
}

/** The examples `indices` of a set as a set of their own (a bootstrap fold). */
export function selectExamples(set: EncodedSet, indices: readonly number[]): EncodedSet {
  return { ...rows(set, indices), n: indices.length, T: set.T, ...(set.pairs ? { pairs: true } : {}) };
}

/** The head that reads a set: the 2-class head, or the scalar reward head on a pair's two rows. */
export const headFor = (set: Pick<EncodedSet, "pairs">) => (set.pairs ? "reward" : "cls");

/** Finetuning's schedule: warmup over `warmupFraction` of the steps, then cosine decay to zero. */
export function finetuneLr(step: number, total: number, lr: number, warmupFraction: number): number {
  return learningRateAt(step, total, lr, Math.max(1, Math.round(warmupFraction * total)), 0);
}

export interface FinetuneResult {
  curve: CurvePoint[];
  final: Reading;
  selected: Reading;
  oracle: Reading;
  /** p(class 1) of the FINAL model on each named prediction set (e.g. train2, test). */
  predictions: Record<string, number[]>;
  /**
   * p(class 1) on test at the `selected` point: what its intervals are read from (the paired bootstrap of
   * the selected PGR). Absent in roles stored before it was kept.
   */
  selectedTest?: number[];
  steps: number;
  /**
   * Examples per micro-batch: the batch size, or less where gradients were accumulated (planMicroBatch);
   * absent in results stored before it was recorded.
   */
  microBatch?: number;
  seconds: number;
  /** Whatever `afterTraining` returned (e.g. probe accuracies of the final model's features). */
  extra?: unknown;
}

export interface FinetuneInput {
  gpu: Gpu;
  config: GptConfig;
  /** Starting parameters (the pretrained model; its class head is reset to zero). */
  params: Float32Array;
  train: EncodedSet;
  /** p(class 1) per training example. */
  trainTargets: readonly number[];
  validation: EncodedSet;
  /** Hard labels the role may select on (GT, or the supervisor's hard labels for a student). */
  validationLabels: readonly number[];
  test: EncodedSet;
  testLabels: readonly number[];
  /** Sets to predict with the final model. */
  predict?: Record<string, EncodedSet>;
  hyper: FinetuneHyper;
  /** Examples per micro-batch; default: the most that fit the adapter, up to the batch (planMicroBatch). */
  microBatch?: number;
  signal?: AbortSignal;
  /** Called after every step (cheap; no GPU read). */
  onStep?: (step: number, total: number) => void;
  onEval?: (point: CurvePoint) => void;
  /** Runs on the final model (its forward-only evaluator) before it is destroyed (features for probes, …). */
  afterTraining?: (model: GptModel) => Promise<unknown>;
}

/** The heads (class and reward) start at zero for every role, whatever the checkpoint holds. */
export function withZeroHead(params: Float32Array, layout: ParamLayout): Float32Array {
  const copy = params.slice();
  for (const name of HEAD_PARAMS) {
    const spec = layout.byName.get(name)!;
    copy.fill(0, spec.offset, spec.offset + spec.size);
  }
  return copy;
}

/**
 * Writes a logistic probe p = σ(w·x + b) into the head of a flat parameter buffer. The 2-class head gets
 * it split evenly (class 1 = +w/2, +b/2; class 0 = −w/2, −b/2) so that logit1 − logit0 = w·x + b. The
 * reward head gets w (r = w·h): a pair's p(second preferred) = σ(w·(h_second − h_first)), the probe of
 * an antisymmetric fit on feature differences, whose bias is 0.
 */
export function writeProbeHead(
  params: Float32Array,
  layout: ParamLayout,
  probe: Pick<LogisticProbe, "weights" | "bias">,
  head: "cls" | "reward" = "cls",
): void {
  const weight = layout.byName.get(head === "cls" ? "cls.weight" : "reward.weight")!;
  const C = weight.shape[0];
  if (probe.weights.length !== C) {
    throw new Error(
      `probe head: the probe has ${probe.weights.length} weights, the head reads ${C} features`,
    );
  }
  if (head === "reward") {
    for (let c = 0; c < C; c++) params[weight.offset + c] = probe.weights[c];
    return;
  }
  const bias = layout.byName.get("cls.bias")!;
  for (let c = 0; c < C; c++) {
    params[weight.offset + c * NUM_CLASSES] = -probe.weights[c] / 2;
    params[weight.offset + c * NUM_CLASSES + 1] = probe.weights[c] / 2;
  }
  params[bias.offset] = -probe.bias / 2;
  params[bias.offset + 1] = probe.bias / 2;
}

/**
 * Loads the starting parameters into a model built for finetuning and applies the recipe of `hyper`:
 * the class head at zero, or (headInit probe, LP-FT) a logistic probe fitted to the training targets on
 * the features the head reads; the embeddings frozen (wte is also the tied LM head, which the class
 * head never uses); weight decay anchored at the starting values, the head included.
 */
export async function prepareFinetune(
  model: GptModel,
  params: Float32Array,
  train: EncodedSet,
  trainTargets: readonly number[],
  hyper: FinetuneHyper,
  evaluator: GptModel = model,
): Promise<void> {
  const start = withZeroHead(params, model.layout);
  model.loadParams(start);
  if (hyper.headInit === "probe") {
    // The head reads the final LayerNorm's output at the last token: the last feature layer.
    const features = (await featuresOf(evaluator, train))[model.cfg.layers + 1];
    const probe = trainLogisticProbe(features, [...trainTargets], { antisymmetric: train.pairs });
    writeProbeHead(start, model.layout, probe, headFor(train));
    model.loadParams(start);
  }
  model.freeze(hyper.embeddings === "frozen" ? EMBEDDING_PARAMS : []);
  model.anchorDecay(hyper.decayTo === "pretrained");
}

/**
 * p(class 1) for every example of a set with the model's current parameters; for a pairwise set
 * p(second preferred) = σ(r_second − r_first) (Bradley–Terry).
 */
export async function predictSet(model: GptModel, set: EncodedSet): Promise<number[]> {
  const head = headFor(set);
  const batches = examplesPerBatch(model, set);
  // Every batch's read is queued behind its forward pass, then one wait: a read-back waits a fixed
  // poll interval (≥ 10 ms on llvmpipe) however small, and an evaluation has dozens of batches.
  const reads = batches.map((indices) => {
    model.setBatch(rows(set, indices));
    model.predictStep(head);
    return head === "reward" ? model.readRewards() : model.readClassLogits();
  });
  const out: number[] = [];
  (await Promise.all(reads)).forEach((scores, b) => {
    for (let i = 0; i < batches[b].length; i++) {
      const d = scores[i * 2 + 1] - scores[i * 2];
      out.push(1 / (1 + Math.exp(-d)));
    }
  });
  return out;
}

/**
 * `read` on every named set, all of them queued before one wait: each wait for a read-back costs a poll
 * interval (≥ 10 ms on llvmpipe) however small.
 */
async function eachSet<R>(
  sets: Record<string, EncodedSet>,
  read: (set: EncodedSet) => Promise<R>,
): Promise<Record<string, R>> {
  const names = Object.keys(sets);
  const results = await Promise.all(names.map((name) => read(sets[name])));
  return Object.fromEntries(names.map((name, i) => [name, results[i]]));
}

/** The set's examples in consecutive batches that fill the model's rows. */
function examplesPerBatch(model: GptModel, set: EncodedSet): number[][] {
  const per = Math.floor(model.B / rowsPerExample(set));
  if (per < 1) throw new Error(`a batch of ${model.B} row(s) cannot hold a pair`);
  const all = [...Array(set.n).keys()];
  const batches: number[][] = [];
  for (let start = 0; start < set.n; start += per) batches.push(all.slice(start, start + per));
  return batches;
}

/**
 * Last-token features of every layer (L + 2 arrays of n rows) for a set. For a pairwise set, each
 * example's features are the difference second − first: what a linear reward head compares.
 */
export async function featuresOf(model: GptModel, set: EncodedSet): Promise<Float32Array[][]> {
  const C = model.cfg.width;
  const layers = model.cfg.layers + 2;
  const out: Float32Array[][] = Array.from({ length: layers }, () => []);
  const batches = examplesPerBatch(model, set);
  // One wait for every batch's read (as predictSet).
  const reads = batches.map((indices) => {
    model.setBatch(rows(set, indices));
    model.featuresStep();
    return model.readFeatures();
  });
  for (const [b, features] of (await Promise.all(reads)).entries()) {
    const indices = batches[b];
    for (let l = 0; l < layers; l++) {
      const row = (r: number) => features[l].subarray(r * C, (r + 1) * C);
      for (let i = 0; i < indices.length; i++) {
        if (!set.pairs) {
          out[l].push(row(i).slice());
          continue;
        }
        const first = row(2 * i);
        out[l].push(row(2 * i + 1).map((x, c) => x - first[c]));
      }
    }
  }
  return out;
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? new Error("aborted");
}

/**
 * The rows of every training step: `epochs` passes over the n examples, each a fresh seeded permutation,
 * cut into full batches of min(batchSize, n) rows; the rows left at the end of one pass open the next
 * (the last pass's remainder is dropped). No step sees a partial batch, so the aux-confidence threshold,
 * a quantile over the batch, never comes from a handful of examples.
 */
export function batchPlan(
  n: number,
  hyper: Pick<FinetuneHyper, "epochs" | "batchSize">,
  random: () => number,
) {
  if (n < 1) throw new Error("finetune: no training examples");
  const B = Math.min(hyper.batchSize, n);
  const stream: number[] = [];
  for (let epoch = 0; epoch < hyper.epochs; epoch++) stream.push(...shuffled([...Array(n).keys()], random));
  const batches: number[][] = [];
  for (let start = 0; start + B <= stream.length; start += B) batches.push(stream.slice(start, start + B));
  return batches;
}

/** Steps of a finetuning run: full batches over `epochs` passes (batchPlan). */
export function totalSteps(n: number, hyper: Pick<FinetuneHyper, "epochs" | "batchSize">): number {
  return Math.floor((hyper.epochs * n) / Math.min(hyper.batchSize, n));
}

/**
 * The model a finetune trains (micro-batches where the batch does not fit: planMicroBatch) and the one
 * it evaluates with: the probe head's features, validation and test at every curve point, predictions
 * and the probes after training run on a forward-only evaluator of more rows on the same parameter
 * buffers (GptModel.evaluatorFor), or on the model itself when no more rows fit.
 */
function finetuneModels(input: FinetuneInput, T: number, sets: EncodedSet[]) {
  const { gpu, config, hyper } = input;
  const per = rowsPerExample(sets[0]);
  const limits = adapterMemoryLimits(gpu);
  const B = hyper.batchSize;
  const micro = input.microBatch ??
    planMicroBatch(config, { batchSize: B, seqLen: T, rowsPerExample: per }, limits).microBatch;
  if (!(Number.isInteger(micro) && micro >= 1 && micro <= B)) {
    throw new Error(`finetune: microBatch ${micro} must be an integer in 1…${B} (the batch size)`);
  }
  const model = new GptModel(gpu, config, input.params, { batchSize: micro * per, seqLen: T });
  const evaluator = model.evaluatorFor({ examples: Math.max(...sets.map((s) => s.n)), rowsPerExample: per });
  return { model, evaluator, micro };
}

/**
 * The selected point (best validation accuracy, with its test predictions) and the oracle (best test
 * accuracy) of a curve, as its points come. Ties keep the earlier point (fewer steps on the same score).
 */
function checkpointPicks() {
  let selected: Reading | undefined;
  let selectedTest: number[] = [];
  let oracle: Reading | undefined;
  return {
    see(reading: Reading, testPredictions: number[]) {
      if (!selected || reading.valAcc > selected.valAcc) {
        selected = reading;
        selectedTest = testPredictions;
      }
      if (!oracle || reading.testAcc > oracle.testAcc) oracle = reading;
    },
    chosen: () => ({ selected: selected!, selectedTest, oracle: oracle! }),
  };
}

/** Full finetuning of the trunk and the class head on soft targets. */
export async function finetuneClassifier(input: FinetuneInput): Promise<FinetuneResult> {
  const { config, train, trainTargets, hyper } = input;
  if (trainTargets.length !== train.n) {
    throw new Error(`finetune: ${train.n} training examples but ${trainTargets.length} targets`);
  }
  if (input.validationLabels.length !== input.validation.n || input.testLabels.length !== input.test.n) {
    throw new Error("finetune: validation/test labels do not match their sets");
  }
  if (!(hyper.epochs >= 1 && hyper.batchSize >= 1 && hyper.lr > 0)) {
    throw new Error(`finetune: bad hyperparameters ${JSON.stringify(hyper)}`);
  }
  const started = performance.now();
  const T = Math.max(
    train.T,
    input.validation.T,
    input.test.T,
    ...Object.values(input.predict ?? {}).map((s) => s.T),
  );
  if (T > config.contextLength) {
    throw new Error(`finetune: texts need ${T} tokens, context is ${config.contextLength}`);
  }
  const same = (s: EncodedSet) => (s.T === T ? s : repad(s, T));
  const trainSet = same(train);
  const validation = same(input.validation);
  const test = same(input.test);
  const predictSets = Object.fromEntries(Object.entries(input.predict ?? {}).map(([k, s]) => [k, same(s)]));

  const head = headFor(trainSet);
  const { model, evaluator, micro } = finetuneModels(input, T, [
    trainSet,
    validation,
    test,
    ...Object.values(predictSets),
  ]);
  try {
    await prepareFinetune(model, input.params, trainSet, trainTargets, hyper, evaluator);
    model.setOptimizer({ ...ADAMW_FINETUNE, lr: hyper.lr, weightDecay: hyper.weightDecay });
    const evalEvery = Math.max(1, hyper.evalEvery);
    const curve: CurvePoint[] = [];
    const picks = checkpointPicks();
    let lastLoss = NaN;
    const evaluate = async (step: number, epoch: number, lr: number, alpha: number) => {
      // The loss and both sets' predictions share one wait (eachSet says why): three waits per
      // checkpoint were a tenth of a small finetune's time.
      const [stats, validationP, testP] = await Promise.all([
        model.readStats(),
        predictSet(evaluator, validation),
        predictSet(evaluator, test),
      ]);
      lastLoss = stats.loss;
      const valAcc = accuracy(hardLabels(validationP), input.validationLabels);
      const testAcc = accuracy(hardLabels(testP), input.testLabels);
      const point: CurvePoint = { step, epoch, lr, trainLoss: lastLoss, valAcc, testAcc, alpha };
      curve.push(point);
      input.onEval?.(point);
      const reading = { step, valAcc, testAcc };
      picks.see(reading, testP);
      return reading;
    };

    const targets = new Float32Array(trainSet.n * 2);
    trainTargets.forEach((p, i) => {
      if (!(p >= 0 && p <= 1)) throw new Error(`finetune: target ${i} is ${p}, not a probability`);
      targets[i * 2] = 1 - p;
      targets[i * 2 + 1] = p;
    });
    const batches = batchPlan(trainSet.n, hyper, seededRandom(hyper.seed, "finetune-order"));
    const total = batches.length;
    let lr = 0;
    let alpha = 0;
    let final: Reading | undefined;
    const load = (indices: readonly number[]) => {
      const soft = new Float32Array(indices.length * 2);
      indices.forEach((row, i) => soft.set(targets.subarray(row * 2, row * 2 + 2), i * 2));
      const batch = rows(trainSet, indices);
      model.setBatch({ ...batch, ...(head === "reward" ? { pairTargets: soft } : { classTargets: soft }) });
    };
    for (let step = 0; step < total; step++) {
      checkAborted(input.signal);
      const indices = batches[step];
      lr = finetuneLr(step, total, hyper.lr, hyper.warmupFraction);
      alpha = hyper.alphaMax ? auxconfAlpha(step, total, hyper.alphaMax) : 0;
      const aux = hyper.alphaMax ? { auxAlpha: alpha } : {};
      if (indices.length <= micro) {
        load(indices);
        model.trainStep(head, { lr, ...aux });
      } else {
        for (let start = 0; start < indices.length; start += micro) {
          const part = indices.slice(start, start + micro);
          load(part);
          model.accumulateStep(head, { share: part.length / indices.length, ...aux });
        }
        model.applyAccumulated({ lr });
      }
      input.onStep?.(step + 1, total);
      if ((step + 1) % evalEvery === 0 || step + 1 === total) {
        const reading = await evaluate(step + 1, ((step + 1) * indices.length) / trainSet.n, lr, alpha);
        if (step + 1 === total) final = reading;
      }
    }
    final ??= await evaluate(total, hyper.epochs, lr, alpha);

    const predictions = await eachSet(predictSets, (set) => predictSet(evaluator, set));
    const extra = input.afterTraining ? await input.afterTraining(evaluator) : undefined;
    return {
      curve,
      final,
      ...picks.chosen(),
      predictions,
      steps: total,
      microBatch: micro,
      seconds: (performance.now() - started) / 1000,
      extra,
    };
  } finally {
    if (evaluator !== model) evaluator.destroy();
    model.destroy();
  }
}

/** The same rows padded to a longer T. */
export function repad(set: EncodedSet, T: number): EncodedSet {
  if (T < set.T) throw new Error(`repad: cannot shrink T from ${set.T} to ${T}`);
  const rowCount = set.lengths.length;
  const tokens = new Int32Array(rowCount * T);
  for (let i = 0; i < rowCount; i++) tokens.set(set.tokens.subarray(i * set.T, (i + 1) * set.T), i * T);
  return { ...set, T, tokens, lengths: set.lengths.slice() };
}

export interface ProbeInput {
  gpu: Gpu;
  config: GptConfig;
  params: Float32Array;
  train: EncodedSet;
  trainTargets: readonly number[];
  validation: EncodedSet;
  validationLabels: readonly number[];
  test: EncodedSet;
  testLabels: readonly number[];
  predict?: Record<string, EncodedSet>;
  /** Feature layer: 0 = embeddings, l = after block l, L + 1 = after the final LayerNorm (default). */
  layer?: number;
  batchSize?: number;
  signal?: AbortSignal;
}

/** Frozen features of one layer + a converged logistic regression on the soft targets. */
export async function probeClassifier(input: ProbeInput): Promise<FinetuneResult> {
  const started = performance.now();
  const layer = input.layer ?? input.config.layers + 1;
  if (!(layer >= 0 && layer <= input.config.layers + 1)) {
    throw new Error(`probe layer ${layer} is outside 0…${input.config.layers + 1}`);
  }
  const sets = { train: input.train, validation: input.validation, test: input.test, ...input.predict };
  const T = Math.max(...Object.values(sets).map((s) => s.T));
  const per = rowsPerExample(input.train);
  const limits = adapterMemoryLimits(input.gpu);
  const batchSize = input.batchSize ?? planEvalRows(
    input.config,
    {
      seqLen: T,
      rowsPerExample: per,
      trainRows: per,
      examples: Math.max(...Object.values(sets).map((s) => s.n)),
    },
    limits,
    modelMemory(input.config, {
      batchSize: per,
      seqLen: T,
      forwardOnly: true,
      maxBufferSize: limits.maxBufferSize,
    }),
  );
  const model = new GptModel(input.gpu, input.config, input.params, {
    batchSize,
    seqLen: T,
    forwardOnly: true,
  });
  try {
    checkAborted(input.signal);
    const features = await eachSet(
      sets,
      async (set) => (await featuresOf(model, set.T === T ? set : repad(set, T)))[layer],
    );
    const probe = trainLogisticProbe(features.train, [...input.trainTargets], {
      antisymmetric: input.train.pairs,
    });
    const valAcc = probe.accuracy(features.validation, [...input.validationLabels]);
    const testAcc = probe.accuracy(features.test, [...input.testLabels]);
    const reading = { step: 0, valAcc, testAcc };
    const predictions: Record<string, number[]> = {};
    for (const name of Object.keys(input.predict ?? {})) {
      predictions[name] = probe.predictProba(features[name]);
    }
    return {
      curve: [{ step: 0, epoch: 0, lr: 0, trainLoss: NaN, valAcc, testAcc, alpha: 0 }],
      final: reading,
      selected: reading,
      oracle: reading,
      predictions,
      // One reading: the selected point is the final one.
      selectedTest: predictions.test ?? probe.predictProba(features.test),
      steps: 0,
      // Nothing trains: the batch the features were read in.
      microBatch: input.batchSize ?? 64,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    model.destroy();
  }
}

export interface LmFinetuneInput {
  gpu: Gpu;
  config: GptConfig;
  params: Float32Array;
  /** Unlabeled texts (token ids); each is one row, cut to the context length. */
  texts: number[][];
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
  signal?: AbortSignal;
  onStep?: (step: number, total: number) => void;
}

/** Generative finetuning: next-token loss on the task's unlabeled texts. Returns the new parameters. */
export async function finetuneLm(
  input: LmFinetuneInput,
): Promise<{ params: Float32Array; loss: number; steps: number }> {
  const withNext = input.texts.filter((t) => t.length >= 2);
  if (withNext.length === 0) throw new Error("generative finetuning: no text has two or more tokens");
  const T = Math.min(input.config.contextLength, Math.max(...withNext.map((t) => t.length)));
  const set = padSet(withNext, T);
  const B = input.batchSize;
  const model = new GptModel(input.gpu, input.config, input.params, { batchSize: B, seqLen: T });
  try {
    model.setOptimizer({ ...ADAMW_FINETUNE, lr: input.lr });
    const batches = batchPlan(set.n, input, seededRandom(input.seed, "lm-finetune-order"));
    const total = batches.length;
    for (let step = 0; step < total; step++) {
      checkAborted(input.signal);
      model.setBatch(rows(set, batches[step]));
      model.trainStep("lm", { lr: finetuneLr(step, total, input.lr, 0.1) });
      input.onStep?.(step + 1, total);
    }
    const loss = (await model.readStats()).loss;
    return { params: await model.readParams(), loss, steps: total };
  } finally {
    model.destroy();
  }
}
