/**
 * Pretraining one ladder size on the lab corpus (lab-corpus.ts): AdamW with linear warmup and cosine
 * decay (schedule.ts), random windows of seqLen tokens drawn (seeded) from the training tokens
 * (windows.ts), validation loss on fixed validation windows and region recall (knowledge.ts) along the
 * curve, checkpoints every K steps and at the end into the size's directory (model-store.ts), and a
 * snapshot with its knowledge report at each of KNOWLEDGE_CHECKPOINTS (percent of the token budget) that
 * experiments can use as a strong model ("medium@30").
 * A run resumes from its training state (it loses at most the steps since the last checkpoint; a snapshot
 * is written before the training state of its step, so a resumed run passes again any it may lack); a
 * finished size is not retrained unless `force`.
 */

import {
  ADAMW_PRETRAIN,
  type GptConfig,
  initParameters,
  parameterCount,
  paramLayout,
} from "../../kernels/config.ts";
import { getGpu, type Gpu } from "../../kernels/device.ts";
import { GptModel, NonFiniteError, type StepStats } from "../../kernels/gpt.ts";
import { loadCheckpoint, saveCheckpoint } from "../../kernels/checkpoint.ts";
import { Mulberry32 } from "../../kernels/random.ts";
import { KNOWLEDGE_CHECKPOINTS } from "../contract/model-ref.ts";
import { KnowledgeProbe, type KnowledgeReport } from "./knowledge.ts";
import { type LabCorpus, type LabCorpusOptions, loadLabCorpus } from "./lab-corpus.ts";
import { type LadderSize, ladderSize } from "./ladder.ts";
import {
  type Curves,
  deleteModel,
  makeModelDir,
  modelDir,
  type PretrainStatus,
  readStatus,
  readTrainState,
  type SnapshotRecord,
  type TrainState,
  trainStatePath,
  writeSnapshot,
  writeStatus,
  writeTrainState,
} from "./model-store.ts";
import { learningRateAt } from "./schedule.ts";
import {
  sampleBatch,
  validationBatches,
  validationLoss,
  validationWindowCount,
  type WindowBatch,
} from "./windows.ts";

export interface PretrainProgress {
  step: number;
  totalSteps: number;
  tokens: number;
  totalTokens: number;
  trainLoss?: number;
  valLoss?: number;
  knowledge?: number;
}

export interface PretrainStart {
  config: GptConfig;
  params: number;
  resumedFromStep: number;
  totalSteps: number;
  tokensPerStep: number;
  trainTokens: number;
}

export interface PretrainOptions {
  size: string | LadderSize;
  dataDir?: string;
  seed?: number;
  corpus?: LabCorpusOptions;
  force?: boolean;
  /** Called once before the first step of this session (after a resume: at the resumed step). */
  onStart?: (info: PretrainStart) => void;
  onProgress?: (p: PretrainProgress) => void;
  /** Awaited after each checkpoint (training state, checkpoint and status) is on disk: e.g. to publish it. */
  onCheckpoint?: (status: PretrainStatus) => Promise<void>;
  /** Aborting saves a checkpoint at the current step, then rejects with an "interrupted" error. */
  signal?: AbortSignal;
  gpu?: Gpu;
  // Overrides of the size's defaults (tests, experiments).
  tokens?: number;
  batchSize?: number;
  lr?: number;
  /** AdamW decoupled weight decay on matrices (default 0: decay erodes rarely seen facts). */
  weightDecay?: number;
  warmupSteps?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  /** Read the training loss every N steps (each read waits for the GPU). */
  logEvery?: number;
  valWindows?: number;
  /** Entities whose knowledge-attribute recall is tracked along the curve. */
  knowledgeEntities?: number;
  /** World windows from randomly drawn sentences (default) or contiguous spans of the rendering. */
  shuffleSentences?: boolean;
}

