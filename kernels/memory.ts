/**
 * Adapter memory a GptModel needs for a batch shape, counted from the buffers kernels/gpt.ts creates
 * (constructor, the LM head's logits and the attention backward's scratch), before any is allocated:
 * parameters, gradients, AdamW moments, and the batch's buffers (activations kept for the backward,
 * their gradients, inputs, logits). `checkModelMemory` compares the need with the adapter's limits
 * (maxBufferSize per tensor, the adapter's memory in total where known) and throws one error naming
 * every limit it breaks. Uniform parameter buffers (16–64 bytes per dispatch)
 * are left out.
 */
import { type GptConfig, logitsStride, NUM_CLASSES, type ParamLayout, paramLayout } from "./config.ts";
import type { Gpu } from "./device.ts";
import { attentionSavedLength, type AttentionVersion, defaultAttentionVersion } from "./ops/attention.ts";
import { splitKSlices } from "./ops/matmul.ts";
import { gradNormPartials } from "./ops/optimizer.ts";
import { STATS_LENGTH } from "./stats.ts";

export interface MemoryShape {
  batchSize: number;
  seqLen: number;
  /** Default: the model's (v3 where the head fits it). */
  attention?: AttentionVersion;
  /** Default true, as GptModel. */
  fuse?: boolean;
  /** Default true, as GptModel: weight gradients by matmul v5 where it splits. */
  splitK?: boolean;
  /** The adapter's maxBufferSize: the flat buffers are split in shards under it (default: one buffer each). */
  maxBufferSize?: number;
  /** A forward-only model (gpt.ts ModelShape.forwardOnly): no gradients, AdamW state or backward buffers. */
  forwardOnly?: boolean;
  /** Its parameters are another model's (GptModel.evaluator): they count there, not here. */
  sharedParams?: boolean;
}

export type BufferRole = "parameters" | "gradients" | "adamw" | "activations";

export interface ModelBuffer {
  label: string;
  role: BufferRole;
  /** 4-byte elements. */
  elements: number;
}

export interface ModelMemory {
  parameters: number;
  gradients: number;
  adamw: number;
  /** Everything sized by the batch: activations kept for the backward, their gradients, logits, inputs. */
  activations: number;
  total: number;
  /** The largest single buffer: it must fit maxBufferSize; it is bound in maxStorageBufferBindingSize windows. */
  largest: { label: string; bytes: number };
}

/** Bytes of a tensor of n elements as runtime.ts's createTensor allocates it (≥ 4, rounded to 16). */
export function tensorBytes(elements: number): number {
  return Math.ceil(Math.max(4, Math.ceil(elements) * 4) / 16) * 16;
}

/**
 * Where the shards of the flat buffers (parameters, gradients, AdamW m and v) start: whole matrices,
 * and the vectors (biases, LayerNorm gains and biases, all after the matrices) as one block, packed in
 * order into buffers of at most `maxBufferSize` bytes. [0] (one buffer) when everything fits. A
 * single matrix larger than the limit gets a shard of its own, which kernels/memory.ts reports.
 */
export function flatShards(layout: ParamLayout, maxBufferSize = Infinity): number[] {
  const units = layout.specs.filter((s) => s.decay).map((s) => s.offset);
  if (layout.decayEnd < layout.total) units.push(layout.decayEnd);
  const starts = [0];
  units.forEach((start, i) => {
    const end = units[i + 1] ?? layout.total;
    if (start > starts[starts.length - 1] && tensorBytes(end - starts[starts.length - 1]) > maxBufferSize) {
      starts.push(start);
    }
  });
  return starts;
}

