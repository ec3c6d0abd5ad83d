/**
 * The GPT-2 model on WebGPU: pre-LayerNorm blocks, learned positions, tied input/output embedding,
 * 4× MLP with GELU, biases; a language-model head, and on the last non-padding token a 2-class head
 * and a scalar reward head read in pairs of rows (Bradley–Terry: p(second preferred) = σ(r₂ − r₁)).
 *
 * A model is built for a fixed batch shape (B rows × T tokens); shorter batches are padded with empty
 * rows. Every program (train / eval / features, per head) is a list of dispatch plans created once and
 * replayed inside ONE compute pass of ONE command encoder per step. Nothing is read back inside a step:
 * loss, gradient norm and the non-finite flag land in a small `stats` tensor read only when asked.
 *
 * Forward, per block l (x = residual stream, N = B·T rows):
 *   ln1 = LN(x); qkv = ln1·Wqkv + b; att = attention(qkv); xmid = x + att·Wo + b
 *   ln2 = LN(xmid); fc = ln2·Wfc + b; g = GELU(fc); x' = xmid + g·Wp + b
 * Backward mirrors it in reverse, with one residual-gradient buffer `dres` that each LayerNorm
 * backward adds into. All parameter gradients accumulate into a zeroed flat buffer.
 *
 * Storage bindings: what may exceed the adapter's binding limit (the flat buffers, wte, the logits)
 * is planned in windows (runtime.ts windowRanges): the optimizer and zeroing per window of the flat
 * buffers, the embedding per vocabulary window, and the LM head per tile of logits (a block of rows ×
 * a vocabulary window of wte). The windows are more plans, baked once like the rest.
 */
import {
  type AdamWSettings,
  DEFAULT_ADAMW,
  type GptConfig,
  logitsStride,
  NO_PARAMS,
  NUM_CLASSES,
  type ParamLayout,
  paramLayout,
  type ParamRange,
  paramRange,
} from "./config.ts";
import type { Gpu } from "./device.ts";
import {
  createSharded,
  createTensor,
  type Dispatch,
  encodeDispatches,
  readSharded,
  readTensor,
  type ShardedTensor,
  shardSlice,
  shardWindows,
  slice,
  type Tensor,
  type WindowRange,
  windowRanges,
  writeSharded,
  writeTensor,
} from "./runtime.ts";
import { adapterMemoryLimits, flatShards, modelMemory, planEvalRows } from "./memory.ts";
import { planMatmul, splitKSlices } from "./ops/matmul.ts";
import { planProduct, planProductSplitK } from "./ops/matmul-texture.ts";
import { planGatherLast, planMaskEmpty, planScatterLast, planStatsCarry } from "./ops/rows.ts";
import { planAdd, planFill, planGeluBackward, planGeluForward, planScale } from "./ops/elementwise.ts";
import { groupPositionsByToken, planEmbeddingBackward, planEmbeddingForward } from "./ops/embedding.ts";
import { planLayernormBackward, planLayernormForward } from "./ops/layernorm.ts";
import { planBiasGrad } from "./ops/bias-grad.ts";
import {
  attentionSavedLength,
  type AttentionSpec,
  type AttentionVersion,
  defaultAttentionVersion,
  planAttentionBackward,
  planAttentionForward,
  requireAttentionVersion,
  savesLogSumExp,
} from "./ops/attention.ts";
import { MAX_CLASS_ROWS, planClassCrossEntropy, planLmCrossEntropy } from "./ops/crossentropy.ts";
import {
  adamwStepParams,
  frozenRangeParams,
  gradNormPartials,
  planAdamW,
  planGradNorm,
} from "./ops/optimizer.ts";
import {
  STAT_CORRECT,
  STAT_COUNT,
  STAT_GRAD_NORM_SQ,
  STAT_LOSS,
  STAT_NONFINITE,
  STAT_SKIPPED,
  STAT_STEPS,
  STATS_LENGTH,
} from "./stats.ts";

export type Head = "lm" | "cls" | "reward";

export interface Batch {
  /** B'·T token ids, right-padded (B' ≤ B). */
  tokens: Int32Array;
  /** B' lengths (0 ≤ len ≤ T). */
  lengths: Int32Array;
  /** LM targets, B'·T, −1 = ignored. Default: the next token inside each row. */
  targets?: Int32Array;
  /** Soft class targets, B'·2 (the cls head). */
  classTargets?: Float32Array;
  /**
   * Soft pair targets of the reward head, (B'/2)·2: [t_first, t_second] per pair of rows (2i, 2i+1),
   * t_second = p(second preferred). B' must be even.
   */
  pairTargets?: Float32Array;
}

export type OptimizerSettings = AdamWSettings;
export const DEFAULT_OPTIMIZER: OptimizerSettings = DEFAULT_ADAMW;

export interface StepStats {
  loss: number;
  /** Valid targets (LM positions, classified rows or compared pairs) in the last step. */
  count: number;
  gradNorm: number;
  /** Correct argmax predictions of the cls head (pairs ordered right by the reward head) in the last step. */
  correct: number;
  /** Steps recorded since the previous read. */
  steps: number;
}

/** Raised when a step produced a non-finite loss or gradient norm: its update was skipped. */
export class NonFiniteError extends Error {
  constructor(readonly skipped: number, readonly stats: StepStats) {
    super(
      `non-finite loss or gradient norm: ${skipped} update(s) skipped since the last read ` +
        `(loss ${stats.loss}, grad norm ${stats.gradNorm})`,
    );
    this.name = "NonFiniteError";
  }
}

export type { AttentionVersion };

export interface ModelShape {
  batchSize: number;
  seqLen: number;
  /**
   * Attention kernels: "v1" per-row loops, "v2" batched matmuls, "v3" flash (online softmax,
   * saves a log-sum-exp per row instead of the B·H·T·T probabilities; the default up to head size 128),
   * "v4" v3 reading qkv and dout from textures (the default instead of v3 where the engine reads texture
   * operands; the same bits).
   */
  attention?: AttentionVersion;
  /**
   * Fusions (default true): each residual add into the LayerNorm after it, GELU and its backward into
   * the MLP's matmuls. false keeps them as separate dispatches, for the benchmark's before/after.
   */
  fuse?: boolean;
  /**
   * Weight gradients by matmul v5 (split-K) where K (the batch's rows) is long beside the output
   * (default true); false plans them as one v4 product each, for the benchmark's before/after.
   */
  splitK?: boolean;
  /**
   * An evaluation or prediction of the cls or reward head runs the final block on each row's last token
   * only (default true); false runs it on every row, for the benchmark's before/after.
   */
  lastRows?: boolean;
  /**
   * No gradient, AdamW or backward buffers (default false): the model evaluates (forward passes,
   * features, logits) and refuses to train. GptModel.evaluator builds one on another model's parameters.
   */
  forwardOnly?: boolean;
}

/** LM targets: each position predicts the next token of its own row; the last one is ignored. */
export function nextTokenTargets(tokens: Int32Array, lengths: Int32Array, T: number): Int32Array {
  const targets = new Int32Array(tokens.length).fill(-1);
  for (let b = 0; b < lengths.length; b++) {
    for (let t = 0; t + 1 < lengths[b]; t++) targets[b * T + t] = tokens[b * T + t + 1];
  }
  return targets;
}

interface LayerActs {
  x: Tensor;
  ln1: Tensor;
  mean1: Tensor;
  rstd1: Tensor;
  qkv: Tensor;
  att: Tensor;
  /** Saved for the attention backward: probs B·H·T·T (v1, v2) or log-sum-exp B·H·T (v3, v4). */
  attnSaved: Tensor;
  xmid: Tensor;
  ln2: Tensor;
  mean2: Tensor;
  rstd2: Tensor;
  fc: Tensor;
  gelu: Tensor;
}

