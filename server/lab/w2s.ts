/**
 * One weak→strong experiment, end to end, in the pipeline's numbered steps:
 *   1 weak       size A finetuned on train1 ground truth; its soft labels on train2, validation and test;
 *   2 bootstrap  (bootstrap method) each size between A and B learns the previous labels and relabels train2;
 *   3 generative (generative method) size B LM-finetuned on the task's unlabeled texts first;
 *   4 ceiling    size B trained on train2 ground truth;
 *   5 student    size B trained on train2 weak labels with the chosen method (methods.ts);
 *   6 readings   test accuracies, PGR, agreement (all / supervisor right / supervisor wrong) and
 *                intervals at the final checkpoint (the headline), the validation-selected and oracle
 *                readings beside it, chance warnings, and optionally the random-init control, the
 *                prompting baselines and per-layer probe saliency.
 * Each role is trained and cached in roles.ts, so experiments that share one — and a resumed job — do not
 * train it again.
 *
 * The headline is every model's FINAL checkpoint, as in the paper and the openai code; the next role's
 * labels come from it too. Validation is scored against the labels each role may see (ground truth for
 * weak and ceiling; the supervisor's hard labels for a student or a bootstrap step), so a student's
 * "selected" reading is its agreement peak with the supervisor: reported, never the headline. Test
 * accuracy along the curve feeds only the readings and the oracle.
 * Student modes: "finetune" (the whole model) or "probe" (frozen features of the last layer + converged
 * logistic regression); the ceiling uses the same mode as the student, the weak model is always finetuned.
 * Supervisor "given": step 1 trains nothing: the task's own weak labels (`weak_label`, P(label 1)) stand
 * in for the weak model's predictions, on all of train (train1 + train2, openai's whole weak_labels set)
 * for the student and the ceiling alike, and their argmax accuracy on test is the weak accuracy of PGR.
 */

import { type GptConfig, initParameters } from "../../kernels/config.ts";
import { getGpu, type Gpu } from "../../kernels/device.ts";
import { GptModel } from "../../kernels/gpt.ts";
import { seededRandom, shuffled } from "../../kernels/random.ts";
import { optionConflicts, type SupervisorSource } from "../contract/experiments.ts";
import { bootstrapChainError, pairError, sizesBetween } from "../contract/ladder-rule.ts";
import type { MethodName, StudentMode } from "../contract/methods.ts";
import type {
  CurvePoint,
  ExperimentResult,
  FinetuneRecipe,
  LayerProbe,
  PromptingReport,
  ReadingName,
  Role,
  RoleRun,
  SelectedIntervals,
  StepReadings,
} from "../contract/results.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import type { World } from "../corpus/world.ts";
import {
  capSplits,
  givenLabelSplits,
  type ImportedTaskLookup,
  isWorldTask,
  loadTaskSplits,
} from "../tasks/load.ts";
import { type TaskExample, taskFormat, type TaskSplits } from "../tasks/types.ts";
import { CACHE_VERSION, type ExperimentCache, hashNumbers } from "./cache.ts";
import { featuresOf, finetuneLm, padSet, tokenizeTexts, totalSteps } from "./finetune.ts";
import {
  agreement,
  chanceCheck,
  gapNoise,
  gapTooSmall,
  hardLabels,
  pgr,
  pgrBootstrap,
  shareInterval,
} from "./metrics.ts";
import { type MethodSpec, methodSpec } from "./methods.ts";
import { leakageError, type LoadedModel, type ModelSource } from "./model-source.ts";
import { promptFormatFor, promptingBaseline } from "./prompting.ts";
import {
  type RoleContext,
  roleHyper,
  type RoleTrainer,
  type Sets,
  type SplitLabels,
  type SplitName,
  type TrainedRole,
  trainRole,
} from "./roles.ts";
import { probeLayers } from "./saliency.ts";