/** Every buffer a GptModel with this shape allocates for an LM training step, as gpt.ts names them. */
export function modelBuffers(cfg: GptConfig, shape: MemoryShape): ModelBuffer[] {
  const layout = paramLayout(cfg);
  const P = layout.total;
  const { width: C, layers: L, heads: H, vocabSize: V } = cfg;
  const B = shape.batchSize, T = shape.seqLen, N = B * T;
  const attention = shape.attention ?? defaultAttentionVersion(C / H);
  const pairs = Math.max(1, Math.floor(B / 2));
  const maxUnique = Math.min(V, N);
  const starts = flatShards(layout, shape.maxBufferSize);
  const flat = (label: string, role: BufferRole): ModelBuffer[] =>
    starts.map((start, i) => ({
      label: starts.length > 1 ? `${label} [shard ${i}]` : label,
      role,
      elements: (starts[i + 1] ?? P) - start,
    }));
  const training = !shape.forwardOnly;
  const out: ModelBuffer[] = [
    ...(shape.sharedParams ? [] : flat("params", "parameters")),
    ...(training
      ? [
        ...flat("grads", "gradients"),
        { label: "grad norm partials", role: "gradients" as const, elements: gradNormPartials(P) },
        ...flat("adam m", "adamw"),
        ...flat("adam v", "adamw"),
      ]
      : []),
  ];
  const act = (label: string, elements: number) => out.push({ label, role: "activations", elements });
  act("stats", STATS_LENGTH);
  for (const label of ["tokens", "targets", "token positions", "lm row loss", "ones", "meanf", "rstdf"]) {
    act(label, N);
  }
  for (const label of ["lengths", "valid rows", "cls row loss", "rewards", "drewards"]) act(label, B);
  for (const label of ["class targets", "cls logits", "cls dlogits"]) act(label, B * NUM_CLASSES);
  act("pair targets", pairs * 2);
  act("valid pairs", pairs);
  act("pair row loss", pairs);
  act("unique tokens", maxUnique);
  act("token starts", maxUnique + 1);
  for (let l = 0; l < L; l++) {
    for (const label of ["x", "ln1", "att", "xmid", "ln2"]) act(`${label}.${l}`, N * C);
    for (const label of ["mean1", "rstd1", "mean2", "rstd2"]) act(`${label}.${l}`, N);
    act(`qkv.${l}`, N * 3 * C);
    act(`fc.${l}`, N * 4 * C);
    act(`gelu.${l}`, N * 4 * C);
    act(`attention saved.${l}`, attentionSavedLength(attention, { B, H, T }));
    // The attention backward's scratch, created when the training program is planned.
    if (training) {
      if (attention === "v2") act(`attention dscores.${l}`, B * H * T * T);
      else act(`attention row sums.${l}`, B * H * T);
    }
  }
  for (const label of ["x final", "lnf", "att proj", "mlp proj"]) act(label, N * C);
  act("cls hidden", B * C);
  // The final block on each row's last token (an evaluation of the cls or reward head, gpt.ts lastRows).
  for (const label of ["x", "att", "att proj", "xmid", "ln2", "mlp proj", "x final", "lnf"]) {
    act(`last rows ${label}`, B * C);
  }
  for (const label of ["mean2", "rstd2", "meanf", "rstdf"]) act(`last rows ${label}`, B);
  for (const label of ["fc", "gelu"]) act(`last rows ${label}`, B * 4 * C);
  act("features", (L + 2) * B * C);
  act("logits", N * logitsStride(V));
  if (!training) return out;
  for (const label of ["dres", "dln", "dlnf", "datt"]) act(label, N * C);
  act("cls dhidden", B * C);
  if (shape.fuse === false) act("dgelu", N * 4 * C);
  act("dfc", N * 4 * C);
  act("dqkv", N * 3 * C);
  // One scratch for every split-K weight gradient (gpt.ts linearGrads), when any product splits.
  const products = [[C, 3 * C], [C, C], [C, 4 * C], [4 * C, C]];
  if (shape.splitK !== false && products.some(([inW, outW]) => splitKSlices(inW, outW, N) > 1)) {
    act("split-K slices", 2 * 4 * C * C);
  }
  return out;
}

/** The need of modelBuffers, in bytes per role, with the largest buffer. */
export function modelMemory(cfg: GptConfig, shape: MemoryShape): ModelMemory {
  const need = { parameters: 0, gradients: 0, adamw: 0, activations: 0 };
  let largest = { label: "", bytes: 0 };
  for (const b of modelBuffers(cfg, shape)) {
    const bytes = tensorBytes(b.elements);
    need[b.role] += bytes;
    if (bytes > largest.bytes) largest = { label: b.label, bytes };
  }
  const total = need.parameters + need.gradients + need.adamw + need.activations;
  return { ...need, total, largest };
}