/** The tensors one block's projection and MLP read and write: all rows (LayerActs) or the last rows. */
type BlockTailActs = Pick<LayerActs, "x" | "att" | "xmid" | "ln2" | "mean2" | "rstd2" | "fc" | "gelu">;

/**
 * The final block's tensors for each row's last token only (B rows instead of B·T): what an evaluation
 * that reads the last token (cls and reward heads) computes after that block's attention.
 */
interface LastRowActs extends BlockTailActs {
  attProj: Tensor;
  mlpProj: Tensor;
  xFinal: Tensor;
  lnf: Tensor;
  meanF: Tensor;
  rstdF: Tensor;
}

/** A training step; a forward pass with the head's loss (eval); a forward pass to the head's outputs (predict). */
type ProgramKind = "train" | "eval" | "predict";

export class GptModel {
  readonly layout: ParamLayout;
  readonly B: number;
  readonly T: number;
  /**
   * The flat parameter, gradient and AdamW buffers (layout order), each in shards of whole parameters
   * under the adapter's maxBufferSize (kernels/memory.ts flatShards): one buffer unless a model as large
   * as GPT-2 XL exceeds it.
   */
  readonly params: ShardedTensor;
  readonly grads!: ShardedTensor;
  readonly m!: ShardedTensor;
  readonly v!: ShardedTensor;
  /** No training buffers (ModelShape.forwardOnly). */
  readonly forwardOnly: boolean;
  /** The parameters are another model's buffers (evaluator): read, never written or freed here. */
  private readonly borrowsParams: boolean;
  readonly stats: Tensor;
  /** Classification logits of the last cls program (B·2). */
  readonly clsLogits: Tensor;
  /** Rewards of the last reward program, one per row (B). */
  readonly rewards: Tensor;
  /** Last-token features per layer: (L + 2) × B × C (embedding, after each block, after ln_f). */
  readonly features: Tensor;

  private opt: OptimizerSettings = { ...DEFAULT_OPTIMIZER };
  private attentionVersion: AttentionVersion;
  private fuse: boolean;
  private splitK: boolean;
  /** ModelShape.lastRows. */
  private onLastRows: boolean;
  /** The slices of K of every split-K weight gradient (see linearGrads), allocated at first use. */
  private splitScratch?: Tensor;
  private step = 0;
  private programs = new Map<string, Dispatch[]>();
  private gradNorm?: Dispatch[];
  private adamw?: Dispatch[];
  /** Parameters the optimizer leaves untouched (freeze). */
  private frozen: ParamRange = NO_PARAMS;
  /** Values of the matrices weight decay pulls toward (anchorDecay); absent: toward zero. */
  private anchor?: ShardedTensor;
  /** The aux-confidence loss dispatches of each head's training programs, whose α is set per step. */
  private auxCE: Partial<Record<Head, Dispatch[]>> = {};
  /** Share of the last micro-batch accumulated since the last update (accumulateStep); none: no sum open. */
  private gradShare?: number;
  private gradScale?: Dispatch[];
  private rowsInBatch = 0;

  // Inputs.
  private tokens: Tensor;
  private lengths: Tensor;
  private valid: Tensor;
  private targets: Tensor;
  private classTargets: Tensor;
  private pairTargets: Tensor;
  /** i32 per pair: 1 when both rows hold tokens. */
  private pairValid: Tensor;
  private uniqueTokens: Tensor;
  private tokenStarts: Tensor;
  private tokenPositions: Tensor;
  private maxUnique: number;

  // Activations and their gradients.
  private acts: LayerActs[] = [];
  private lastRows: LastRowActs;
  private xFinal: Tensor;
  private lnf: Tensor;
  private meanF: Tensor;
  private rstdF: Tensor;
  private attProj: Tensor;
  private mlpProj: Tensor;
  private logits?: Tensor;
  /**
   * Row stride of the logits: V rounded up to a multiple of 4, so the LM head's three products read
   * them as vec4s (matmul v4) whatever the vocabulary (1538 in the lab corpus, 50257 in GPT-2).
   */
  private readonly logitsStride: number;
  private lmRowLoss: Tensor;
  /** ln_f at each row's last token (B×C), read by the cls and reward heads. */
  private clsHidden: Tensor;
  private clsGrad: Tensor;
  private clsRowLoss: Tensor;
  /** Rewards the pair loss overwrites with d loss / d reward. */
  private rewardGrad: Tensor;
  private pairRowLoss: Tensor;
  private dres!: Tensor;
  private dln!: Tensor;
  private dlnf!: Tensor;
  /** dgelu before GELU' is applied; only without fusion (fused, it lands in dwide2 directly). */
  private dwide?: Tensor;
  private dwide2!: Tensor;
  private dqkv!: Tensor;
  private datt!: Tensor;
  private dclsHidden!: Tensor;
  private ones: Tensor;
  private partials!: Tensor;

  /**
   * `initial`: the starting parameters, or another model's parameter buffers to borrow (a forward-only
   * model only: see evaluator).
   */
  constructor(
    readonly gpu: Gpu,
    readonly cfg: GptConfig,
    initial: Float32Array | ShardedTensor,
    shape: ModelShape,
  ) {
    this.layout = paramLayout(cfg);
    if (initial.length !== this.layout.total) {
      throw new Error(`parameter buffer has ${initial.length} floats, the layout needs ${this.layout.total}`);
    }
    this.forwardOnly = shape.forwardOnly ?? false;
    this.borrowsParams = !(initial instanceof Float32Array);
    if (this.borrowsParams && !this.forwardOnly) {
      throw new Error("a model on borrowed parameters must be forward-only (GptModel.evaluator)");
    }
    this.fuse = shape.fuse ?? true;
    this.splitK = shape.splitK ?? true;
    this.onLastRows = shape.lastRows ?? true;
    const B = this.B = shape.batchSize;
    const T = this.T = shape.seqLen;
    // v3 (fused, no T×T tensor) is the fastest on buffers on every shape measured, where the head fits it.
    const heads = { gpu, B, T, C: cfg.width, H: cfg.heads };
    this.attentionVersion = shape.attention ?? defaultAttentionVersion(cfg.width / cfg.heads, heads);
    requireAttentionVersion(this.attentionVersion);
    if (!(B >= 1 && T >= 1 && T <= cfg.contextLength)) {
      throw new Error(`batch shape ${B}×${T} is invalid for context length ${cfg.contextLength}`);
    }
    const { width: C, layers: L, heads: H } = cfg;
    const N = B * T;
    const t = (n: number, label: string) => createTensor(gpu, n, label);
    const P = this.layout.total;
    const shards = flatShards(this.layout, gpu.limits.maxBufferSize);
    this.params = initial instanceof Float32Array
      ? createSharded(gpu, P, shards, "params", initial)
      : initial;
    if (!this.forwardOnly) {
      this.grads = createSharded(gpu, P, shards, "grads");
      this.m = createSharded(gpu, P, shards, "adam m");
      this.v = createSharded(gpu, P, shards, "adam v");
      this.partials = t(gradNormPartials(P), "grad norm partials");
    }
    this.stats = t(STATS_LENGTH, "stats");

    this.tokens = t(N, "tokens");
    this.lengths = t(B, "lengths");
    this.valid = t(B, "valid rows");
    this.targets = t(N, "targets");
    this.classTargets = t(B * NUM_CLASSES, "class targets");
    // At least one pair: a zero-length write panics Deno's WebGPU (models of batch size 1).
    const pairs = Math.max(1, Math.floor(B / 2));
    this.pairTargets = t(pairs * 2, "pair targets");
    this.pairValid = t(pairs, "valid pairs");
    this.maxUnique = Math.min(cfg.vocabSize, N);
    this.logitsStride = logitsStride(cfg.vocabSize);
    this.uniqueTokens = t(this.maxUnique, "unique tokens");
    this.tokenStarts = t(this.maxUnique + 1, "token starts");
    this.tokenPositions = t(N, "token positions");

    for (let l = 0; l < L; l++) {
      this.acts.push({
        x: t(N * C, `x${l}`),
        ln1: t(N * C, `ln1.${l}`),
        mean1: t(N, `mean1.${l}`),
        rstd1: t(N, `rstd1.${l}`),
        qkv: t(N * 3 * C, `qkv${l}`),
        att: t(N * C, `att${l}`),
        attnSaved: t(
          attentionSavedLength(this.attentionVersion, { B, H, T }),
          `${savesLogSumExp(this.attentionVersion) ? "lse" : "probs"}${l}`,
        ),
        xmid: t(N * C, `xmid${l}`),
        ln2: t(N * C, `ln2.${l}`),
        mean2: t(N, `mean2.${l}`),
        rstd2: t(N, `rstd2.${l}`),
        fc: t(N * 4 * C, `fc${l}`),
        gelu: t(N * 4 * C, `gelu${l}`),
      });
    }
    this.xFinal = t(N * C, `x${L}`);
    this.lnf = t(N * C, "lnf");
    this.meanF = t(N, "meanf");
    this.rstdF = t(N, "rstdf");
    this.attProj = t(N * C, "att proj");
    this.mlpProj = t(N * C, "mlp proj");
    this.lmRowLoss = t(N, "lm row loss");
    this.clsHidden = t(B * C, "cls hidden");
    const last = (n: number, label: string) => t(n, `last rows ${label}`);
    this.lastRows = {
      x: last(B * C, "x"),
      att: last(B * C, "att"),
      attProj: last(B * C, "att proj"),
      xmid: last(B * C, "xmid"),
      ln2: last(B * C, "ln2"),
      mean2: last(B, "mean2"),
      rstd2: last(B, "rstd2"),
      fc: last(B * 4 * C, "fc"),
      gelu: last(B * 4 * C, "gelu"),
      mlpProj: last(B * C, "mlp proj"),
      xFinal: last(B * C, "x final"),
      lnf: last(B * C, "lnf"),
      meanF: last(B, "meanf"),
      rstdF: last(B, "rstdf"),
    };
    this.clsLogits = t(B * NUM_CLASSES, "cls logits");
    this.clsGrad = t(B * NUM_CLASSES, "cls dlogits");
    this.clsRowLoss = t(B, "cls row loss");
    this.rewards = t(B, "rewards");
    this.rewardGrad = t(B, "drewards");
    this.pairRowLoss = t(pairs, "pair row loss");
    if (!this.forwardOnly) {
      this.dres = t(N * C, "dres");
      this.dln = t(N * C, "dln");
      this.dlnf = t(N * C, "dlnf");
      if (!this.fuse) this.dwide = t(N * 4 * C, "dgelu");
      this.dwide2 = t(N * 4 * C, "dfc");
      this.dqkv = t(N * 3 * C, "dqkv");
      this.datt = t(N * C, "datt");
      this.dclsHidden = t(B * C, "cls dhidden");
    }
    this.ones = createTensor(gpu, N, "ones", new Float32Array(N).fill(1));
    this.features = t((L + 2) * B * C, "features");
  }

