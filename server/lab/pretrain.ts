/**
 * Pretraining one ladder size on the lab corpus: AdamW with linear warmup and cosine decay, random
 * windows of seqLen tokens drawn (seeded) from the training tokens, validation loss on fixed validation
 * windows and region recall (knowledge) along the curve, checkpoints every K steps and at the end.
 *
 * Everything lives in `<dataDir>/models/<size>/`:
 *   config.json + model.safetensors   the lab checkpoint other code loads (kernels/checkpoint.ts)
 *   train-state.safetensors           params, AdamW m and v, with step, RNG state, corpus hash, tokenizer
 *                                     id and the curves in its metadata — ONE file, so it is consistent
 *   status.json                       status ("partial" | "pretrained"), curves, final figures
 * A run resumes from train-state.safetensors (it loses at most the steps since the last checkpoint); a
 * finished size is not retrained unless `force`.
 *
 * The lab corpus is the knowledge world (server/corpus/world.ts), optionally mixed with the real corpus:
 * `realShare` of the training windows then come from WordNet / SOTU / Moby-Dick.
 *
 * World windows are runs of statements drawn at random, each in a wording drawn at random from its
 * templates (paraphrase augmentation, `paraphrase`, default on). Measured without it (400 entities,
 * region stated once each, medium 750 k tokens): medium recalled the region of 100 % of entities whose
 * one statement used the canonical wording (". X lives in") but 70–79 % of the others, and its recall
 * fell from 91 % to 82 % late in training while validation loss rose — it bound facts to templates.
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  ADAMW_PRETRAIN,
  type GptConfig,
  initParameters,
  parameterCount,
  paramLayout,
} from "../../kernels/config.ts";
import { getGpu, type Gpu } from "../../kernels/device.ts";
import { GptModel, NonFiniteError } from "../../kernels/gpt.ts";
import { loadCheckpoint, saveCheckpoint } from "../../kernels/checkpoint.ts";
import { decodeSafetensors, encodeSafetensors } from "../../kernels/safetensors.ts";
import { buildCorpus, type BuiltinSource, type Corpus, type TokenArray } from "../corpus/corpus.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import {
  LAB_WORLD_OPTIONS,
  type LeaveOut,
  type World,
  type WorldOptions,
  worldStatementVariants,
} from "../corpus/world.ts";
import { type LadderSize, ladderSize } from "./ladder.ts";
import { KnowledgeProbe } from "./knowledge.ts";
import { learningRateAt } from "./schedule.ts";

// ---------- the lab corpus ----------

export interface LabCorpusOptions {
  /** The knowledge world's options (merged over the lab default below). */
  world?: Partial<WorldOptions>;
  worldLeaveOut?: LeaveOut;
  /** Share of training windows drawn from the real corpus (0: the world alone). */
  realShare?: number;
  realSources?: BuiltinSource[];
  /** Users' plain-text or JSONL files, part of the real corpus. */
  realFiles?: string[];
  /** Character budget of the real corpus (all sources together). */
  realMaxChars?: number;
  /** Tokenizer: GPT-2's first K merges. */
  merges?: number;
  /** Seed of the train/validation split. */
  seed?: number;
  /** World windows re-draw each statement's wording from its templates on every use (default true). */
  paraphrase?: boolean;
}

/**
 * What the default ladder pretrains on: the lab's world (LAB_WORLD_OPTIONS in server/corpus/world.ts: 400
 * entities with 1–3 mentions each, region stated once per entity; 713 statements + 120 half sentences,
 * vocabulary 947: 256 merges + one token per name), alone. Measured: the default 2,000-entity world is
 * 147 k tokens per epoch; at 900–3,300 tokens/s (this machine, shared) one size could not see it even
 * twice in 15 minutes, and facts need tens of exposures to be memorized (see ladder.ts).
 *
 * Validation on the world is NOT a held-out share of documents: a held-out document's facts are stated
 * nowhere in training, so no model can learn them and larger models grew overconfident on them
 * (validation loss rose with size). Training gets every statement; validation is one fresh restatement
 * (template drawn with another seed) of every fact training states, plus one half sentence per region
 * (renderWorldValidation, ~830 sentences) — it measures what pretraining can learn. The real corpus
 * keeps its split by document.
 */
