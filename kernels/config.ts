/**
 * GPT-2 model configuration and the parameter table: names, shapes and the order of the flat
 * parameter buffer. Names follow Hugging Face GPT-2 (without the `transformer.` prefix) and weights
 * keep HF's Conv1D layout (in × out), so `y = x · W + b` is a plain NN matmul forward.
 */

import { gaussian, mulberry32 } from "./random.ts";

export interface GptConfig {
  vocabSize: number;
  contextLength: number;
  width: number;
  layers: number;
  heads: number;
}

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Matrices get weight decay; vectors (biases, layernorm gains) do not. */
  decay: boolean;
  /** Offset in elements inside the flat parameter buffer. */
  offset: number;
  size: number;
}

/** Every tensor starts on a 64-element (256-byte) boundary: aligned vec4 loads and buffer windows. */
export const PARAM_ALIGN = 64;

/**
 * The row stride of the LM head's logits (B·T rows): the vocabulary rounded up to 64 floats, 256 bytes, so
 * every row starts 4-aligned (the v4 products and the vec4 cross-entropy read them as vec4s) and the rows
 * copy into textures (texture-operand.ts: a copy needs rows 256 bytes apart; matmul v6 reads dlogits so).
 * The products write only the vocabulary's columns; the padding costs memory alone (GPT-2: 50,304 for
 * 50,257).
 */
export function logitsStride(vocabSize: number): number {
  return Math.ceil(vocabSize / 64) * 64;
}

/** Number of classes of the classification head. */
export const NUM_CLASSES = 2;

/**
 * The task heads on the last token: the 2-class head and the scalar reward head (no bias: it would
 * cancel in r_first − r_second). They start at zero, and a checkpoint without them loads them at zero.
 */
export const HEAD_PARAMS = ["cls.weight", "cls.bias", "reward.weight"] as const;

export function validateConfig(cfg: GptConfig): void {
  for (const key of ["vocabSize", "contextLength", "width", "layers", "heads"] as const) {
    const v = cfg[key];
    if (!Number.isInteger(v) || v < 1) throw new Error(`config.${key} must be a positive integer, got ${v}`);
  }
  if (cfg.width % cfg.heads !== 0) {
    throw new Error(`config.width (${cfg.width}) must be divisible by config.heads (${cfg.heads})`);
  }
}

/** The unaligned shapes of all parameters, matrices first, in flat-buffer order. */
export function parameterShapes(cfg: GptConfig): { name: string; shape: number[] }[] {
  const { vocabSize: V, contextLength: T, width: C, layers: L } = cfg;
  const matrices: { name: string; shape: number[] }[] = [
    { name: "wte.weight", shape: [V, C] },
    { name: "wpe.weight", shape: [T, C] },
  ];
  const vectors: { name: string; shape: number[] }[] = [];
  for (let l = 0; l < L; l++) {
    const p = `h.${l}.`;
    matrices.push(
      { name: p + "attn.c_attn.weight", shape: [C, 3 * C] },
      { name: p + "attn.c_proj.weight", shape: [C, C] },
      { name: p + "mlp.c_fc.weight", shape: [C, 4 * C] },
      { name: p + "mlp.c_proj.weight", shape: [4 * C, C] },
    );
    vectors.push(
      { name: p + "ln_1.weight", shape: [C] },
      { name: p + "ln_1.bias", shape: [C] },
      { name: p + "attn.c_attn.bias", shape: [3 * C] },
      { name: p + "attn.c_proj.bias", shape: [C] },
      { name: p + "ln_2.weight", shape: [C] },
      { name: p + "ln_2.bias", shape: [C] },
      { name: p + "mlp.c_fc.bias", shape: [4 * C] },
      { name: p + "mlp.c_proj.bias", shape: [C] },
    );
  }
  matrices.push({ name: "cls.weight", shape: [C, NUM_CLASSES] }, { name: "reward.weight", shape: [C, 1] });
  vectors.push(
    { name: "ln_f.weight", shape: [C] },
    { name: "ln_f.bias", shape: [C] },
    { name: "cls.bias", shape: [NUM_CLASSES] },
  );
  return [...matrices, ...vectors];
}

export interface ParamLayout {
  specs: ParamSpec[];
  byName: Map<string, ParamSpec>;
  /** Total elements of the flat buffer (padded). */
  total: number;
  /** Elements [0, decayEnd) are matrices (decayed); the rest are vectors. */
  decayEnd: number;
}