  /**
   * A forward-only model of `rows` rows on this model's parameter buffers: it always reads the current
   * parameters (no copy) and holds only forward buffers. Evaluating many examples per dispatch is
   * cheaper than at the training batch (fewer, fuller dispatches). The caller destroys it; this model's
   * parameters stay.
   */
  evaluator(rows: number): GptModel {
    return new GptModel(this.gpu, this.cfg, this.params, {
      batchSize: rows,
      seqLen: this.T,
      attention: this.attentionVersion,
      fuse: this.fuse,
      forwardOnly: true,
    });
  }

  /**
   * The model to evaluate a set of `examples` on beside this one: an evaluator of up to EVAL_TOKENS
   * tokens a batch, whole examples, as many rows as fit beside this model's memory (planEvalRows), or
   * this model itself when no more rows fit. The caller destroys an evaluator that is not this model.
   */
  evaluatorFor(set: { examples: number; rowsPerExample?: number }): GptModel {
    const limits = adapterMemoryLimits(this.gpu);
    const need = modelMemory(this.cfg, {
      batchSize: this.B,
      seqLen: this.T,
      maxBufferSize: limits.maxBufferSize,
    });
    const rows = planEvalRows(this.cfg, { seqLen: this.T, trainRows: this.B, ...set }, limits, need);
    return rows > this.B ? this.evaluator(rows) : this;
  }

  /** Throws, naming `what`, on a forward-only model. */
  private requireTraining(what: string): void {
    if (this.forwardOnly) {
      throw new Error(`${what}: this model is forward-only (built to evaluate); it has no training buffers`);
    }
  }

  /** A parameter of the flat buffer as a tensor. */
  param(name: string): Tensor {
    const spec = this.layout.byName.get(name);
    if (!spec) throw new Error(`unknown parameter ${name}`);
    return shardSlice(this.params, spec.offset, spec.size, name);
  }

  private grad(name: string): Tensor {
    const spec = this.layout.byName.get(name)!;
    return shardSlice(this.grads, spec.offset, spec.size, "d" + name);
  }

  private x(l: number): Tensor {
    return l < this.cfg.layers ? this.acts[l].x : this.xFinal;
  }

  setOptimizer(settings: Partial<OptimizerSettings>): void {
    this.opt = { ...this.opt, ...settings };
  }

  /**
   * Freezes the named parameters (neighbours in the flat buffer, e.g. EMBEDDING_PARAMS): AdamW neither
   * updates nor decays them and keeps their moments, and the gradient norm leaves them out, as for
   * torch parameters with requires_grad = False. [] unfreezes everything.
   */
  freeze(names: readonly string[]): void {
    this.requireTraining("freeze");
    this.frozen = paramRange(this.layout, names);
    for (const d of [...(this.gradNorm ?? []), ...(this.adamw ?? [])]) {
      d.setParams(frozenRangeParams(this.frozen));
    }
  }

  /**
   * From now on weight decay pulls the matrices toward their current values instead of toward zero
   * (L2-SP: p −= lr·wd·(p − p0)): copies them on the device into an anchor buffer allocated here.
   * `false` frees the anchor: decay toward zero again.
   */
  anchorDecay(on = true): void {
    this.requireTraining("anchorDecay");
    if (!on && !this.anchor) return;
    for (const s of this.anchor?.shards ?? []) s.tensor.buffer.destroy();
    this.anchor = undefined;
    if (on) {
      // The matrices only: the params' shards that start before decayEnd, cut at it.
      const n = this.layout.decayEnd;
      const starts = this.params.shards.map((s) => s.start).filter((start) => start < n);
      this.anchor = createSharded(this.gpu, n, starts, "decay anchor");
      const encoder = this.gpu.device.createCommandEncoder();
      this.anchor.shards.forEach(({ tensor }, i) => {
        const from = this.params.shards[i].tensor;
        encoder.copyBufferToBuffer(from.buffer, from.offset * 4, tensor.buffer, 0, tensor.length * 4);
      });
      this.gpu.device.queue.submit([encoder.finish()]);
    }
    // The update binds the anchor (or not): plan it again, and the training programs that hold it.
    this.adamw = undefined;
    for (const key of [...this.programs.keys()]) if (key.startsWith("train:")) this.programs.delete(key);
  }