export interface ExperimentOptions extends FinetuneRecipe {
  task: string;
  /** The weak size; "given" (GIVEN_SUPERVISOR) with supervisor "given". */
  weak: string;
  strong: string;
  method: MethodName;
  /** Seed of the task split and of the training order. */
  seed: number;
  /** "given": the task's `weak_label`s supervise the student instead of a weak model (default "trained"). */
  supervisor?: SupervisorSource;
  mode?: StudentMode;
  /** Base loss of the generative method. */
  generativeBase?: "naive" | "auxconf";
  /** Intermediate sizes of the bootstrap method (default: every ladder size between weak and strong). */
  bootstrapSizes?: string[];
  epochs?: number;
  lr?: number;
  batchSize?: number;
  alphaMax?: number;
  /** Epochs of LM finetuning for the generative method. */
  lmEpochs?: number;
  /** Per-layer linear-probe saliency. */
  probes?: boolean;
  /** Zero-shot and k-shot prompting baselines of the pretrained strong model (k demonstrations). */
  promptingShots?: number;
  /** Use at most this many examples per split (quick runs, tests). */
  maxExamples?: number;
  /**
   * "validation": every reading is taken on the validation split instead of test, and the test split is
   * never loaded — for choosing settings (a recipe study) without looking at test. Default "test".
   */
  evaluateOn?: "test" | "validation";
  /**
   * The random-init control: the strong architecture never pretrained, trained on train2 ground truth
   * like the ceiling, so how much of the ceiling comes from pretraining is visible.
   */
  control?: boolean;
  /**
   * Whether the ladder saw the task's test items in pretraining (default false: kept out). Checked
   * against what each size was pretrained on; a ladder that cannot honour it is refused.
   */
  leakage?: boolean;
}

export interface Progress {
  step: number;
  total: number;
  stage: string;
  /** What step and total count: "steps" (training steps of one experiment), "experiments" (a sweep's). */
  unit?: string;
}