export interface PretrainResult {
  status: PretrainStatus;
  dir: string;
  /** True when the size was already pretrained and nothing ran. */
  cached: boolean;
  resumedFromStep: number;
}

/** The attribute whose recall is tracked: the world's first (the default world's region). */
export const knowledgeAttribute = (world: { attributes: { name: string }[] } | undefined) =>
  world?.attributes[0]?.name ?? "region";

export class PretrainInterrupted extends Error {
  constructor(readonly step: number) {
    super(`pretraining interrupted at step ${step}; a checkpoint was saved, rerun to resume`);
    this.name = "PretrainInterrupted";
  }
}

/** The step after which the snapshot at `pct` % of the budget is taken (never step 0). */
export function snapshotStep(totalSteps: number, pct: number): number {
  return Math.max(1, Math.round((totalSteps * pct) / 100));
}

export function pretrainConfig(size: LadderSize, vocabSize: number): GptConfig {
  return {
    vocabSize,
    contextLength: size.contextLength,
    width: size.width,
    layers: size.layers,
    heads: size.heads,
  };
}

/** The settings of one run: the size's defaults under the options' overrides. */
interface RunPlan {
  size: LadderSize;
  dataDir: string;
  seed: number;
  corpus: LabCorpus;
  config: GptConfig;
  batchSize: number;
  seqLen: number;
  totalSteps: number;
  lr: number;
  warmupSteps: number;
  evalEvery: number;
  checkpointEvery: number;
  logEvery: number;
}

/** Refuses a token budget or seed that would train something other than asked (a 1-step "pretrained"). */
function checkBudget(opts: PretrainOptions): void {
  if (opts.tokens !== undefined && !(Number.isSafeInteger(opts.tokens) && opts.tokens > 0)) {
    throw new Error(`tokens must be a positive whole number of tokens (--tokens), got ${opts.tokens}`);
  }
  if (opts.seed !== undefined && !(Number.isSafeInteger(opts.seed) && opts.seed >= 0)) {
    throw new Error(`seed must be a whole number ≥ 0 (--seed), got ${opts.seed}`);
  }
}

function planRun(opts: PretrainOptions, size: LadderSize, dataDir: string, corpus: LabCorpus): RunPlan {
  checkBudget(opts);
  const batchSize = opts.batchSize ?? size.batchSize;
  const seqLen = size.contextLength;
  const totalSteps = Math.max(1, Math.ceil((opts.tokens ?? size.tokens) / (batchSize * seqLen)));
  const evalEvery = opts.evalEvery ?? Math.max(1, Math.round(totalSteps / 20));
  return {
    size,
    dataDir,
    seed: opts.seed ?? 1,
    corpus,
    config: pretrainConfig(size, corpus.tokenizer.vocabSize),
    batchSize,
    seqLen,
    totalSteps,
    lr: opts.lr ?? size.lr,
    warmupSteps: opts.warmupSteps ?? Math.max(1, Math.min(200, Math.round(totalSteps * 0.05))),
    evalEvery,
    checkpointEvery: opts.checkpointEvery ?? Math.max(1, Math.round(totalSteps / 10)),
    logEvery: opts.logEvery ?? Math.max(1, Math.min(25, evalEvery)),
  };
}

/**
 * The size's finished run when it was pretrained on this corpus, with the budget and seed the options
 * ask for (when they ask); an error that names --force when it was trained otherwise.
 */