  /** Uploads a batch (validated on the CPU: ids, lengths, targets). Queued; no GPU wait. */
  setBatch(batch: Batch): void {
    const { B, T } = this;
    const V = this.cfg.vocabSize;
    const rows = batch.lengths.length;
    if (rows > B) throw new Error(`batch has ${rows} rows; this model was built for ${B}`);
    if (batch.tokens.length !== rows * T) {
      throw new Error(`tokens must hold rows×T = ${rows}×${T} ids, got ${batch.tokens.length}`);
    }
    const tokens = new Int32Array(B * T);
    const lengths = new Int32Array(B);
    for (let b = 0; b < rows; b++) {
      const len = batch.lengths[b];
      if (!Number.isInteger(len) || len < 0 || len > T) {
        throw new Error(`row ${b}: length ${len} is outside 0…${T}`);
      }
      lengths[b] = len;
      for (let i = 0; i < T; i++) {
        const id = batch.tokens[b * T + i];
        if (i < len && !(Number.isInteger(id) && id >= 0 && id < V)) {
          throw new Error(`token id ${id} at row ${b}, position ${i} is out of range 0…${V - 1}`);
        }
        tokens[b * T + i] = i < len ? id : 0;
      }
    }
    const targets = new Int32Array(B * T).fill(-1);
    targets.set(batch.targets ?? nextTokenTargets(batch.tokens, batch.lengths, T));
    for (let i = 0; i < rows * T; i++) {
      if (targets[i] >= V || targets[i] < -1) {
        throw new Error(
          `target id ${targets[i]} at row ${Math.floor(i / T)}, position ${i % T} is out of range`,
        );
      }
    }
    const classTargets = new Float32Array(B * NUM_CLASSES);
    if (batch.classTargets) {
      if (batch.classTargets.length !== rows * NUM_CLASSES) {
        throw new Error(
          `classTargets must hold rows×2 = ${rows * 2} values, got ${batch.classTargets.length}`,
        );
      }
      classTargets.set(batch.classTargets);
    }
    const pairTargets = this.pairTargetsOf(batch, rows);
    const valid = lengths.map((len) => (len > 0 ? 1 : 0));
    const pairValid = new Int32Array(this.pairValid.length).map((_, i) =>
      lengths[2 * i] > 0 && lengths[2 * i + 1] > 0 ? 1 : 0
    );
    const groups = groupPositionsByToken(tokens, this.maxUnique);
    const g = this.gpu;
    writeTensor(g, this.tokens, tokens);
    writeTensor(g, this.lengths, lengths);
    writeTensor(g, this.valid, valid);
    writeTensor(g, this.targets, targets);
    writeTensor(g, this.classTargets, classTargets);
    writeTensor(g, this.pairTargets, pairTargets);
    writeTensor(g, this.pairValid, pairValid);
    writeTensor(g, this.uniqueTokens, groups.unique);
    writeTensor(g, this.tokenStarts, groups.starts);
    writeTensor(g, this.tokenPositions, groups.positions);
    this.rowsInBatch = rows;
  }

  /** The batch's pair targets, checked, padded to the model's pairs (zeros without pairTargets). */
  private pairTargetsOf(batch: Batch, rows: number): Float32Array {
    const padded = new Float32Array(this.pairTargets.length);
    const given = batch.pairTargets;
    if (!given) return padded;
    if (batch.classTargets) {
      throw new Error("a batch holds classTargets (cls head) or pairTargets (reward head), not both");
    }
    if (rows % 2 !== 0) {
      throw new Error(`pairTargets need an even number of rows (pairs 2i, 2i+1), got ${rows} rows`);
    }
    if (given.length !== rows) {
      throw new Error(`pairTargets must hold (rows/2)·2 = ${rows} values, got ${given.length}`);
    }
    padded.set(given);
    return padded;
  }

  // ---- program construction (once per program) -------------------------------------------------

  /**
   * The forward pass. With `lastRows` (an evaluation whose head reads only each row's last token: cls
   * and reward) the final block's attention still runs over every position, but only the last token's
   * row of each sequence goes on through the projection, the MLP and ln_f, into clsHidden: the other
   * rows of that block feed nothing the head reads.
   */
  private forwardTrunk(lastRows = false): Dispatch[] {
    const g = this.gpu;
    const { width: C, layers: L, heads: H } = this.cfg;
    const { B, T } = this;
    const N = B * T;
    const out: Dispatch[] = planEmbeddingForward(g, {
      tokens: this.tokens,
      wte: this.param("wte.weight"),
      wpe: this.param("wpe.weight"),
      out: this.x(0),
      B,
      T,
      C,
      label: "embedding",
    });
    for (let l = 0; l < L; l++) {
      const a = this.acts[l];
      const p = `h.${l}.`;
      out.push(
        ...this.layernorm(
          p + "ln_1",
          a.x,
          a.ln1,
          a.mean1,
          a.rstd1,
          l > 0 ? this.mlpResidual(l - 1) : undefined,
        ),
        ...this.dense(`qkv.${l}`, p + "attn.c_attn", a.ln1, a.qkv, N, C, 3 * C),
        ...this.attentionForward({
          qkv: a.qkv,
          lengths: this.lengths,
          out: a.att,
          saved: a.attnSaved,
          B,
          T,
          C,
          H,
          label: `attention.${l}`,
        }),
      );
      if (lastRows && l === L - 1) return [...out, ...this.lastRowsTail(a)];
      out.push(
        ...this.blockTail(l, a, N, { attProj: this.attProj, mlpProj: this.mlpProj, next: this.x(l + 1) }),
      );
    }
    out.push(
      ...this.layernorm("ln_f", this.xFinal, this.lnf, this.meanF, this.rstdF, this.mlpResidual(L - 1)),
    );
    return out;
  }

  /**
   * Block l after its attention, on `rows` rows: attention projection, residual, ln_2, MLP, residual
   * (the residual adds fused into the LayerNorm after them, or into `next`).
   */
  private blockTail(
    l: number,
    a: BlockTailActs,
    rows: number,
    t: { attProj: Tensor; mlpProj: Tensor; next: Tensor },
  ): Dispatch[] {
    const g = this.gpu;
    const C = this.cfg.width;
    const p = `h.${l}.`;
    return [
      ...this.dense(`attn proj.${l}`, p + "attn.c_proj", a.att, t.attProj, rows, C, C),
      ...this.residualForward(a.xmid, a.x, t.attProj, rows, `residual 1.${l}`),
      ...this.layernorm(
        p + "ln_2",
        a.xmid,
        a.ln2,
        a.mean2,
        a.rstd2,
        { stream: a.x, branch: t.attProj },
        rows,
      ),
      ...this.dense(`fc.${l}`, p + "mlp.c_fc", a.ln2, a.fc, rows, C, 4 * C, this.fuse ? a.gelu : undefined),
      ...(this.fuse ? [] : [planGeluForward(g, a.fc, a.gelu, rows * 4 * C, `gelu.${l}`)]),
      ...this.dense(`mlp proj.${l}`, p + "mlp.c_proj", a.gelu, t.mlpProj, rows, 4 * C, C),
      ...this.residualForward(t.next, a.xmid, t.mlpProj, rows, `residual 2.${l}`),
    ];
  }

  /**
   * y = x · `name`.weight + `name`.bias on `rows` rows (inW → outW); with `gelu`, GELU(y) also into it
   * (the fused epilogue).
   */
  private dense(
    label: string,
    name: string,
    x: Tensor,
    y: Tensor,
    rows: number,
    inW: number,
    outW: number,
    gelu?: Tensor,
  ): Dispatch[] {
    return planProduct(this.gpu, {
      label,
      a: x,
      b: this.param(`${name}.weight`),
      bias: this.param(`${name}.bias`),
      c: y,
      M: rows,
      N: outW,
      K: inW,
      epilogue: gelu ? { kind: "gelu", aux: gelu } : undefined,
    });
  }

  /** The final block after its attention, and ln_f, on each row's last token; ln_f into clsHidden. */
  private lastRowsTail(a: LayerActs): Dispatch[] {
    const { B, T } = this;
    const C = this.cfg.width;
    const L = this.cfg.layers;
    const r = this.lastRows;
    const gather = (x: Tensor, rows: Tensor, label: string) =>
      planGatherLast(this.gpu, { label, x, rows, lengths: this.lengths, B, T, C });
    return [
      gather(a.att, r.att, `last rows att.${L - 1}`),
      gather(a.x, r.x, `last rows x.${L - 1}`),
      ...this.blockTail(L - 1, r, B, { attProj: r.attProj, mlpProj: r.mlpProj, next: r.xFinal }),
      ...this.layernorm("ln_f", r.xFinal, r.lnf, r.meanF, r.rstdF, { stream: r.xmid, branch: r.mlpProj }, B),
      // As the gather: an empty row's hidden state is zero.
      planMaskEmpty(this.gpu, {
        label: "cls hidden",
        x: r.lnf,
        rows: this.clsHidden,
        lengths: this.lengths,
        B,
        C,
      }),
    ];
  }