export const DEFAULT_LAB_CORPUS: Required<Omit<LabCorpusOptions, "worldLeaveOut">> = {
  world: LAB_WORLD_OPTIONS,
  realShare: 0,
  realSources: ["wordnet", "sotu", "moby-dick"],
  realFiles: [],
  realMaxChars: 4_000_000,
  merges: 256,
  seed: 1,
  paraphrase: true,
};

export interface LabCorpus {
  world: Corpus;
  real?: Corpus;
  realShare: number;
  tokenizer: Tokenizer;
  /** Identifies the training data: both corpora's hashes and the mix. */
  hash: string;
  /** Start offsets of the world's training sentences (each opens with its "." token), plus the end. */
  worldSentenceStarts: Int32Array;
  /** Paraphrase augmentation: every wording of each training statement, as tokens opening with ".". */
  worldVariants?: Int32Array[][];
}

/** Offsets where the world's sentences start: at every "." token (the rendering opens each with ". "). */
export function sentenceStarts(tokens: TokenArray, periodId: number): Int32Array {
  const starts: number[] = [];
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === periodId || i === 0) starts.push(i);
  starts.push(tokens.length);
  return Int32Array.from(starts);
}

export async function loadLabCorpus(dataDir: string, opts: LabCorpusOptions = {}): Promise<LabCorpus> {
  const o = { ...DEFAULT_LAB_CORPUS, ...opts };
  if (!(o.realShare >= 0 && o.realShare < 1)) {
    throw new Error(`realShare must be in [0, 1), got ${o.realShare}`);
  }
  if (o.realFiles.length > 0 && o.realShare === 0) {
    throw new Error("corpus files join the real corpus: give realShare > 0 (--real-share) to train on them");
  }
  const world = await buildCorpus({
    dataDir,
    sources: [],
    world: o.world,
    worldLeaveOut: opts.worldLeaveOut,
    merges: o.merges,
    seed: o.seed,
  });
  let real: Corpus | undefined;
  if (o.realShare > 0) {
    real = await buildCorpus({
      dataDir,
      sources: o.realSources,
      files: o.realFiles,
      maxChars: o.realMaxChars,
      merges: o.merges,
      seed: o.seed,
    });
    // Same merges, no added tokens: its ids are a prefix of the world tokenizer's vocabulary.
    if (real.tokenizer.vocabSize > world.tokenizer.vocabSize) {
      throw new Error("the real corpus's vocabulary is larger than the world's; use the same merges");
    }
  }
  // The augmentation changes what is trained on, so it is part of the training data's identity.
  const worldId = o.paraphrase ? `${world.manifest.hash}+paraphrase` : world.manifest.hash;
  const hash = real || o.paraphrase
    ? createHash("sha256").update(real ? `${worldId}+${real.manifest.hash}@${o.realShare}` : worldId)
      .digest("hex").slice(0, 16)
    : world.manifest.hash;
  const [periodId] = world.tokenizer.encode(".");
  const worldSentenceStarts = sentenceStarts(world.train, periodId);
  const worldVariants = o.paraphrase && world.world
    ? worldStatementVariants(world.world, { leaveOut: opts.worldLeaveOut }).map((wordings) =>
      wordings.map((w) => Int32Array.from(world.tokenizer.encode(". " + w)))
    )
    : undefined;
  return {
    world,
    real,
    realShare: o.realShare,
    tokenizer: world.tokenizer,
    hash,
    worldSentenceStarts,
    worldVariants,
  };
}

// ---------- schedule and sampling ----------