async function finishedRun(plan: RunPlan, opts: PretrainOptions): Promise<PretrainResult | null> {
  const { dataDir, size, corpus } = plan;
  const previous = await readStatus(dataDir, size.name);
  if (previous?.status !== "pretrained") return null;
  const differs = (what: string, had: string, asked: string) =>
    new Error(
      `size ${size.name} was pretrained with ${what} ${had}, not the requested ${asked}; ` +
        `pretrain with --force to replace it`,
    );
  if (previous.corpusHash !== corpus.hash) throw differs("corpus", previous.corpusHash, corpus.hash);
  const plannedTokens = plan.totalSteps * plan.batchSize * plan.seqLen;
  if (opts.tokens !== undefined && previous.tokens !== plannedTokens) {
    throw differs("a budget of", `${previous.tokens} tokens`, `${plannedTokens} (--tokens ${opts.tokens})`);
  }
  if (opts.seed !== undefined && previous.seed !== plan.seed) {
    throw differs("seed", String(previous.seed), String(plan.seed));
  }
  const dir = modelDir(dataDir, size.name);
  await loadCheckpoint(dir); // a finished size must still load: a damaged one is an error, not a cache hit
  // Same corpus hash, same corpus: a status written before leakage was recorded learns it now.
  if (!previous.corpus) {
    await writeStatus(dataDir, size.name, Object.assign(previous, { corpus: corpus.facts }));
  }
  return { status: previous, dir, cached: true, resumedFromStep: previous.step };
}

/** The training state to resume from; `force` starts over from an empty directory. */
async function startingState(plan: RunPlan, force: boolean): Promise<TrainState | null> {
  const { dataDir, size, corpus } = plan;
  const state = force ? null : await readTrainState(dataDir, size.name, paramLayout(plan.config).total);
  if (state && (state.corpusHash !== corpus.hash || state.tokenizerId !== corpus.tokenizer.id)) {
    throw new Error(
      `checkpoint ${
        trainStatePath(dataDir, size.name)
      } belongs to corpus ${state.corpusHash} / tokenizer ${state.tokenizerId}, ` +
        `not ${corpus.hash} / ${corpus.tokenizer.id}; pretrain with --force to start over`,
    );
  }
  if (force) await deleteModel(dataDir, size.name);
  await makeModelDir(dataDir, size.name);
  return state;
}

/** A run in progress: the model and probe, the window sampler, the curves so far and the clock. */
class PretrainRun {
  step: number;
  readonly resumedFromStep: number;
  private readonly rng: Mulberry32;
  private readonly curves: Curves;
  /** Step → the budget percentages whose snapshot is taken after it. */
  private readonly snapshotsAt = new Map<number, number[]>();
  private wallBefore: number;
  private started: number;

  constructor(
    readonly plan: RunPlan,
    private readonly model: GptModel,
    private readonly probe: KnowledgeProbe | undefined,
    /** A probe of every world attribute for the snapshots' reports (built per snapshot, then freed). */
    private readonly snapshotProbe: (() => KnowledgeProbe) | undefined,
    state: TrainState | null,
    /** The model the validation loss runs on (validationModel) and its batches of windows. */
    private readonly validation: { model: GptModel; batches: WindowBatch[] },
  ) {
    for (const pct of KNOWLEDGE_CHECKPOINTS) {
      const step = snapshotStep(plan.totalSteps, pct);
      this.snapshotsAt.set(step, [...(this.snapshotsAt.get(step) ?? []), pct]);
    }
    this.rng = new Mulberry32(state?.rngState ?? (plan.seed * 2654435761) ^ 0x5bd1e995);
    this.curves = state?.curves ?? { train: [], val: [], knowledge: [] };
    this.step = state?.step ?? 0;
    this.resumedFromStep = this.step;
    this.wallBefore = state?.wallSeconds ?? 0;
    this.started = performance.now();
  }

  tokensAt(step: number): number {
    return step * this.plan.batchSize * this.plan.seqLen;
  }

  wallSeconds(): number {
    return this.wallBefore + (performance.now() - this.started) / 1000;
  }

  /** Called after each checkpoint is on disk (PretrainOptions.onCheckpoint). */
  onCheckpoint?: (status: PretrainStatus) => Promise<void>;

  /** Time spent before the first step (corpus, compile, first eval) does not count against throughput. */
  restartClock(): void {
    this.wallBefore = this.wallSeconds();
    this.started = performance.now();
  }