  /** The residual add x(l+1) = xmid + mlp proj of block l, consumed by the LayerNorm after it. */
  private mlpResidual(l: number): { stream: Tensor; branch: Tensor } {
    return { stream: this.acts[l].xmid, branch: this.mlpProj };
  }

  /** A residual add as its own dispatch, or none when the next LayerNorm computes it (fused). */
  private residualForward(
    out: Tensor,
    stream: Tensor,
    branch: Tensor,
    rows: number,
    label: string,
  ): Dispatch[] {
    const n = rows * this.cfg.width;
    return this.fuse ? [] : [planAdd(this.gpu, out, stream, branch, n, label)];
  }

  /** `saved` is the probs tensor (v1, v2) or the log-sum-exp tensor (v3) of the layer. */
  private attentionForward(spec: Omit<AttentionSpec, "version">): Dispatch[] {
    return planAttentionForward(this.gpu, { ...spec, version: this.attentionVersion });
  }

  private attentionBackward(
    spec: Omit<AttentionSpec, "version"> & { dout: Tensor; dqkv: Tensor },
  ): Dispatch[] {
    return planAttentionBackward(this.gpu, { ...spec, version: this.attentionVersion });
  }

  /**
   * LayerNorm `name` ("h.0.ln_1", "ln_f") of the model over `rows` rows (all B·T by default): y = LN(x),
   * saving mean and rstd. With `residual` (and fusion on) it first computes x = stream + branch in the
   * same pass.
   */
  private layernorm(
    name: string,
    x: Tensor,
    y: Tensor,
    mean: Tensor,
    rstd: Tensor,
    residual?: { stream: Tensor; branch: Tensor },
    rows = this.B * this.T,
  ): Dispatch[] {
    const { tensor, gamma, beta } = this.gainAndBias(this.params, name);
    return planLayernormForward(this.gpu, {
      residual: this.fuse ? residual : undefined,
      x,
      params: tensor,
      gammaOffset: gamma,
      betaOffset: beta,
      y,
      mean,
      rstd,
      N: rows,
      C: this.cfg.width,
      label: name,
    });
  }

  /** Backward of LayerNorm `name`: dres (+)= dx, and its gain and bias gradients. */
  private layernormBackward(
    name: string,
    dy: Tensor,
    x: Tensor,
    mean: Tensor,
    rstd: Tensor,
    accumulateDx: boolean,
  ): Dispatch[] {
    const p = this.gainAndBias(this.params, name);
    const d = this.gainAndBias(this.grads, name);
    return planLayernormBackward(this.gpu, {
      dy,
      x,
      mean,
      rstd,
      params: p.tensor,
      gammaOffset: p.gamma,
      dx: this.dres,
      accumulateDx,
      grads: d.tensor,
      dgammaOffset: d.gamma,
      dbetaOffset: d.beta,
      N: this.B * this.T,
      C: this.cfg.width,
      label: name + " backward",
    });
  }

  /**
   * The part of a flat buffer (params or grads) holding LayerNorm `name`'s gain and bias, with their
   * offsets in it: bound instead of the whole buffer, which may exceed one storage binding.
   */
  private gainAndBias(flat: ShardedTensor, name: string): { tensor: Tensor; gamma: number; beta: number } {
    const gain = this.layout.byName.get(`${name}.weight`)!;
    const bias = this.layout.byName.get(`${name}.bias`)!;
    const start = Math.min(gain.offset, bias.offset);
    const end = Math.max(gain.offset + gain.size, bias.offset + bias.size);
    return {
      tensor: shardSlice(flat, start, end - start),
      gamma: gain.offset - start,
      beta: bias.offset - start,
    };
  }

  /** Gradient of a bias: column sums of dy (N' rows × width). */
  private biasGrad(dy: Tensor, rows: number, width: number, name: string): Dispatch[] {
    return planBiasGrad(this.gpu, {
      label: `d${name}`,
      dy,
      db: this.grad(name),
      rows,
      width,
      ones: this.ones,
    });
  }

  /** dW += xᵀ · dy and db += Σ dy for y = x · W + b. */
  private linearGrads(x: Tensor, dy: Tensor, rows: number, inW: number, outW: number, w: string, b: string) {
    const spec = {
      label: `d${w}`,
      a: x,
      b: dy,
      c: this.grad(w),
      M: inW,
      N: outW,
      K: rows,
      transA: true,
      beta: 1,
    };
    const splits = this.splitK ? splitKSlices(inW, outW, rows) : 1;
    // One scratch serves every split product: they run one after another in the step's pass.
    const scratch = splits > 1
      ? (this.splitScratch ??= createTensor(this.gpu, 2 * 4 * this.cfg.width ** 2, "split-K slices"))
      : undefined;
    return [
      ...(scratch ? planProductSplitK(this.gpu, { ...spec, splits, scratch }) : planProduct(this.gpu, spec)),
      ...this.biasGrad(dy, rows, outW, b),
    ];
  }

  private backwardTrunk(): Dispatch[] {
    const g = this.gpu;
    const { width: C, layers: L, heads: H } = this.cfg;
    const { B, T } = this;
    const N = B * T;
    const out: Dispatch[] = [
      ...this.layernormBackward("ln_f", this.dlnf, this.xFinal, this.meanF, this.rstdF, false),
    ];
    for (let l = L - 1; l >= 0; l--) {
      const a = this.acts[l];
      const p = `h.${l}.`;
      out.push(
        // MLP: x' = xmid + GELU(ln2·Wfc + b)·Wp + b
        ...this.linearGrads(a.gelu, this.dres, N, 4 * C, C, p + "mlp.c_proj.weight", p + "mlp.c_proj.bias"),
        ...planProduct(g, {
          label: `dgelu.${l}`,
          a: this.dres,
          b: this.param(p + "mlp.c_proj.weight"),
          // Fused: dgelu · GELU'(fc) lands in dwide2 directly.
          c: this.dwide ?? this.dwide2,
          M: N,
          N: 4 * C,
          K: C,
          transB: true,
          epilogue: this.fuse ? { kind: "gelu-grad", aux: a.fc } : undefined,
        }),
        ...(this.fuse
          ? []
          : [planGeluBackward(g, a.fc, this.dwide!, this.dwide2, N * 4 * C, `gelu backward.${l}`)]),
        ...this.linearGrads(a.ln2, this.dwide2, N, C, 4 * C, p + "mlp.c_fc.weight", p + "mlp.c_fc.bias"),
        ...planProduct(g, {
          label: `dln_2.${l}`,
          a: this.dwide2,
          b: this.param(p + "mlp.c_fc.weight"),
          c: this.dln,
          M: N,
          N: C,
          K: 4 * C,
          transB: true,
        }),
        ...this.layernormBackward(p + "ln_2", this.dln, a.xmid, a.mean2, a.rstd2, true),
        // Attention: xmid = x + attention(ln1·Wqkv + b)·Wo + b
        ...this.linearGrads(a.att, this.dres, N, C, C, p + "attn.c_proj.weight", p + "attn.c_proj.bias"),
        ...planProduct(g, {
          label: `datt.${l}`,
          a: this.dres,
          b: this.param(p + "attn.c_proj.weight"),
          c: this.datt,
          M: N,
          N: C,
          K: C,
          transB: true,
        }),
        ...this.attentionBackward({
          dout: this.datt,
          qkv: a.qkv,
          out: a.att,
          saved: a.attnSaved,
          lengths: this.lengths,
          dqkv: this.dqkv,
          B,
          T,
          C,
          H,
          label: `attention backward.${l}`,
        }),
        ...this.linearGrads(a.ln1, this.dqkv, N, C, 3 * C, p + "attn.c_attn.weight", p + "attn.c_attn.bias"),
        ...planProduct(g, {
          label: `dln_1.${l}`,
          a: this.dqkv,
          b: this.param(p + "attn.c_attn.weight"),
          c: this.dln,
          M: N,
          N: C,
          K: 3 * C,
          transB: true,
        }),
        ...this.layernormBackward(p + "ln_1", this.dln, a.x, a.mean1, a.rstd1, true),
      );
    }
    out.push(...planEmbeddingBackward(g, {
      dx: this.dres,
      unique: this.uniqueTokens,
      starts: this.tokenStarts,
      positions: this.tokenPositions,
      dwte: this.grad("wte.weight"),
      dwpe: this.grad("wpe.weight"),
      B,
      T,
      C,
      maxUnique: this.maxUnique,
      accumulate: true,
      label: "embedding backward",
    }));
    return out;
  }