/** The adapter's memory where it is known: a software adapter uses this machine's RAM. */
export function deviceMemoryBytes(gpu: Pick<Gpu, "isSoftware">): number | undefined {
  if (!gpu.isSoftware || typeof Deno === "undefined") return undefined;
  return Deno.systemMemoryInfo().total;
}

/** The limits checkModelMemory holds a model to on this adapter. */
export function adapterMemoryLimits(gpu: Pick<Gpu, "isSoftware" | "limits">): MemoryLimits {
  const { maxBufferSize, maxStorageBufferBindingSize } = gpu.limits;
  return { maxBufferSize, maxStorageBufferBindingSize, deviceMemory: deviceMemoryBytes(gpu) };
}

export type MemoryLimits = Pick<Gpu["limits"], "maxBufferSize" | "maxStorageBufferBindingSize"> & {
  /** The adapter's memory, when known. */
  deviceMemory?: number;
};

/** "1.5 GB", "12.3 MB", "816 kB": decimal units, as sizes are usually quoted. */
export function formatBytes(bytes: number): string {
  const units = [[1e9, "GB"], [1e6, "MB"], [1e3, "kB"]] as const;
  for (const [scale, unit] of units) {
    if (bytes >= scale) return `${(bytes / scale).toFixed(bytes >= 10 * scale ? 0 : 1)} ${unit}`;
  }
  return `${bytes} B`;
}

/**
 * Storage-binding windows the largest tensor is split into (runtime.ts windowsOf): 1 when it fits one
 * binding. Windows make the binding limit a cost, not a wall; maxBufferSize and memory stay walls.
 */
export function bindingWindows(need: ModelMemory, limits: MemoryLimits): number {
  return Math.max(1, Math.ceil(need.largest.bytes / limits.maxStorageBufferBindingSize));
}

/** Each limit the need breaks, in words; empty when the model fits. */
export function memoryProblems(need: ModelMemory, limits: MemoryLimits): string[] {
  const { label, bytes } = need.largest;
  const problems: string[] = [];
  if (bytes > limits.maxBufferSize) {
    problems.push(
      `its largest tensor, ${label} (${formatBytes(bytes)}), exceeds maxBufferSize ` +
        `(${formatBytes(limits.maxBufferSize)})`,
    );
  }
  if (limits.deviceMemory !== undefined && need.total > limits.deviceMemory) {
    problems.push(`the total exceeds the adapter's memory (${formatBytes(limits.deviceMemory)})`);
  }
  return problems;
}

/** Raised before allocation when a model cannot fit the adapter. */
export class ModelMemoryError extends Error {
  constructor(readonly need: ModelMemory, readonly problems: string[], message: string) {
    super(message);
    this.name = "ModelMemoryError";
  }
}

/** Throws one ModelMemoryError naming the size, the need and every limit broken; else the need. */
export function checkModelMemory(
  cfg: GptConfig,
  shape: MemoryShape,
  limits: MemoryLimits,
): ModelMemory {
  const need = modelMemory(cfg, { maxBufferSize: limits.maxBufferSize, ...shape });
  const problems = memoryProblems(need, limits);
  if (problems.length > 0) {
    const size = `GPT ${cfg.width}/${cfg.layers} (vocabulary ${cfg.vocabSize}, context ${cfg.contextLength})`;
    const parts = `parameters ${formatBytes(need.parameters)}, gradients ${formatBytes(need.gradients)}, ` +
      `AdamW ${formatBytes(need.adamw)}, activations ${formatBytes(need.activations)}`;
    throw new ModelMemoryError(
      need,
      problems,
      `${size} at batch ${shape.batchSize} × ${shape.seqLen} needs ${formatBytes(need.total)} of adapter ` +
        `memory (${parts}): ${problems.join("; ")}. Use a smaller model or batch, or a larger adapter.`,
    );
  }
  return need;
}

export interface MicroBatchShape extends MemoryShape {
  /** Rows one example takes (2 for a pairwise task: a micro-batch holds whole pairs); default 1. */
  rowsPerExample?: number;
}