export interface ExperimentDeps {
  models: ModelSource;
  /** Stands in for the training of each role (tests of the pipeline's wiring). */
  trainer?: RoleTrainer;
  gpu?: Gpu;
  cache?: ExperimentCache;
  importedTasks?: ImportedTaskLookup;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** The experiment starts (each of a sweep's in turn), before any of its roles is reported. */
  onStart?: (opts: ExperimentOptions) => void;
  /** A role finished (trained or read from the cache). */
  onRun?: (run: RoleRun) => void | Promise<void>;
  /** Live curve point of the role being trained. */
  onEval?: (role: Role, size: string, point: CurvePoint) => void;
}

/** The task as every step reads it: examples, token ids per model, labels and sizes. */
interface TaskData {
  splits: TaskSplits;
  setsFor: (config: GptConfig) => Sets;
  gt: SplitLabels;
  n: Record<SplitName, number>;
  /**
   * The generative method's LM data: every train text of a classification task; of a pairwise task the
   * preferred texts of train1 (the paper's "preferred completions", from the split whose ground truth
   * the weak model already learns from, so nothing about train2's or test's preferences is seen).
   */
  unlabeled: number[][];
}

/** The labels the next model learns from: soft labels on train2, hard labels on validation. */
interface Supervision {
  labels: number[];
  validationLabels: number[];
}

/** Where the strong model starts: its checkpoint, or its parameters after LM finetuning. */
interface StrongStart {
  model: LoadedModel;
  params: Float32Array;
  hash: string;
}

/** Planned training steps of each stage (cached stages jump ahead; probe and prompt stages count 1 each). */
interface ProgressPlan {
  weak: number;
  generative: number;
  chain: number[];
  ceiling: number;
  student: number;
  control: number;
  extras: number;
  total: number;
}

const DEFAULT_LM_EPOCHS = 2;

export async function runExperiment(
  opts: ExperimentOptions,
  deps: ExperimentDeps,
): Promise<ExperimentResult> {
  const started = performance.now();
  const cacheBefore = { hits: deps.cache?.hits ?? 0, misses: deps.cache?.misses ?? 0 };
  deps.onStart?.(opts);
  const prepared = await prepareExperiment(opts, deps);
  const { method, mode, chain, world, gpu, models, data, lmEpochs, plan, runs, ctx } = prepared;
  // 1. The weak supervisor on train1 ground truth (or the task's given labels); its soft labels on train2,
  // validation and test.
  const weak = models.weak ? await trainWeak(ctx, models.weak, plan.weak) : givenSupervisor(data);
  // 2. Bootstrap: each intermediate size relabels train2 for the next.
  const supervisors = [opts.weak, ...chain];
  const supervision = await bootstrapChain(ctx, supervisors, models.chain, weakSupervision(weak), plan);
  // 3. Generative finetuning of the strong model on the unlabeled train texts (student and ceiling).
  const strong = method.generative
    ? await generativeFinetune(ctx, opts.strong, models.strong, data.unlabeled, lmEpochs, plan.generative)
    : { model: models.strong, params: models.strong.params, hash: models.strong.hash };
  // 4. The ceiling: the strong model on train2 ground truth.
  const ceiling = await trainCeiling(ctx, strong, mode, method, plan.ceiling);
  // 5. The student: the strong model on the (last) supervisor's soft labels.
  const supervisor = chain.at(-1) ?? (models.weak ? opts.weak : "the task's given weak_label");
  const student = await trainStudent(ctx, strong, supervision, supervisor, mode, method, plan.student);
  // The control: the same architecture from random init on train2 ground truth (never pretrained).
  const control = opts.control
    ? await trainControl(ctx, models.strong, mode, opts.seed, plan.control)
    : undefined;
  // 6. Readings, agreement and intervals; the prompting baselines and the probes when asked for.
  let prompting: PromptingReport | undefined;
  if (opts.promptingShots !== undefined) {
    const input = { world, strongModel: models.strong, tokenizer: models.strong.tokenizer, data, weak };
    prompting = await promptingReport(gpu, opts, opts.promptingShots, input);
    ctx.advance(1, "prompting");
  }
  let probes: LayerProbe[] | undefined;
  if (opts.probes) {
    probes = await probeReport(gpu, models.strong, data, { weak, ceiling, student });
    ctx.advance(1, "probes");
  }
  return readResult({
    opts,
    mode,
    data,
    trained: { weak, ceiling, student },
    control,
    alphaMax: method.loss === "auxconf" ? roleHyper(opts.strong, ctx.experiment, 0).alphaMax : null,
    strongKnowledge: models.strong.knowledge ?? null,
    chain,
    prompting,
    probes,
    runs,
    // This experiment's lookups: the cache's counters run on over a sweep.
    cache: {
      hits: (deps.cache?.hits ?? 0) - cacheBefore.hits,
      misses: (deps.cache?.misses ?? 0) - cacheBefore.misses,
    },
    started,
  });
}

/** What every step shares: the checked sizes, the task, the models, the progress plan and the role context. */
/** Refuses options the chosen method or student mode would ignore (contract/experiments.ts). */
export function checkExperimentOptions(opts: ExperimentOptions): void {
  const conflicts = optionConflicts({ ...opts, methods: [opts.method], studentMode: opts.mode });
  if (conflicts.length > 0) throw new Error(conflicts.map((c) => `${c.field}: ${c.message}`).join("; "));
}

async function prepareExperiment(opts: ExperimentOptions, deps: ExperimentDeps) {
  checkExperimentOptions(opts);
  const given = opts.supervisor === "given";
  const refs = [...given ? [] : [opts.weak], opts.strong, ...opts.bootstrapSizes ?? []];
  const refused = deps.models.refusal?.({ task: opts.task, leakage: opts.leakage ?? false, refs });
  if (refused) throw new Error(refused);
  const method = methodSpec(opts.method, opts.generativeBase);
  const mode = opts.mode ?? "finetune";
  const chain = bootstrapSizesOf(opts, method, deps.models.sizes);
  const world = isWorldTask(opts.task) ? await deps.models.world?.() : undefined;
  const gpu = deps.gpu ?? await getGpu();
  const taskSplits = await loadTaskSplits(opts.task, opts.seed, deps.importedTasks, world);
  const loaded = capSplits(
    given ? givenLabelSplits(opts.task, taskSplits) : taskSplits,
    opts.maxExamples,
    opts.seed,
  );
  const splits = opts.evaluateOn === "validation"
    ? { ...loaded, test: loaded.validation, extra: undefined }
    : loaded;
  // The task's format picks its finetuning defaults (ladder.ts) for every role and the progress plan.
  const experiment = { ...opts, format: taskFormat(splits.test) };
  if (opts.promptingShots !== undefined && experiment.format === "pairwise") {
    throw new Error(
      `${opts.task} is a pairwise task: the prompting baselines read a class word, which a comparison ` +
        `does not have; leave out promptingShots (--prompting)`,
    );
  }
  await checkLeakage(deps.models, opts, [...given ? [] : [opts.weak], ...chain, opts.strong]);
  const models = await loadModels(deps.models, opts, chain);
  const data = encodeTask(models.strong.tokenizer, splits);
  const lmEpochs = opts.lmEpochs ?? DEFAULT_LM_EPOCHS;
  const plan = planProgress(experiment, method, mode, chain, data, lmEpochs);
  const runs: RoleRun[] = [];
  const ctx: RoleContext = {
    trainer: deps.trainer,
    gpu,
    experiment,
    setsFor: data.setsFor,
    gt: data.gt,
    cache: deps.cache,
    signal: deps.signal,
    ...progressCounter(plan.total, deps.onProgress),
    onEval: deps.onEval,
    onRun: async (run) => {
      runs.push(run);
      await deps.onRun?.(run);
    },
  };
  return { method, mode, chain, world, gpu, models, data, lmEpochs, plan, runs, ctx };
}

/** Refuses sizes whose pretraining corpus does not match the experiment's leakage setting (model-source.ts). */
async function checkLeakage(models: ModelSource, opts: ExperimentOptions, sizes: string[]): Promise<void> {
  if (!models.corpus) return;
  for (const size of sizes) {
    const error = leakageError(await models.corpus(size), {
      leakage: opts.leakage ?? false,
      seed: opts.seed,
      task: opts.task,
      size,
    });
    if (error) throw new Error(error);
  }
}

/** The bootstrap method's intermediate sizes (none for other methods), after checking the pair and chain. */
function bootstrapSizesOf(opts: ExperimentOptions, method: MethodSpec, sizes: readonly string[]): string[] {
  // Given labels have no weak size to order against the strong one (and no bootstrap: optionConflicts).
  if (opts.supervisor === "given") return [];
  const badPair = pairError(sizes, opts.weak, opts.strong);
  if (badPair) throw new Error(badPair);
  if (!method.bootstrap) return [];
  const chain = opts.bootstrapSizes ?? sizesBetween(sizes, opts.weak, opts.strong);
  const badChain = bootstrapChainError(sizes, opts.weak, opts.strong, chain);
  if (badChain) throw new Error(badChain);
  return chain;
}

/** The weak (none with given labels), strong and intermediate models, which must share one tokenizer. */
async function loadModels(
  source: ModelSource,
  opts: ExperimentOptions,
  chain: string[],
): Promise<{ weak?: LoadedModel; strong: LoadedModel; chain: LoadedModel[] }> {
  const weak = opts.supervisor === "given" ? undefined : await source.load(opts.weak);
  const strong = await source.load(opts.strong);
  const chainModels = await Promise.all(chain.map((s) => source.load(s)));
  for (const m of [...weak ? [weak] : [], ...chainModels]) {
    if (m.tokenizer.id !== strong.tokenizer.id) {
      throw new Error(`sizes ${m.size} and ${strong.size} use different tokenizers`);
    }
  }
  return { weak, strong, chain: chainModels };
}

/**
 * Token ids of every split, padded to the longest text within a model's context length. A pairwise
 * task's example is its two texts, rows 2i and 2i + 1 of the split's set (finetune.ts).
 */
function encodeTask(tokenizer: Tokenizer, splits: TaskSplits): TaskData {
  const pairs = taskFormat(splits.train1) === "pairwise";
  const textsOf = (list: TaskExample[]) => list.flatMap((e) => (pairs ? [e.txt, e.other!] : [e.txt]));
  const ids = {
    train1: tokenizeTexts(tokenizer, textsOf(splits.train1)),
    train2: tokenizeTexts(tokenizer, textsOf(splits.train2)),
    validation: tokenizeTexts(tokenizer, textsOf(splits.validation)),
    test: tokenizeTexts(tokenizer, textsOf(splits.test)),
  };
  const longest = Math.max(...Object.values(ids).flat().map((r) => r.length));
  const setsFor = (config: GptConfig): Sets => {
    const T = Math.min(longest, config.contextLength);
    return {
      train1: padSet(ids.train1, T, pairs),
      train2: padSet(ids.train2, T, pairs),
      validation: padSet(ids.validation, T, pairs),
      test: padSet(ids.test, T, pairs),
    };
  };
  const labelsOf = (list: TaskExample[]) => list.map((e) => e.hard_label as number);
  const gt = {
    train1: labelsOf(splits.train1),
    train2: labelsOf(splits.train2),
    validation: labelsOf(splits.validation),
    test: labelsOf(splits.test),
  };
  const n = {
    train1: gt.train1.length,
    train2: gt.train2.length,
    validation: gt.validation.length,
    test: gt.test.length,
  };
  const unlabeled = pairs
    ? splits.train1.map((e, i) => ids.train1[2 * i + e.hard_label])
    : [...ids.train1, ...ids.train2];
  return { splits, setsFor, gt, n, unlabeled };
}

/** The progress plan in training steps: a trained stage counts its optimizer steps, a probed one 1. */
function planProgress(
  opts: ExperimentOptions,
  method: MethodSpec,
  mode: StudentMode,
  chain: string[],
  data: TaskData,
  lmEpochs: number,
): ProgressPlan {
  const { n } = data;
  const stepsOf = (size: string, examples: number, trained: boolean) => {
    const h = roleHyper(size, opts, 0);
    return trained ? totalSteps(examples, h) : 1;
  };
  const trunk = mode === "finetune";
  const plan = {
    weak: n.train1 > 0 ? stepsOf(opts.weak, n.train1, true) : 0,
    generative: method.generative
      ? totalSteps(data.unlabeled.length, {
        epochs: lmEpochs,
        batchSize: roleHyper(opts.strong, opts, 0).batchSize,
      })
      : 0,
    chain: chain.map((s) => 2 * stepsOf(s, Math.ceil(n.train2 / 2), true)),
    ceiling: stepsOf(opts.strong, n.train2, trunk),
    student: stepsOf(opts.strong, n.train2, trunk),
    control: opts.control ? stepsOf(opts.strong, n.train2, trunk) : 0,
    extras: (opts.probes ? 1 : 0) + (opts.promptingShots !== undefined ? 1 : 0),
  };
  const total = plan.weak + plan.generative + plan.chain.reduce((a, b) => a + b, 0) + plan.ceiling +
    plan.student + plan.control + plan.extras;
  return { ...plan, total };
}

/** Progress as steps done of the plan: `report` inside a stage, `advance` past a finished one. */
function progressCounter(total: number, onProgress?: (p: Progress) => void) {
  let done = 0;
  const report = (stage: string, step = 0) =>
    onProgress?.({ step: Math.min(total, done + step), total, stage, unit: "steps" });
  const advance = (steps: number, stage: string) => {
    done += steps;
    report(stage);
  };
  return { report, advance };
}

/** Step 1: the weak supervisor, finetuned on train1 ground truth. */
function trainWeak(ctx: RoleContext, model: LoadedModel, plannedSteps: number): Promise<TrainedRole> {
  return trainRole(ctx, {
    role: "weak",
    description: "train1 ground truth",
    model,
    train: "train1",
    targets: ctx.gt.train1,
    validationLabels: ctx.gt.validation,
    predict: ["train2", "validation", "test"],
    loss: "ce",
    mode: "finetune",
    seedSalt: 1,
    plannedSteps,
  });
}

/**
 * Step 1 with supervisor "given": the task's weak labels read as a weak model's predictions, each reading
 * their hard accuracy against ground truth (step 0: nothing was trained). Not a role: nothing is cached.
 */
function givenSupervisor(data: TaskData): TrainedRole {
  const { splits, gt } = data;
  const given = (split: SplitName) => splits[split].map((e) => e.weak_label as number);
  const accuracy = (split: SplitName) =>
    hardLabels(given(split)).filter((p, i) => p === gt[split][i]).length / gt[split].length;
  const reading = { step: 0, valAcc: accuracy("validation"), testAcc: accuracy("test") };
  return {
    curve: [],
    final: reading,
    selected: reading,
    oracle: reading,
    predictions: { train2: given("train2"), validation: given("validation"), test: given("test") },
    selectedTest: given("test"),
    steps: 0,
    seconds: 0,
    cached: false,
  };
}

/** The weak model's supervision: its soft labels on train2, its hard labels on validation. */
function weakSupervision(weak: TrainedRole): Supervision {
  return {
    labels: weak.predictions.train2,
    validationLabels: hardLabels(weak.predictions.validation) as number[],
  };
}

/**
 * Step 2: each intermediate size learns the previous labels with 2-fold cross-fitting (no model labels
 * the examples it trained on) and labels train2 for the next.
 */
async function bootstrapChain(
  ctx: RoleContext,
  supervisors: string[],
  chainModels: LoadedModel[],
  weakLabels: Supervision,
  plan: ProgressPlan,
): Promise<Supervision> {
  let { labels, validationLabels } = weakLabels;
  const n = { train2: labels.length, validation: validationLabels.length };
  const random = seededRandom(ctx.experiment.seed, "bootstrap-folds");
  const order = shuffled([...Array(n.train2).keys()], random);
  const folds = [
    order.slice(0, Math.ceil(n.train2 / 2)).sort((a, b) => a - b),
    order.slice(Math.ceil(n.train2 / 2)).sort((a, b) => a - b),
  ];
  for (let c = 0; c < chainModels.length; c++) {
    const model = chainModels[c];
    const next = labels.slice();
    const validationSum = new Array(n.validation).fill(0);
    for (let f = 0; f < 2; f++) {
      const trainIdx = folds[f];
      const otherIdx = folds[1 - f];
      const step = await trainRole(ctx, {
        role: "bootstrap",
        description: `train2 fold ${f + 1}/2, labels of ${supervisors[c]}`,
        model,
        train: "train2",
        trainIndices: trainIdx,
        targets: trainIdx.map((i) => labels[i]),
        validationLabels,
        predict: ["train2", "validation"],
        predictIndices: otherIdx,
        loss: "ce",
        mode: "finetune",
        seedSalt: 10 + c * 2 + f,
        plannedSteps: plan.chain[c] / 2,
      });
      otherIdx.forEach((i, j) => (next[i] = step.predictions.train2[j]));
      step.predictions.validation.forEach((p, i) => (validationSum[i] += p / 2));
    }
    labels = next;
    validationLabels = hardLabels(validationSum) as number[];
  }
  return { labels, validationLabels };
}

/** Step 3: the strong model LM-finetuned on every train text, cached like a role. */
async function generativeFinetune(
  ctx: RoleContext,
  size: string,
  strongModel: LoadedModel,
  unlabeled: number[][],
  lmEpochs: number,
  plannedSteps: number,
): Promise<StrongStart> {
  const { experiment } = ctx;
  const lmKey = {
    v: CACHE_VERSION,
    task: experiment.task,
    splitSeed: experiment.seed,
    maxExamples: experiment.maxExamples ?? null,
    size,
    checkpoint: strongModel.hash,
    lmEpochs,
  };
  const hyper = roleHyper(size, experiment, 2);
  const compute = async () => {
    const result = await finetuneLm({
      gpu: ctx.gpu,
      config: strongModel.config,
      params: strongModel.params,
      texts: unlabeled,
      epochs: lmEpochs,
      lr: hyper.lr,
      batchSize: hyper.batchSize,
      seed: hyper.seed,
      signal: ctx.signal,
      onStep: (step) => ctx.report(`generative ${size}`, step),
    });
    return { params: [...result.params], loss: result.loss };
  };
  const { value } = ctx.cache
    ? await ctx.cache.through("generative-lm", lmKey, compute)
    : { value: await compute() };
  const params = Float32Array.from(value.params);
  ctx.advance(plannedSteps, `generative ${size}`);
  return { model: strongModel, params, hash: hashNumbers(params) };
}

/** Step 4: the ceiling, the strong model on train2 ground truth. */
function trainCeiling(
  ctx: RoleContext,
  strong: StrongStart,
  mode: StudentMode,
  method: MethodSpec,
  plannedSteps: number,
): Promise<TrainedRole> {
  return trainRole(ctx, {
    role: "ceiling",
    description: method.generative ? "train2 ground truth, after LM finetuning" : "train2 ground truth",
    model: strong.model,
    params: strong.params,
    paramsHash: strong.hash,
    train: "train2",
    targets: ctx.gt.train2,
    validationLabels: ctx.gt.validation,
    predict: ["test"],
    loss: "ce",
    mode,
    seedSalt: 3,
    plannedSteps,
    probeKind: "ft(gt)",
  });
}

/** The random-init control: the strong architecture with seeded GPT-2 init, trained like the ceiling. */
function trainControl(
  ctx: RoleContext,
  strongModel: LoadedModel,
  mode: StudentMode,
  seed: number,
  plannedSteps: number,
): Promise<TrainedRole> {
  const params = initParameters(strongModel.config, seed);
  return trainRole(ctx, {
    role: "control",
    description: "train2 ground truth from random init (never pretrained)",
    model: strongModel,
    params,
    paramsHash: hashNumbers(params),
    train: "train2",
    targets: ctx.gt.train2,
    validationLabels: ctx.gt.validation,
    predict: ["test"],
    loss: "ce",
    mode,
    seedSalt: 5,
    plannedSteps,
  });
}

/** Step 5: the student, the strong model on the supervisor's soft labels with the method's loss. */
function trainStudent(
  ctx: RoleContext,
  strong: StrongStart,
  supervision: Supervision,
  supervisor: string,
  mode: StudentMode,
  method: MethodSpec,
  plannedSteps: number,
): Promise<TrainedRole> {
  const loss = method.loss === "auxconf" ? ", aux confidence loss" : "";
  return trainRole(ctx, {
    role: "student",
    description: `train2 labels of ${supervisor} (${method.name}${loss})`,
    model: strong.model,
    params: strong.params,
    paramsHash: strong.hash,
    train: "train2",
    targets: supervision.labels,
    validationLabels: supervision.validationLabels,
    predict: ["test"],
    loss: method.loss,
    mode,
    seedSalt: 4,
    plannedSteps,
    probeKind: "ft(weak)+lp(gt)",
  });
}

/** Step 6a: zero-shot and k-shot prompting of the pretrained strong model, with GT and with weak labels. */
async function promptingReport(
  gpu: Gpu,
  opts: ExperimentOptions,
  k: number,
  input: { world?: World; strongModel: LoadedModel; tokenizer: Tokenizer; data: TaskData; weak: TrainedRole },
): Promise<PromptingReport> {
  const { strongModel, data: { splits, gt }, weak } = input;
  const base = {
    gpu,
    config: strongModel.config,
    params: strongModel.params,
    tokenizer: input.tokenizer,
    format: promptFormatFor(opts.task, input.world),
    test: splits.test,
  };
  const zero = await promptingBaseline(base);
  const withGt = await promptingBaseline({
    ...base,
    demos: { examples: splits.train2, labels: gt.train2, k, seed: opts.seed },
  });
  const withWeak = await promptingBaseline({
    ...base,
    demos: { examples: splits.train2, labels: hardLabels(weak.predictions.train2), k, seed: opts.seed },
  });
  return {
    k,
    zero_shot: zero.accuracy,
    k_shot_gt: withGt.accuracy,
    k_shot_weak: withWeak.accuracy,
    positive_rate: {
      zero_shot: zero.positiveRate,
      k_shot_gt: withGt.positiveRate,
      k_shot_weak: withWeak.positiveRate,
    },
  };
}

/**
 * Step 6b: per-layer probes of the pretrained strong model on weak labels and on GT, beside those the
 * student and the ceiling took of their finetuned models.
 */
async function probeReport(
  gpu: Gpu,
  strongModel: LoadedModel,
  data: TaskData,
  trained: { weak: TrainedRole; ceiling: TrainedRole; student: TrainedRole },
): Promise<LayerProbe[]> {
  const { gt } = data;
  const sets = data.setsFor(strongModel.config);
  const T = sets.train2.T;
  const model = new GptModel(gpu, strongModel.config, strongModel.params, {
    batchSize: 64,
    seqLen: T,
    forwardOnly: true,
  });
  try {
    const train = await featuresOf(model, sets.train2);
    const test = await featuresOf(model, sets.test);
    const pairs = sets.train2.pairs;
    return [
      ...probeLayers("lp(weak)", train, trained.weak.predictions.train2, test, gt.test, pairs),
      ...probeLayers("lp(gt)", train, gt.train2, test, gt.test, pairs),
      ...((trained.student.extra as LayerProbe[] | undefined) ?? []),
      ...((trained.ceiling.extra as LayerProbe[] | undefined) ?? []),
    ];
  } finally {
    model.destroy();
  }
}

/** The three readings of a pair of roles' runs: test accuracies, PGR and the step of each model. */
function stepReadings(
  weak: TrainedRole,
  ceiling: TrainedRole,
  student: TrainedRole,
  which: ReadingName,
): StepReadings {
  const [w, c, s] = [weak[which], ceiling[which], student[which]];
  return {
    weak_acc: w.testAcc,
    ceiling_acc: c.testAcc,
    student_acc: s.testAcc,
    pgr: pgr(w.testAcc, c.testAcc, s.testAcc),
    steps: { weak: w.step, ceiling: c.step, student: s.step },
  };
}

/** Plain-language cautions about a result: models within noise of chance, a gap too small for PGR. */
export function resultWarnings(
  r: Pick<
    ExperimentResult,
    "chance" | "gap_too_small" | "gap_noise" | "weak_acc" | "ceiling_acc" | "student_acc"
  >,
): string[] {
  const band = `${r.chance.rate.toFixed(3)} ± ${r.chance.noise.toFixed(3)}`;
  const warnings = (["weak", "ceiling", "student"] as const)
    .filter((role) => r.chance.near[role])
    .map((role) =>
      `the ${role} model is within noise of chance: test accuracy ${
        r[`${role}_acc`].toFixed(3)
      }, chance ${band}; it has learned nothing measurable`
    );
  if (r.gap_too_small) {
    warnings.push(
      `ceiling − weak is within test noise (±${
        r.gap_noise.toFixed(3)
      }): PGR is a ratio of noise ("gap too small")`,
    );
  }
  return warnings;
}

/**
 * Step 6: the experiment's readings. The headline is the final checkpoint of every model (the paper's
 * reading); agreement, intervals and the gap flag are the final models'. The validation-selected and
 * oracle readings stand beside it with the step each model was read at.
 */
function readResult(input: {
  opts: ExperimentOptions;
  mode: StudentMode;
  data: TaskData;
  trained: { weak: TrainedRole; ceiling: TrainedRole; student: TrainedRole };
  control?: TrainedRole;
  alphaMax: number | null;
  strongKnowledge: number | null;
  chain: string[];
  prompting?: PromptingReport;
  probes?: LayerProbe[];
  runs: RoleRun[];
  cache: ExperimentResult["cache"];
  started: number;
}): ExperimentResult {
  const { opts, data: { gt, n }, trained: { weak, ceiling, student } } = input;
  const weakTestPred = hardLabels(weak.predictions.test) as number[];
  const ceilingTestPred = hardLabels(ceiling.predictions.test) as number[];
  const studentTestPred = hardLabels(student.predictions.test) as number[];
  const weakLabelAcc = hardLabels(weak.predictions.train2).filter((p, i) => p === gt.train2[i]).length /
    n.train2;
  const final = stepReadings(weak, ceiling, student, "final");
  const selected = stepReadings(weak, ceiling, student, "selected");
  const { steps: _, ...headline } = final;
  const noise = gapNoise(final.weak_acc, final.ceiling_acc, n.test);
  const wilson = (acc: number) => shareInterval(acc, n.test);
  // The selected point's intervals, by the headline's rules, on each model's test predictions at that point
  // (a role stored before they were kept has none: no PGR interval then).
  const [weakSel, ceilingSel, studentSel] = [weak, ceiling, student].map((role) =>
    role.selectedTest && hardLabels(role.selectedTest) as number[]
  );
  const selectedCi: SelectedIntervals = {
    weak_acc: wilson(selected.weak_acc),
    ceiling_acc: wilson(selected.ceiling_acc),
    student_acc: wilson(selected.student_acc),
    pgr: weakSel && ceilingSel && studentSel
      ? pgrBootstrap(gt.test, weakSel, ceilingSel, studentSel, 1000, opts.seed)
      : null,
  };
  const chance = chanceCheck(gt.test, {
    weak: final.weak_acc,
    ceiling: final.ceiling_acc,
    student: final.student_acc,
  });
  const gap_too_small = gapTooSmall(final.weak_acc, final.ceiling_acc, noise);
  return {
    task: opts.task,
    format: taskFormat(input.data.splits.test),
    weak: opts.weak,
    strong: opts.strong,
    ...(opts.supervisor === "given" ? { supervisor: "given" as const } : {}),
    strongKnowledge: input.strongKnowledge,
    method: opts.method,
    mode: input.mode,
    seed: opts.seed,
    n,
    ...headline,
    reading: "final",
    gap_too_small,
    gap_noise: noise,
    agreement: agreement(studentTestPred, weakTestPred, gt.test),
    ci: {
      weak_acc: wilson(final.weak_acc),
      ceiling_acc: wilson(final.ceiling_acc),
      student_acc: wilson(final.student_acc),
      pgr: pgrBootstrap(gt.test, weakTestPred, ceilingTestPred, studentTestPred, 1000, opts.seed),
    },
    final,
    selected: { ...selected, ci: selectedCi },
    oracle: { ...stepReadings(weak, ceiling, student, "oracle"), student_step: student.oracle.step },
    chance,
    warnings: resultWarnings({ ...headline, chance, gap_too_small, gap_noise: noise }),
    control: input.control && {
      ceiling_acc: input.control.final.testAcc,
      ci: wilson(input.control.final.testAcc),
      step: input.control.final.step,
    },
    alpha_max: input.alphaMax,
    chain: [opts.weak, ...input.chain, opts.strong],
    weak_label_acc: weakLabelAcc,
    prompting: input.prompting,
    probes: input.probes,
    runs: input.runs,
    cache: input.cache,
    seconds: (performance.now() - input.started) / 1000,
  };
}