/** mulberry32 with its state exposed, so a checkpoint can store where the sampler was. */
export class WindowRandom {
  constructor(public state: number) {
    this.state = state >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

interface WindowBatch {
  tokens: Int32Array;
  lengths: Int32Array;
  targets: Int32Array;
}

/** Copies a window of T+1 tokens: inputs are the first T, targets the next token of each. */
function putWindow(batch: WindowBatch, row: number, source: TokenArray, start: number, T: number): void {
  const available = Math.min(T, source.length - 1 - start);
  for (let t = 0; t < available; t++) {
    batch.tokens[row * T + t] = source[start + t];
    batch.targets[row * T + t] = source[start + t + 1];
  }
  batch.lengths[row] = available;
}

function emptyBatch(rows: number, T: number): WindowBatch {
  return {
    tokens: new Int32Array(rows * T),
    lengths: new Int32Array(rows),
    targets: new Int32Array(rows * T).fill(-1),
  };
}

/**
 * A world window made of T+1 tokens of sentences drawn at random: the order of statements changes on
 * every draw, so a model can only lower the loss on a fact by tying it to its entity, not by
 * memorizing which sentence follows which in the fixed rendering.
 */
function sentenceWindow(tokens: TokenArray, starts: Int32Array, rng: WindowRandom, T: number): Uint32Array {
  const window = new Uint32Array(T + 1);
  let filled = 0;
  while (filled < T + 1) {
    const k = rng.int(starts.length - 1);
    for (let i = starts[k]; i < starts[k + 1] && filled < T + 1; i++) window[filled++] = tokens[i];
  }
  return window;
}

/**
 * A world window of statements drawn at random, each in a wording drawn at random from its templates
 * (paraphrase augmentation): a fact then binds to its entity, not to the one template that stated it.
 */
export function paraphraseWindow(variants: Int32Array[][], rng: WindowRandom, T: number): Uint32Array {
  const window = new Uint32Array(T + 1);
  let filled = 0;
  while (filled < T + 1) {
    const wordings = variants[rng.int(variants.length)];
    const sentence = wordings[rng.int(wordings.length)];
    for (let i = 0; i < sentence.length && filled < T + 1; i++) window[filled++] = sentence[i];
  }
  return window;
}

function sampleBatch(
  corpus: LabCorpus,
  rng: WindowRandom,
  B: number,
  T: number,
  shuffleSentences: boolean,
): WindowBatch {
  const batch = emptyBatch(B, T);
  for (let b = 0; b < B; b++) {
    if (corpus.real && rng.next() < corpus.realShare) {
      const source = corpus.real.train;
      putWindow(batch, b, source, rng.int(Math.max(1, source.length - T)), T);
    } else if (shuffleSentences && corpus.worldVariants) {
      putWindow(batch, b, paraphraseWindow(corpus.worldVariants, rng, T), 0, T);
    } else if (shuffleSentences) {
      putWindow(batch, b, sentenceWindow(corpus.world.train, corpus.worldSentenceStarts, rng, T), 0, T);
    } else {
      const source = corpus.world.train;
      putWindow(batch, b, source, rng.int(Math.max(1, source.length - T)), T);
    }
  }
  return batch;
}

/** Fixed validation windows: the validation tokens tiled without overlap, at most `maxWindows`. */
function validationBatches(tokens: TokenArray, B: number, T: number, maxWindows: number): WindowBatch[] {
  const windows = Math.max(1, Math.min(maxWindows, Math.floor((tokens.length - 1) / T)));
  const stride = Math.max(T, Math.floor((tokens.length - 1) / windows));
  const batches: WindowBatch[] = [];
  for (let w = 0; w < windows; w += B) {
    const rows = Math.min(B, windows - w);
    const batch = emptyBatch(rows, T);
    for (let r = 0; r < rows; r++) putWindow(batch, r, tokens, (w + r) * stride, T);
    batches.push(batch);
  }
  return batches;
}

async function validationLoss(model: GptModel, batches: WindowBatch[]): Promise<number> {
  let sum = 0;
  let count = 0;
  for (const batch of batches) {
    model.setBatch(batch);
    model.evalStep("lm");
    const stats = await model.readStats();
    sum += stats.loss * stats.count;
    count += stats.count;
  }
  return sum / Math.max(1, count);
}

// ---------- files ----------

export interface CurvePoint {
  step: number;
  tokens: number;
  value: number;
}

export interface Curves {
  train: CurvePoint[];
  val: CurvePoint[];
  /** Recall of the knowledge attribute on the tracked entities. */
  knowledge: CurvePoint[];
}

export interface PretrainStatus {
  size: string;
  status: "partial" | "pretrained";
  params: number;
  config: GptConfig;
  step: number;
  totalSteps: number;
  tokens: number;
  batchSize: number;
  seqLen: number;
  seed: number;
  lr: number;
  corpusHash: string;
  tokenizerId: string;
  knowledgeAttribute: string;
  val_loss: number | null;
  knowledge: number | null;
  wallSeconds: number;
  tokensPerSecond: number | null;
  curves: Curves;
  updatedAt: string;
}

export const modelDir = (dataDir: string, size: string) => join(dataDir, "models", size);
const TRAIN_STATE = "train-state.safetensors";
const STATUS = "status.json";

async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temporary = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
  } catch (err) {
    await Deno.remove(temporary).catch(() => {});
    throw err;
  }
}