  async evaluate(): Promise<{ valLoss: number; knowledge: number | undefined }> {
    const { step, curves } = this;
    const valLoss = await validationLoss(this.validation.model, this.validation.batches);
    curves.val.push({ step, tokens: this.tokensAt(step), value: valLoss });
    let knowledge: number | undefined;
    if (this.probe) {
      const report = await this.probe.measure(await this.model.readParams());
      knowledge = report.attributes[0].accuracy;
      curves.knowledge.push({ step, tokens: this.tokensAt(step), value: knowledge });
    }
    return { valLoss, knowledge };
  }

  /** Whether the next step is already on the GPU (submitted while a loss read was waiting). */
  nextStepSubmitted = false;

  /** Samples the next batch and submits its optimizer step. */
  private submitStep(shuffleSentences: boolean): void {
    const { model, plan } = this;
    const { batchSize: B, seqLen: T, totalSteps } = plan;
    model.setBatch(sampleBatch(plan.corpus, this.rng, B, T, shuffleSentences));
    model.trainStep("lm", { lr: learningRateAt(this.step, totalSteps, plan.lr, plan.warmupSteps) });
  }

  /**
   * One optimizer step, with the loss read, evaluation and checkpoint that fall on it. The loss read's
   * wait overlaps the next step, submitted behind its copy, unless this step must be evaluated, saved
   * or interrupted first: those need the parameters of this step.
   */
  async trainStep(shuffleSentences: boolean, interrupting = false): Promise<PretrainProgress> {
    const { plan } = this;
    const { totalSteps } = plan;
    if (!this.nextStepSubmitted) this.submitStep(shuffleSentences);
    this.nextStepSubmitted = false;
    const step = ++this.step;
    const progress: PretrainProgress = {
      step,
      totalSteps,
      tokens: this.tokensAt(step),
      totalTokens: this.tokensAt(totalSteps),
    };
    const evaluating = step % plan.evalEvery === 0 || step === totalSteps;
    const saving = this.snapshotsAt.has(step) || step % plan.checkpointEvery === 0;
    if (step % plan.logEvery === 0 || step === totalSteps) {
      const read = this.model.readStats();
      if (!evaluating && !saving && !interrupting && step < totalSteps) {
        this.submitStep(shuffleSentences);
        this.nextStepSubmitted = true;
      }
      const stats = await this.divergedAt(step, read);
      this.curves.train.push({ step, tokens: this.tokensAt(step), value: stats.loss });
      progress.trainLoss = stats.loss;
    }
    if (evaluating) Object.assign(progress, await this.evaluate());
    // Snapshots before the training state: a state at this step implies its snapshots are on disk.
    for (const pct of this.snapshotsAt.get(step) ?? []) await this.snapshot(pct);
    if (step < totalSteps && step % plan.checkpointEvery === 0) await this.checkpoint("partial");
    return progress;
  }

  /** The step's stats, or an error naming the step when an update since the last read was non-finite. */
  private async divergedAt(step: number, read: Promise<StepStats>): Promise<StepStats> {
    try {
      return await read;
    } catch (err) {
      if (err instanceof NonFiniteError) {
        throw new Error(
          `pretraining ${this.plan.size.name} diverged near step ${step}: ${err.message}; try a lower lr`,
        );
      }
      throw err;
    }
  }

  /** The checkpoint at this step with its knowledge report, kept under at/<pct>/ (model-store.ts). */
  async snapshot(pct: number): Promise<void> {
    const { plan, step } = this;
    const { size, corpus } = plan;
    const params = await this.model.readParams();
    let report: KnowledgeReport | null = null;
    if (this.snapshotProbe) {
      const probe = this.snapshotProbe();
      try {
        report = await probe.measure(params);
      } finally {
        probe.destroy();
      }
    }
    const first = report?.attributes[0];
    const record: SnapshotRecord<KnowledgeReport> = {
      size: size.name,
      pct,
      step,
      totalSteps: plan.totalSteps,
      tokens: this.tokensAt(step),
      corpusHash: corpus.hash,
      tokenizerId: corpus.tokenizer.id,
      knowledgeAttribute: first?.attribute ?? null,
      recall: first?.accuracy ?? null,
      report,
    };
    await writeSnapshot(plan.dataDir, {
      config: plan.config,
      params,
      meta: { ...this.checkpointMeta("snapshot"), pct },
    }, record);
  }