  /**
   * The LM head's tiles: blocks of rows whose logits fit one binding × vocabulary windows of wte
   * (one tile of each when everything fits). Each tile's logits are a strided block (row stride
   * logitsStride); vocabulary windows start at multiples of 4, so every tile's rows stay 4-aligned.
   */
  private lmTiles(): { rows: WindowRange[]; vocab: WindowRange[] } {
    const { width: C, vocabSize: V } = this.cfg;
    return {
      rows: windowRanges(this.gpu, this.B * this.T, this.logitsStride, "lm head: logits"),
      vocab: windowRanges(this.gpu, V, C, "lm head: wte", 4),
    };
  }

  /** The logits of a tile: rows r × vocabulary window v, inside the N × logitsStride logits. */
  private logitsTile(r: WindowRange, v: WindowRange): Tensor {
    const ld = this.logitsStride;
    return slice(this.logits!, r.start * ld + v.start, (r.length - 1) * ld + v.length, "logits tile");
  }

  /** logits = lnf · wteᵀ, tile by tile. */
  private lmLogits(): Dispatch[] {
    const { width: C } = this.cfg;
    this.logits ??= createTensor(this.gpu, this.B * this.T * this.logitsStride, "logits");
    const wte = this.param("wte.weight");
    const { rows, vocab } = this.lmTiles();
    return rows.flatMap((r) =>
      vocab.flatMap((v) =>
        planProduct(this.gpu, {
          label: "lm head",
          a: slice(this.lnf, r.start * C, r.length * C),
          b: slice(wte, v.start * C, v.length * C),
          c: this.logitsTile(r, v),
          M: r.length,
          N: v.length,
          K: C,
          transB: true,
          ldc: this.logitsStride,
        })
      )
    );
  }

  /** LM head: logits = lnf · wteᵀ, then fused softmax-CE that leaves dlogits in place. */
  private lmHead(backward: boolean): Dispatch[] {
    const g = this.gpu;
    const { width: C, vocabSize: V } = this.cfg;
    const N = this.B * this.T;
    const out: Dispatch[] = [
      ...this.lmLogits(),
      ...planLmCrossEntropy(g, {
        logits: this.logits!,
        targets: this.targets,
        rowLoss: this.lmRowLoss,
        stats: this.stats,
        rows: N,
        V,
        ld: this.logitsStride,
        label: "lm loss",
      }),
    ];
    if (!backward) return out;
    const wte = this.param("wte.weight");
    const dwte = this.grad("wte.weight");
    const { rows, vocab } = this.lmTiles();
    for (const v of vocab) {
      for (const r of rows) {
        // dwte += dlogitsᵀ · lnf, one block of rows at a time (the embedding backward adds its part later)
        out.push(...planProduct(g, {
          label: "dwte (head)",
          a: this.logitsTile(r, v),
          b: slice(this.lnf, r.start * C, r.length * C),
          c: slice(dwte, v.start * C, v.length * C),
          M: v.length,
          N: C,
          K: r.length,
          transA: true,
          lda: this.logitsStride,
          beta: 1,
        }));
      }
    }
    for (const r of rows) {
      // dlnf = dlogits · wte, summed over the vocabulary windows
      vocab.forEach((v, i) =>
        out.push(...planProduct(g, {
          label: "dlnf",
          a: this.logitsTile(r, v),
          b: slice(wte, v.start * C, v.length * C),
          c: slice(this.dlnf, r.start * C, r.length * C),
          M: r.length,
          N: C,
          K: v.length,
          lda: this.logitsStride,
          beta: i === 0 ? 0 : 1,
        }))
      );
    }
    return out;
  }

  /** ln_f at each row's last non-padding token into clsHidden (zeros for empty rows). */
  private gatherLastHidden(label: string): Dispatch {
    const { B, T } = this;
    return planGatherLast(this.gpu, {
      label,
      x: this.lnf,
      rows: this.clsHidden,
      lengths: this.lengths,
      B,
      T,
      C: this.cfg.width,
    });
  }

  /** dlnf = 0 except dclsHidden at each row's last token: the head's gradient into the trunk. */
  private scatterLastHidden(label: string): Dispatch[] {
    const { B, T } = this;
    return [
      planFill(this.gpu, this.dlnf, 0, "zero dlnf"),
      planScatterLast(this.gpu, {
        label,
        x: this.dlnf,
        rows: this.dclsHidden,
        lengths: this.lengths,
        B,
        T,
        C: this.cfg.width,
      }),
    ];
  }

  /**
   * Classification head on the last non-padding token of each row (`gathered`: the trunk ran with
   * lastRows and wrote clsHidden). A prediction stops at the logits.
   */
  private clsHead(kind: ProgramKind, aux: boolean, gathered: boolean): Dispatch[] {
    const g = this.gpu;
    const backward = kind === "train";
    const { width: C } = this.cfg;
    const { B } = this;
    const linear = (c: Tensor, label: string) =>
      planMatmul(g, {
        label,
        a: this.clsHidden,
        b: this.param("cls.weight"),
        bias: this.param("cls.bias"),
        c,
        M: B,
        N: NUM_CLASSES,
        K: C,
      });
    const readout = [
      ...(gathered ? [] : [this.gatherLastHidden("cls gather")]),
      linear(this.clsLogits, "cls head"),
    ];
    if (kind === "predict") return readout;
    const ce = planClassCrossEntropy(g, {
      logits: this.clsGrad,
      targets: this.classTargets,
      valid: this.valid,
      rowLoss: this.clsRowLoss,
      stats: this.stats,
      B,
      label: aux ? "cls loss (aux)" : "cls loss",
      aux,
    });
    if (aux && backward) (this.auxCE.cls ??= []).push(...ce);
    const out: Dispatch[] = [...readout, linear(this.clsGrad, "cls head (for loss)"), ...ce];
    if (backward) {
      out.push(
        ...this.linearGrads(this.clsHidden, this.clsGrad, B, C, NUM_CLASSES, "cls.weight", "cls.bias"),
        planMatmul(g, {
          label: "dcls hidden",
          a: this.clsGrad,
          b: this.param("cls.weight"),
          c: this.dclsHidden,
          M: B,
          N: C,
          K: NUM_CLASSES,
          transB: true,
        }),
        ...this.scatterLastHidden("cls scatter"),
      );
    }
    return out;
  }