export async function readStatus(dataDir: string, size: string): Promise<PretrainStatus | null> {
  const path = join(modelDir(dataDir, size), STATUS);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    return JSON.parse(text) as PretrainStatus;
  } catch (err) {
    throw new Error(
      `${path} is corrupted (not valid JSON: ${(err as Error).message}); delete it or use --force`,
    );
  }
}

interface TrainState {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  step: number;
  optimizerStep: number;
  rngState: number;
  corpusHash: string;
  tokenizerId: string;
  wallSeconds: number;
  curves: Curves;
}

function encodeTrainState(s: TrainState): Uint8Array {
  const vector = (data: Float32Array) => ({ dtype: "F32" as const, shape: [data.length], data });
  return encodeSafetensors({ params: vector(s.params), m: vector(s.m), v: vector(s.v) }, {
    step: String(s.step),
    optimizerStep: String(s.optimizerStep),
    rngState: String(s.rngState),
    corpusHash: s.corpusHash,
    tokenizerId: s.tokenizerId,
    wallSeconds: String(s.wallSeconds),
    curves: JSON.stringify(s.curves),
  });
}

/** Reads a training state; any damage is an error that names the file. */
async function readTrainState(path: string, paramsLength: number): Promise<TrainState | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const fail = (why: string): never => {
    throw new Error(`checkpoint ${path} is corrupted (${why}); delete it or pretrain with --force`);
  };
  let file;
  try {
    file = decodeSafetensors(bytes, path);
  } catch (err) {
    return fail((err as Error).message);
  }
  const meta = file.metadata ?? {};
  const tensor = (name: string) => {
    const t = file.tensors.get(name);
    if (!t || !(t.data instanceof Float32Array) || t.data.length !== paramsLength) {
      return fail(`tensor ${name} is missing or does not hold ${paramsLength} floats`);
    }
    return t.data;
  };
  const integer = (key: string) => {
    const value = Number(meta[key]);
    if (meta[key] === undefined || !Number.isFinite(value)) return fail(`metadata ${key} is missing`);
    return value;
  };
  let curves: Curves;
  try {
    curves = JSON.parse(meta.curves ?? "");
  } catch {
    return fail("metadata curves is not valid JSON");
  }
  return {
    params: tensor("params"),
    m: tensor("m"),
    v: tensor("v"),
    step: integer("step"),
    optimizerStep: integer("optimizerStep"),
    rngState: integer("rngState"),
    corpusHash: meta.corpusHash ?? fail("metadata corpusHash is missing"),
    tokenizerId: meta.tokenizerId ?? fail("metadata tokenizerId is missing"),
    wallSeconds: integer("wallSeconds"),
    curves,
  };
}

// ---------- the run ----------

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

/** The attribute whose recall is tracked: the one the default task asks about. */
export const KNOWLEDGE_ATTRIBUTE = "region";