  /** What a checkpoint written at this step says about itself (the final one and the snapshots). */
  private checkpointMeta(status: string) {
    const { plan, step } = this;
    return {
      size: plan.size.name,
      step,
      totalSteps: plan.totalSteps,
      status,
      tokenizer: plan.corpus.tokenizer.id,
      corpusHash: plan.corpus.hash,
      corpusDir: plan.corpus.world.dir,
      seed: plan.seed,
    };
  }

  /** Saves the training state, then the checkpoint, then the status, and returns the status. */
  async checkpoint(status: PretrainStatus["status"]): Promise<PretrainStatus> {
    const { plan, step } = this;
    const { dataDir, size, corpus } = plan;
    // All three copies queued before one wait.
    const [params, optimizer] = await Promise.all([this.model.readParams(), this.model.readOptimizerState()]);
    // The training state first: it alone decides where a resumed run continues.
    await writeTrainState(dataDir, size.name, {
      params,
      m: optimizer.m,
      v: optimizer.v,
      step,
      optimizerStep: optimizer.step,
      rngState: this.rng.state,
      corpusHash: corpus.hash,
      tokenizerId: corpus.tokenizer.id,
      wallSeconds: this.wallSeconds(),
      curves: this.curves,
    });
    await saveCheckpoint(modelDir(dataDir, size.name), {
      config: plan.config,
      params,
      meta: this.checkpointMeta(status),
    });
    const result = this.status(status);
    await writeStatus(dataDir, size.name, result);
    await this.onCheckpoint?.(result);
    return result;
  }

  private status(status: PretrainStatus["status"]): PretrainStatus {
    const { plan, step, curves } = this;
    const lastVal = curves.val.at(-1);
    const lastKnowledge = curves.knowledge.at(-1);
    const trainedTokens = this.tokensAt(step - this.resumedFromStep);
    const sessionSeconds = (performance.now() - this.started) / 1000;
    return {
      size: plan.size.name,
      status,
      params: parameterCount(plan.config),
      config: plan.config,
      step,
      totalSteps: plan.totalSteps,
      tokens: this.tokensAt(plan.totalSteps),
      batchSize: plan.batchSize,
      seqLen: plan.seqLen,
      seed: plan.seed,
      lr: plan.lr,
      corpusHash: plan.corpus.hash,
      corpus: plan.corpus.facts,
      tokenizerId: plan.corpus.tokenizer.id,
      knowledgeAttribute: knowledgeAttribute(plan.corpus.world.world),
      val_loss: lastVal?.step === step ? lastVal.value : null,
      knowledge: lastKnowledge?.step === step ? lastKnowledge.value : null,
      wallSeconds: Math.round(this.wallSeconds() * 10) / 10,
      tokensPerSecond: sessionSeconds > 0 && trainedTokens > 0
        ? Math.round(trainedTokens / sessionSeconds)
        : null,
      curves,
      updatedAt: new Date().toISOString(),
    };
  }
}