  /**
   * Reward head: r = h·reward.weight per row (h = ln_f at the last token). Rows 2i, 2i+1 form pair i;
   * its rewards read as 2-class logits [r_first, r_second] make the class cross-entropy the
   * Bradley–Terry loss with soft targets: softmax([r₁, r₂])₂ = σ(r₂ − r₁). Pairs with an empty row
   * are left out.
   */
  private rewardHead(kind: ProgramKind, aux: boolean, gathered: boolean): Dispatch[] {
    const g = this.gpu;
    const backward = kind === "train";
    const { width: C } = this.cfg;
    const { B } = this;
    if (B % 2 !== 0) {
      throw new Error(
        `the reward head reads rows in pairs (2i, 2i+1): build the model with an even batchSize, got ${B}`,
      );
    }
    if (B / 2 > MAX_CLASS_ROWS) {
      throw new Error(
        `the reward head's batch of ${
          B / 2
        } pairs exceeds the pair loss's limit of ${MAX_CLASS_ROWS} pairs ` +
          `(batchSize ≤ ${2 * MAX_CLASS_ROWS})`,
      );
    }
    const reward = this.param("reward.weight");
    const linear = (c: Tensor, label: string) =>
      planMatmul(g, { label, a: this.clsHidden, b: reward, c, M: B, N: 1, K: C });
    const readout = [
      ...(gathered ? [] : [this.gatherLastHidden("reward gather")]),
      linear(this.rewards, "reward head"),
    ];
    if (kind === "predict") return readout;
    const ce = planClassCrossEntropy(g, {
      logits: this.rewardGrad,
      targets: this.pairTargets,
      valid: this.pairValid,
      rowLoss: this.pairRowLoss,
      stats: this.stats,
      B: B / 2,
      label: aux ? "pair loss (aux)" : "pair loss",
      aux,
    });
    if (aux && backward) (this.auxCE.reward ??= []).push(...ce);
    const out: Dispatch[] = [...readout, linear(this.rewardGrad, "reward head (for loss)"), ...ce];
    if (backward) {
      out.push(
        // dreward.weight += hᵀ·dr; dh = dr·reward.weightᵀ (rank one: K = 1).
        planMatmul(g, {
          label: "dreward.weight",
          a: this.clsHidden,
          b: this.rewardGrad,
          c: this.grad("reward.weight"),
          M: C,
          N: 1,
          K: B,
          transA: true,
          beta: 1,
        }),
        planMatmul(g, {
          label: "dreward hidden",
          a: this.rewardGrad,
          b: reward,
          c: this.dclsHidden,
          M: B,
          N: C,
          K: 1,
          transB: true,
        }),
        ...this.scatterLastHidden("reward scatter"),
      );
    }
    return out;
  }

  private headDispatches(head: Head, kind: ProgramKind, aux: boolean, gathered: boolean): Dispatch[] {
    if (head === "lm") {
      if (aux) throw new Error("auxAlpha applies to the cls and reward heads, not to the lm head");
      if (kind === "predict") {
        throw new Error(
          "predictStep reads the cls or reward head; the LM head's are evalStep and logitsStep",
        );
      }
      return this.lmHead(kind === "train");
    }
    return head === "cls" ? this.clsHead(kind, aux, gathered) : this.rewardHead(kind, aux, gathered);
  }

  private optimizer(): Dispatch[] {
    const g = this.gpu;
    const P = this.layout.total;
    this.gradNorm ??= planGradNorm(g, {
      grads: this.grads,
      n: P,
      stats: this.stats,
      partials: this.partials,
      frozen: this.frozen,
      label: "grad norm",
    });
    this.adamw ??= planAdamW(g, {
      params: this.params,
      grads: this.grads,
      m: this.m,
      v: this.v,
      n: P,
      decayEnd: this.layout.decayEnd,
      anchor: this.anchor,
      frozen: this.frozen,
      stats: this.stats,
      label: "adamw",
    });
    return [...this.gradNorm, ...this.adamw];
  }

  private program(kind: ProgramKind, head: Head, aux = false): Dispatch[] {
    const key = `${kind}:${head}:${aux}`;
    let prog = this.programs.get(key);
    if (prog) return prog;
    if (kind === "train") this.requireTraining("a training step");
    const g = this.gpu;
    const train = kind === "train";
    // An evaluation of the cls or reward head needs the final block only at each row's last token.
    const lastRows = !train && head !== "lm" && this.onLastRows;
    const forward = [...this.forwardTrunk(lastRows), ...this.headDispatches(head, kind, aux, lastRows)];
    // A prediction touches no stats: no reset before it, no step counted after it.
    prog = kind === "predict" ? forward : [
      planFill(g, slice(this.stats, 0, STAT_SKIPPED, "step stats"), 0, "reset step stats"),
      ...(train ? shardWindows(g, this.grads).map((w) => planFill(g, w, 0, "zero grads")) : []),
      ...forward,
      ...(train ? [...this.backwardTrunk(), ...this.optimizer()] : []),
      planStatsCarry(g, this.stats, STAT_NONFINITE, STAT_SKIPPED, STAT_STEPS),
    ];
    this.programs.set(key, prog);
    return prog;
  }

  /** CPU time spent recording the last program into its command encoder (ms). */
  lastEncodeMs = 0;

  private run(dispatches: Dispatch[]): void {
    const start = performance.now();
    const encoder = this.gpu.device.createCommandEncoder();
    encodeDispatches(encoder, dispatches);
    const commands = encoder.finish();
    this.lastEncodeMs = performance.now() - start;
    this.gpu.device.queue.submit([commands]);
  }

  /** Number of dispatches in one training step of a head. */
  dispatchCount(head: Head, kind: ProgramKind = "train"): number {
    return this.program(kind, head).length;
  }

  /** The dispatches of a program, for benchmarks that time them one by one. */
  dispatches(head: Head, kind: ProgramKind = "train"): readonly Dispatch[] {
    return this.program(kind, head);
  }

  /**
   * One optimizer step on the current batch: forward, backward, gradient norm and AdamW in one
   * command encoder. `auxAlpha` sets the aux-confidence weight α of the cls or reward head's loss
   * (undefined: plain soft-target CE).
   */
  trainStep(head: Head, opts: { lr?: number; auxAlpha?: number } = {}): void {
    this.step++;
    this.gradShare = undefined;
    const o = this.opt;
    const prog = this.program("train", head, opts.auxAlpha !== undefined);
    // The class cross-entropy with the aux target reads α from its parameters, set per step.
    if (opts.auxAlpha !== undefined) {
      for (const d of this.auxCE[head]!) d.setParams({ alpha: opts.auxAlpha });
    }
    const stepParams = adamwStepParams(o, this.step, opts.lr ?? o.lr);
    for (const d of this.adamw!) d.setParams(stepParams);
    this.run(prog);
  }

  /**
   * Gradient accumulation, one micro-batch: forward and backward of the current batch added into the
   * flat gradient at weight `share` (its part of the whole batch's valid rows or pairs, so that the sum
   * is the whole batch's mean gradient); no update. The first micro-batch after an update zeroes the
   * gradient; `applyAccumulated` then runs the gradient norm and AdamW once on the sum. The loss in
   * stats is the last micro-batch's; the aux-confidence threshold is a quantile over each micro-batch.
   */
  accumulateStep(head: Head, opts: { share: number; auxAlpha?: number }): void {
    if (!(opts.share > 0 && opts.share <= 1)) {
      throw new Error(
        `accumulateStep: share ${opts.share} must be in (0, 1] (micro-batch rows / batch rows)`,
      );
    }
    this.requireTraining("accumulateStep");
    const aux = opts.auxAlpha !== undefined;
    const key = `accumulate:${head}:${aux}`;
    let prog = this.programs.get(key);
    if (!prog) {
      prog = [
        ...this.forwardTrunk(),
        ...this.headDispatches(head, "train", aux, false),
        ...this.backwardTrunk(),
      ];
      this.programs.set(key, prog);
    }
    if (aux) { for (const d of this.auxCE[head]!) d.setParams({ alpha: opts.auxAlpha! }); }
    // The backward adds at weight 1: rescaling the sum so far by previous/current share, and the sum by
    // the last share in applyAccumulated, leaves every micro-batch at its own share.
    const before = this.gradShare === undefined
      ? this.accumulationStart()
      : this.scaleGrads(this.gradShare / opts.share);
    this.gradShare = opts.share;
    this.run([...before, ...prog]);
  }