export class PretrainInterrupted extends Error {
  constructor(readonly step: number) {
    super(`pretraining interrupted at step ${step}; a checkpoint was saved, rerun to resume`);
    this.name = "PretrainInterrupted";
  }
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

export async function pretrainSize(opts: PretrainOptions): Promise<PretrainResult> {
  const size = typeof opts.size === "string" ? ladderSize(opts.size) : opts.size;
  const dataDir = opts.dataDir ?? Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const seed = opts.seed ?? 1;
  const dir = modelDir(dataDir, size.name);
  const corpus = await loadLabCorpus(dataDir, opts.corpus);
  const cfg = pretrainConfig(size, corpus.tokenizer.vocabSize);
  const B = opts.batchSize ?? size.batchSize;
  const T = size.contextLength;
  const totalTokens = opts.tokens ?? size.tokens;
  const totalSteps = Math.max(1, Math.ceil(totalTokens / (B * T)));
  const lr = opts.lr ?? size.lr;
  const warmupSteps = opts.warmupSteps ?? Math.max(1, Math.min(200, Math.round(totalSteps * 0.05)));
  const evalEvery = opts.evalEvery ?? Math.max(1, Math.round(totalSteps / 20));
  const checkpointEvery = opts.checkpointEvery ?? Math.max(1, Math.round(totalSteps / 10));
  const logEvery = opts.logEvery ?? Math.max(1, Math.min(25, evalEvery));

  const previous = opts.force ? null : await readStatus(dataDir, size.name);
  if (previous?.status === "pretrained") {
    if (previous.corpusHash !== corpus.hash) {
      throw new Error(
        `size ${size.name} was pretrained on corpus ${previous.corpusHash}, not the requested ${corpus.hash}; ` +
          `pretrain with --force to replace it`,
      );
    }
    await loadCheckpoint(dir); // a finished size must still load: a damaged one is an error, not a cache hit
    return { status: previous, dir, cached: true, resumedFromStep: previous.step };
  }

  const gpu = opts.gpu ?? await getGpu();
  const layout = paramLayout(cfg);
  const state = opts.force ? null : await readTrainState(join(dir, TRAIN_STATE), layout.total);
  if (state && (state.corpusHash !== corpus.hash || state.tokenizerId !== corpus.tokenizer.id)) {
    throw new Error(
      `checkpoint ${
        join(dir, TRAIN_STATE)
      } belongs to corpus ${state.corpusHash} / tokenizer ${state.tokenizerId}, ` +
        `not ${corpus.hash} / ${corpus.tokenizer.id}; pretrain with --force to start over`,
    );
  }
  if (opts.force) await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });

  const model = new GptModel(gpu, cfg, state?.params ?? initParameters(cfg, seed), {
    batchSize: B,
    seqLen: T,
  });
  const probe = corpus.world.world
    ? new KnowledgeProbe(gpu, cfg, corpus.tokenizer, corpus.world.world, {
      attributes: [KNOWLEDGE_ATTRIBUTE],
      maxEntities: opts.knowledgeEntities ?? 256,
      leaveOut: opts.corpus?.worldLeaveOut,
    })
    : undefined;
  try {
    model.setOptimizer({
      ...ADAMW_PRETRAIN,
      lr,
      weightDecay: opts.weightDecay ?? ADAMW_PRETRAIN.weightDecay,
    });
    if (state) model.loadOptimizerState({ m: state.m, v: state.v, step: state.optimizerStep });
    const rng = new WindowRandom(state?.rngState ?? (seed * 2654435761) ^ 0x5bd1e995);
    const curves: Curves = state?.curves ?? { train: [], val: [], knowledge: [] };
    const valBatches = validationBatches(corpus.world.validation, B, T, opts.valWindows ?? 256);
    let step = state?.step ?? 0;
    const resumedFromStep = step;
    let wallBefore = state?.wallSeconds ?? 0;
    let started = performance.now();
    const tokensAt = (s: number) => s * B * T;
    const wallSeconds = () => wallBefore + (performance.now() - started) / 1000;

    const evaluate = async () => {
      const valLoss = await validationLoss(model, valBatches);
      curves.val.push({ step, tokens: tokensAt(step), value: valLoss });
      let knowledge: number | undefined;
      if (probe) {
        const report = await probe.measure(await model.readParams());
        knowledge = report.attributes[0].accuracy;
        curves.knowledge.push({ step, tokens: tokensAt(step), value: knowledge });
      }
      return { valLoss, knowledge };
    };

    const writeStatus = async (status: PretrainStatus["status"]) => {
      const lastVal = curves.val.at(-1);
      const lastKnowledge = curves.knowledge.at(-1);
      const trainedTokens = tokensAt(step - resumedFromStep);
      const sessionSeconds = (performance.now() - started) / 1000;
      const result: PretrainStatus = {
        size: size.name,
        status,
        params: parameterCount(cfg),
        config: cfg,
        step,
        totalSteps,
        tokens: tokensAt(totalSteps),
        batchSize: B,
        seqLen: T,
        seed,
        lr,
        corpusHash: corpus.hash,
        tokenizerId: corpus.tokenizer.id,
        knowledgeAttribute: KNOWLEDGE_ATTRIBUTE,
        val_loss: lastVal?.step === step ? lastVal.value : null,
        knowledge: lastKnowledge?.step === step ? lastKnowledge.value : null,
        wallSeconds: Math.round(wallSeconds() * 10) / 10,
        tokensPerSecond: sessionSeconds > 0 && trainedTokens > 0
          ? Math.round(trainedTokens / sessionSeconds)
          : null,
        curves,
        updatedAt: new Date().toISOString(),
      };
      await writeFileAtomic(join(dir, STATUS), JSON.stringify(result, null, 1) + "\n");
      return result;
    };

    const checkpoint = async (status: PretrainStatus["status"]) => {
      const params = await model.readParams();
      const optimizer = await model.readOptimizerState();
      // The training state first: it alone decides where a resumed run continues.
      await writeFileAtomic(
        join(dir, TRAIN_STATE),
        encodeTrainState({
          params,
          m: optimizer.m,
          v: optimizer.v,
          step,
          optimizerStep: optimizer.step,
          rngState: rng.state,
          corpusHash: corpus.hash,
          tokenizerId: corpus.tokenizer.id,
          wallSeconds: wallSeconds(),
          curves,
        }),
      );
      await saveCheckpoint(dir, {
        config: cfg,
        params,
        meta: {
          size: size.name,
          step,
          totalSteps,
          status,
          tokenizer: corpus.tokenizer.id,
          corpusHash: corpus.hash,
          corpusDir: corpus.world.dir,
          seed,
        },
      });
      return await writeStatus(status);
    };

    opts.onStart?.({
      config: cfg,
      params: parameterCount(cfg),
      resumedFromStep,
      totalSteps,
      tokensPerStep: B * T,
      trainTokens: corpus.world.train.length + (corpus.real?.train.length ?? 0),
    });
    if (step === 0) {
      const first = await evaluate();
      opts.onProgress?.({ step, totalSteps, tokens: 0, totalTokens: tokensAt(totalSteps), ...first });
    }
    // Time spent before the loop (corpus, compile, first eval) does not count against throughput.
    wallBefore = wallSeconds();
    started = performance.now();
    while (step < totalSteps) {
      if (opts.signal?.aborted) {
        await checkpoint("partial");
        throw new PretrainInterrupted(step);
      }
      model.setBatch(sampleBatch(corpus, rng, B, T, opts.shuffleSentences ?? true));
      model.trainStep("lm", { lr: learningRateAt(step, totalSteps, lr, warmupSteps) });
      step++;
      const progress: PretrainProgress = {
        step,
        totalSteps,
        tokens: tokensAt(step),
        totalTokens: tokensAt(totalSteps),
      };
      if (step % logEvery === 0 || step === totalSteps) {
        let stats;
        try {
          stats = await model.readStats();
        } catch (err) {
          if (err instanceof NonFiniteError) {
            throw new Error(
              `pretraining ${size.name} diverged near step ${step}: ${err.message}; try a lower lr`,
            );
          }
          throw err;
        }
        curves.train.push({ step, tokens: tokensAt(step), value: stats.loss });
        progress.trainLoss = stats.loss;
      }
      if (step % evalEvery === 0 || step === totalSteps) Object.assign(progress, await evaluate());
      if (step < totalSteps && step % checkpointEvery === 0) await checkpoint("partial");
      opts.onProgress?.(progress);
    }
    const status = await checkpoint("pretrained");
    return { status, dir, cached: false, resumedFromStep };
  } finally {
    probe?.destroy();
    model.destroy();
  }
}

/** The world the lab corpus of these options renders (for knowledge reports). */
export async function labWorld(
  dataDir: string,
  opts?: LabCorpusOptions,
): Promise<{ world: World; tokenizer: Tokenizer }> {
  const corpus = await loadLabCorpus(dataDir, opts);
  if (!corpus.world.world) throw new Error("the lab corpus has no knowledge world");
  return { world: corpus.world.world, tokenizer: corpus.tokenizer };
}