/** Runs the remaining steps, reporting progress; an abort checkpoints and throws PretrainInterrupted. */
async function trainToEnd(run: PretrainRun, opts: PretrainOptions): Promise<PretrainResult> {
  const { plan } = run;
  const { totalSteps, corpus } = plan;
  opts.onStart?.({
    config: plan.config,
    params: parameterCount(plan.config),
    resumedFromStep: run.resumedFromStep,
    totalSteps,
    tokensPerStep: plan.batchSize * plan.seqLen,
    trainTokens: corpus.world.train.length + (corpus.real?.train.length ?? 0),
  });
  if (run.step === 0) {
    const first = await run.evaluate();
    opts.onProgress?.({ step: 0, totalSteps, tokens: 0, totalTokens: run.tokensAt(totalSteps), ...first });
  }
  run.restartClock();
  while (run.step < totalSteps) {
    // A step already submitted is finished first: the checkpoint must hold the parameters of its step.
    if (opts.signal?.aborted && !run.nextStepSubmitted) {
      await run.checkpoint("partial");
      throw new PretrainInterrupted(run.step);
    }
    // Not inside onProgress?.(): optional chaining would skip the step when no one listens.
    const progress = await run.trainStep(opts.shuffleSentences ?? true, opts.signal?.aborted ?? false);
    opts.onProgress?.(progress);
  }
  const status = await run.checkpoint("pretrained");
  return {
    status,
    dir: modelDir(plan.dataDir, plan.size.name),
    cached: false,
    resumedFromStep: run.resumedFromStep,
  };
}

/**
 * The model the validation loss runs on and the windows in batches of its rows: a forward-only evaluator
 * of up to EVAL_TOKENS tokens a batch on the training model's parameter buffers (evaluatorFor: 128 rows
 * instead of the ladder's 16), or the training model itself where no more rows fit. The windows and their
 * losses are the same either way; only the batching differs. On llvmpipe it saved 7–22 % of a validation
 * (medians of three, nano to medium, the host busy): the LM head and its loss, linear in tokens, dominate
 * validation at the ladder's sizes. A GPU gains more from fuller batches.
 */
function validationModel(plan: RunPlan, model: GptModel, maxWindows: number) {
  const tokens = plan.corpus.world.validation;
  const evaluator = model.evaluatorFor({ examples: validationWindowCount(tokens, plan.seqLen, maxWindows) });
  return { model: evaluator, batches: validationBatches(tokens, evaluator.B, plan.seqLen, maxWindows) };
}

export async function pretrainSize(opts: PretrainOptions): Promise<PretrainResult> {
  const size = typeof opts.size === "string" ? ladderSize(opts.size) : opts.size;
  const dataDir = opts.dataDir ?? Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const corpus = await loadLabCorpus(dataDir, opts.corpus);
  const plan = planRun(opts, size, dataDir, corpus);
  const finished = opts.force ? null : await finishedRun(plan, opts);
  if (finished) return finished;

  const gpu = opts.gpu ?? await getGpu();
  const state = await startingState(plan, opts.force ?? false);
  const model = new GptModel(gpu, plan.config, state?.params ?? initParameters(plan.config, plan.seed), {
    batchSize: plan.batchSize,
    seqLen: plan.seqLen,
  });
  const world = corpus.world.world;
  const probeOn = (attributes?: string[]) =>
    new KnowledgeProbe(gpu, plan.config, corpus.tokenizer, world!, {
      attributes,
      maxEntities: opts.knowledgeEntities ?? 256,
      leaveOut: opts.corpus?.worldLeaveOut,
    });
  const probe = world ? probeOn([knowledgeAttribute(world)]) : undefined;
  // Snapshots report every attribute, on the entities the curve tracks.
  const snapshotProbe = world ? () => probeOn() : undefined;
  const validation = validationModel(plan, model, opts.valWindows ?? 256);
  try {
    model.setOptimizer({
      ...ADAMW_PRETRAIN,
      lr: plan.lr,
      weightDecay: opts.weightDecay ?? ADAMW_PRETRAIN.weightDecay,
    });
    if (state) model.loadOptimizerState({ m: state.m, v: state.v, step: state.optimizerStep });
    const run = new PretrainRun(plan, model, probe, snapshotProbe, state, validation);
    run.onCheckpoint = opts.onCheckpoint;
    return await trainToEnd(run, opts);
  } finally {
    probe?.destroy();
    if (validation.model !== model) validation.model.destroy();
    model.destroy();
  }
}