export function paramLayout(cfg: GptConfig): ParamLayout {
  validateConfig(cfg);
  const specs: ParamSpec[] = [];
  let offset = 0;
  let decayEnd = 0;
  for (const { name, shape } of parameterShapes(cfg)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const decay = shape.length >= 2;
    specs.push({ name, shape, decay, offset, size });
    offset += Math.ceil(size / PARAM_ALIGN) * PARAM_ALIGN;
    if (decay) decayEnd = offset;
  }
  return { specs, byName: new Map(specs.map((s) => [s.name, s])), total: offset, decayEnd };
}

/** A range [start, end) of elements of the flat parameter buffer. */
export interface ParamRange {
  start: number;
  end: number;
}

/** The empty range. */
export const NO_PARAMS: ParamRange = { start: 0, end: 0 };

/** The token and position embeddings; wte is also the tied LM head. Neighbours at the buffer's start. */
export const EMBEDDING_PARAMS = ["wte.weight", "wpe.weight"] as const;

/**
 * The one range covering the named parameters, which must be neighbours in the flat buffer (the
 * alignment padding between them is inside the range); no names: the empty range.
 */
export function paramRange(layout: ParamLayout, names: readonly string[]): ParamRange {
  const indices = [...new Set(names)].map((name) => {
    const i = layout.specs.findIndex((s) => s.name === name);
    if (i < 0) throw new Error(`unknown parameter ${name}`);
    return i;
  }).sort((a, b) => a - b);
  if (indices.length === 0) return NO_PARAMS;
  if (indices.some((i, k) => i !== indices[0] + k)) {
    const order = indices.map((i) => layout.specs[i].name).join(", ");
    throw new Error(`parameters ${order} are not neighbours in the flat buffer: name a contiguous run`);
  }
  const first = layout.specs[indices[0]], last = layout.specs[indices[indices.length - 1]];
  return { start: first.offset, end: last.offset + last.size };
}

/** Number of trainable parameters (unpadded), the class and reward heads included. */
export function parameterCount(cfg: GptConfig): number {
  return parameterShapes(cfg).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** AdamW hyper-parameters (torch semantics), shared by the engine and the float64 reference. */
export interface AdamWSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (≤ 0: no clipping). */
  maxGradNorm: number;
}

/** The engine's default (GPT-2 / nanoGPT pretraining settings); the benchmark's training step uses it. */
export const DEFAULT_ADAMW: AdamWSettings = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  maxGradNorm: 1.0,
};

/**
 * The lab's pretraining settings: the default without weight decay (decay erodes rarely seen facts of
 * the knowledge world); lr comes from the ladder size.
 */
export const ADAMW_PRETRAIN: AdamWSettings = { ...DEFAULT_ADAMW, weightDecay: 0 };

/**
 * Finetuning (weak, ceiling, student, LM finetuning): torch's AdamW defaults (β2 0.999), as the
 * openai/weak-to-strong loop uses; lr and weight decay come from the role's settings.
 */
export const ADAMW_FINETUNE: AdamWSettings = { ...DEFAULT_ADAMW, beta2: 0.999, weightDecay: 0 };

/**
 * GPT-2 initialization, seeded: matrices N(0, 0.02), residual projections N(0, 0.02/√(2L)),
 * biases 0, layernorm gains 1, the heads (HEAD_PARAMS) 0. Returns the flat float32 buffer.
 */
export function initParameters(cfg: GptConfig, seed: number): Float32Array {
  const layout = paramLayout(cfg);
  const flat = new Float32Array(layout.total);
  const normal = gaussian(mulberry32(seed));
  const heads: readonly string[] = HEAD_PARAMS;
  for (const spec of layout.specs) {
    const view = flat.subarray(spec.offset, spec.offset + spec.size);
    if (
      spec.name.endsWith("ln_1.weight") || spec.name.endsWith("ln_2.weight") || spec.name === "ln_f.weight"
    ) {
      view.fill(1);
    } else if (spec.decay && !heads.includes(spec.name)) {
      const residual = spec.name.endsWith("c_proj.weight");
      const std = residual ? 0.02 / Math.sqrt(2 * cfg.layers) : 0.02;
      for (let i = 0; i < view.length; i++) view[i] = normal() * std;
    }
  }
  return flat;
}