  /** The update on the gradient accumulated since the last one: gradient norm and AdamW, as trainStep. */
  applyAccumulated(opts: { lr?: number } = {}): void {
    if (this.gradShare === undefined) {
      throw new Error(
        "applyAccumulated: no micro-batch was accumulated (accumulateStep) since the last update",
      );
    }
    this.step++;
    const scale = this.scaleGrads(this.gradShare);
    this.gradShare = undefined;
    const optimizer = this.optimizer();
    for (const d of this.adamw!) d.setParams(adamwStepParams(this.opt, this.step, opts.lr ?? this.opt.lr));
    let carry = this.programs.get("stats carry");
    if (!carry) {
      carry = [planStatsCarry(this.gpu, this.stats, STAT_NONFINITE, STAT_SKIPPED, STAT_STEPS)];
      this.programs.set("stats carry", carry);
    }
    this.run([...scale, ...optimizer, ...carry]);
  }

  /** Resets the step's stats and zeroes the flat gradient (the start of an accumulated batch). */
  private accumulationStart(): Dispatch[] {
    let prog = this.programs.get("accumulation start");
    if (!prog) {
      const g = this.gpu;
      prog = [
        planFill(g, slice(this.stats, 0, STAT_SKIPPED, "step stats"), 0, "reset step stats"),
        ...shardWindows(g, this.grads).map((w) => planFill(g, w, 0, "zero grads")),
      ];
      this.programs.set("accumulation start", prog);
    }
    return prog;
  }

  /** grads ← factor·grads, per binding window. */
  private scaleGrads(factor: number): Dispatch[] {
    const g = this.gpu;
    this.gradScale ??= shardWindows(g, this.grads).map((w) => planScale(g, w, 1, "scale grads"));
    for (const d of this.gradScale) d.setParams({ factor });
    return this.gradScale;
  }

  /** Forward pass only (loss into stats; for cls also the logits, for reward the rewards). */
  evalStep(head: Head): void {
    this.run(this.program("eval", head));
  }

  /** Forward pass and the cls logits or the rewards, no loss: what a prediction reads (readClassLogits). */
  predictStep(head: "cls" | "reward"): void {
    this.run(this.program("predict", head));
  }

  /** Forward pass and the LM logits of every position (kept, not turned into gradients). */
  logitsStep(): void {
    let prog = this.programs.get("logits");
    if (!prog) {
      prog = [...this.forwardTrunk(), ...this.lmLogits()];
      this.programs.set("logits", prog);
    }
    this.run(prog);
  }

  /** LM logits (rows·T × V) after logitsStep. */
  async readLogits(): Promise<Float32Array> {
    // The rows of the batch whose copy is queued now: another batch may be set before the read resolves.
    const rows = this.rowsInBatch;
    const V = this.cfg.vocabSize, ld = this.logitsStride;
    const all = await readTensor(this.gpu, this.logits!);
    if (ld === V) return all.slice(0, rows * this.T * V);
    const out = new Float32Array(rows * this.T * V);
    for (let i = 0; i < rows * this.T; i++) out.set(all.subarray(i * ld, i * ld + V), i * V);
    return out;
  }

  /** Forward pass and last-token features of every layer into `features`. */
  featuresStep(): void {
    let prog = this.programs.get("features");
    if (!prog) {
      const g = this.gpu;
      const { width: C, layers: L } = this.cfg;
      const { B, T } = this;
      const sources = [...Array(L + 1).keys()].map((l) => this.x(l)).concat([this.lnf]);
      prog = [
        ...this.forwardTrunk(),
        ...sources.map((x, l) =>
          planGatherLast(g, {
            label: `features ${l}`,
            x,
            rows: slice(this.features, l * B * C, B * C),
            lengths: this.lengths,
            B,
            T,
            C,
          })
        ),
      ];
      this.programs.set("features", prog);
    }
    this.run(prog);
  }

  /** Reads loss and gradient statistics (waits for the GPU). Throws NonFiniteError if an update was skipped. */
  async readStats(): Promise<StepStats> {
    const read = readTensor(this.gpu, this.stats);
    // The carried slots restart right behind the copy: a step submitted before the read resolves counts
    // toward the next read, not lost to a reset queued after it.
    writeTensor(this.gpu, slice(this.stats, STAT_SKIPPED, 2), new Float32Array(2));
    const s = await read;
    const stats: StepStats = {
      loss: s[STAT_LOSS],
      count: s[STAT_COUNT],
      gradNorm: Math.sqrt(s[STAT_GRAD_NORM_SQ]),
      correct: s[STAT_CORRECT],
      steps: s[STAT_STEPS],
    };
    const skipped = s[STAT_SKIPPED];
    if (skipped > 0 || !Number.isFinite(stats.loss)) throw new NonFiniteError(skipped, stats);
    return stats;
  }

  /** Class logits (B'×2) of the rows of the last cls program. */
  readClassLogits(): Promise<Float32Array> {
    // The copy is queued now, for the rows of this batch: another batch may be set before it resolves.
    const rows = this.rowsInBatch;
    return readTensor(this.gpu, this.clsLogits).then((all) => all.slice(0, rows * NUM_CLASSES));
  }

  /** Rewards (B') of the rows of the last reward program; rows 2i, 2i+1 are pair i. */
  readRewards(): Promise<Float32Array> {
    const rows = this.rowsInBatch;
    return readTensor(this.gpu, this.rewards).then((all) => all.slice(0, rows));
  }

  /** Last-token features after featuresStep: [layer][b·C + c], layers 0…L then ln_f. */
  async readFeatures(): Promise<Float32Array[]> {
    const all = await readTensor(this.gpu, this.features);
    const { width: C, layers: L } = this.cfg;
    const n = this.B * C;
    return [...Array(L + 2).keys()].map((l) => all.slice(l * n, (l + 1) * n));
  }

  async readParams(): Promise<Float32Array> {
    return await readSharded(this.gpu, this.params);
  }

  async readGrads(): Promise<Float32Array> {
    this.requireTraining("readGrads");
    return await readSharded(this.gpu, this.grads);
  }

  /** Optimizer state for checkpoints (m, v and the step count). */
  async readOptimizerState(): Promise<{ m: Float32Array; v: Float32Array; step: number }> {
    this.requireTraining("readOptimizerState");
    // Both copies queued before one wait: a read-back waits a fixed poll interval however small.
    const [m, v] = await Promise.all([readSharded(this.gpu, this.m), readSharded(this.gpu, this.v)]);
    return { m, v, step: this.step };
  }

  loadOptimizerState(state: { m: Float32Array; v: Float32Array; step: number }): void {
    this.requireTraining("loadOptimizerState");
    writeSharded(this.gpu, this.m, state.m);
    writeSharded(this.gpu, this.v, state.v);
    this.step = state.step;
  }

  loadParams(params: Float32Array): void {
    if (this.borrowsParams) {
      throw new Error(
        "loadParams: this evaluator reads another model's parameters; load them into that model",
      );
    }
    if (params.length !== this.layout.total) {
      throw new Error(`parameter buffer has ${params.length} floats, the layout needs ${this.layout.total}`);
    }
    writeSharded(this.gpu, this.params, params);
  }

  /** Frees the GPU buffers. */
  destroy(): void {
    const seen = new Set<GPUBuffer>();
    for (const [key, value] of Object.entries(this)) {
      if (key === "params" && this.borrowsParams) continue;
      const t = value as Tensor | ShardedTensor | undefined;
      if (t && typeof t === "object" && "shards" in t) {
        for (const s of t.shards) seen.add(s.tensor.buffer);
      }
      if (t && typeof t === "object" && "buffer" in t && t.buffer instanceof GPUBuffer) seen.add(t.buffer);
    }
    for (const a of [...this.acts, this.lastRows]) {
      for (const t of Object.values(a)) seen.add(t.buffer);
    }
    for (const b of seen) b.destroy();
  }
}