export interface MicroBatchPlan {
  /** Examples per micro-batch (the model is built for microBatch · rowsPerExample rows). */
  microBatch: number;
  /** Micro-batches per optimizer step: ⌈batchSize / microBatch⌉. */
  microBatches: number;
  /** The need at the micro-batch: the optimizer state (adamw) is the whole model's, whatever the batch. */
  need: ModelMemory;
  /** One line: the batch, its micro-batches and the need, AdamW state named. */
  summary: string;
}

/**
 * The micro-batch of gradient accumulation: the whole batch when it fits the limits, else the fewest
 * micro-batches whose need fits, evened out (32 rows where 10 fit: 4 of 8, not 10 + 10 + 10 + 2).
 * Throws checkModelMemory's error when one example does not fit.
 */
export function planMicroBatch(cfg: GptConfig, shape: MicroBatchShape, limits: MemoryLimits): MicroBatchPlan {
  const per = shape.rowsPerExample ?? 1;
  const { batchSize } = shape;
  if (!(Number.isInteger(batchSize) && batchSize >= 1 && Number.isInteger(per) && per >= 1)) {
    throw new Error(`planMicroBatch: batchSize ${batchSize} and rowsPerExample ${per} must be integers ≥ 1`);
  }
  const at = (examples: number) =>
    modelMemory(cfg, { maxBufferSize: limits.maxBufferSize, ...shape, batchSize: examples * per });
  checkModelMemory(cfg, { ...shape, batchSize: per }, limits);
  // Memory grows with the rows: the largest fitting count by bisection.
  let fits = 1, fails = batchSize + 1;
  while (fails - fits > 1) {
    const mid = Math.floor((fits + fails) / 2);
    if (memoryProblems(at(mid), limits).length === 0) fits = mid;
    else fails = mid;
  }
  const microBatches = Math.ceil(batchSize / fits);
  const microBatch = Math.ceil(batchSize / microBatches);
  const need = at(microBatch);
  const unit = per === 1 ? "rows" : `examples (${per} rows each)`;
  const split = microBatches === 1
    ? `batch ${batchSize} in one step`
    : `batch ${batchSize} as ${microBatches} micro-batches of ≤ ${microBatch} ${unit}`;
  const summary = `${split} × ${shape.seqLen} tokens needs ${formatBytes(need.total)}: parameters ` +
    `${formatBytes(need.parameters)}, gradients ${formatBytes(need.gradients)}, AdamW state ` +
    `${formatBytes(need.adamw)} (m and v), activations ${formatBytes(need.activations)}`;
  return { microBatch, microBatches, need, summary };
}

/**
 * Tokens an evaluator's batch aims at: measured on llvmpipe (ladder models, 6-token examples),
 * evaluating 512 examples took 2.1–2.7× less time at 512 rows than at the training batch's 32.
 */
export const EVAL_TOKENS = 4096;

export interface EvalRowsShape {
  seqLen: number;
  /** Rows one example takes (2 for a pair); the evaluator holds whole examples. */
  rowsPerExample?: number;
  /** Rows of the training model it evaluates beside. */
  trainRows: number;
  /** Examples of the largest set it will evaluate: no more rows than they fill. */
  examples: number;
}

/**
 * Rows of the forward-only evaluator that shares a training model's parameters (GptModel.evaluator):
 * up to EVAL_TOKENS tokens, at most the rows `examples` fill, as many as fit beside the training model's
 * need. The training rows (no evaluator) when no more fit.
 */
export function planEvalRows(
  cfg: GptConfig,
  shape: EvalRowsShape,
  limits: MemoryLimits,
  trainingNeed: ModelMemory,
): number {
  const per = shape.rowsPerExample ?? 1;
  const wanted = Math.min(shape.examples, Math.floor(EVAL_TOKENS / (shape.seqLen * per))) * per;
  const fits = (rows: number) => {
    const need = modelMemory(cfg, {
      maxBufferSize: limits.maxBufferSize,
      batchSize: rows,
      seqLen: shape.seqLen,
      forwardOnly: true,
      sharedParams: true,
    });
    const both = { ...need, total: need.total + trainingNeed.total };
    return memoryProblems(both, limits).length === 0;
  };
  let rows = wanted;
  while (rows > shape.trainRows && !fits(rows)) rows = Math.floor(rows / 2 / per) * per;
  return Math.max(rows, shape.trainRows);
}
