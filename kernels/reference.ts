/**
 * Float64 CPU reference of the lab's GPT-2: forward, backward and AdamW, written for clarity (after
 * llm.c's train_gpt2.c: every step is a named function and each *Backward mirrors its *Forward).
 * Used only by tests: the WGSL engine and the PyTorch fixtures are checked against it.
 *
 * Conventions (binding for the GPU engine):
 * - Batch: `tokens` is B×T right-padded, `lengths[b]` valid tokens in row b (0 = empty row), T ≤ context.
 * - x0 = wte[tok] + wpe[t]; pre-LN blocks x += attn(ln_1(x)); x += mlp(ln_2(x)); final ln_f (eps 1e-5,
 *   biased variance). Weights are Conv1D (in × out): y = x·W + b.
 * - Attention: scale 1/√hs; key j is visible to query i iff j ≤ i and j < len[b]. A query with no visible
 *   key (every row of an empty sequence) outputs 0. Queries at padding positions of a non-empty row still
 *   see the row's valid keys.
 * - MLP GELU is the tanh form. The LM head is tied to wte; targets −1 are ignored; the loss is the mean
 *   over non-ignored positions (0 when there are none).
 * - Classification: logits[b] = ln_f(x)[b, len[b]−1]·cls.weight + cls.bias; soft-target cross-entropy
 *   averaged over rows with len > 0 (loss 0 when there are none); empty rows get logits 0.
 * - Reward: r[b] = ln_f(x)[b, len[b]−1]·reward.weight (no bias; empty rows get 0). Rows 2i and 2i+1 are
 *   pair i (B even); its logits are [r_2i, r_2i+1] and the loss is the soft-target cross-entropy over
 *   them (Bradley–Terry: p(second preferred) = σ(r_2i+1 − r_2i)) with targets pairTargets[i] = [t_first,
 *   t_second], averaged over pairs whose two rows have len > 0 (loss 0 when there are none).
 * - Features for probes: residual stream at token len[b]−1 after l blocks, l = 0..L, then the ln_f output
 *   (zeros for empty rows).
 * - AdamW with torch semantics: clip by the global norm of all gradients, decay only matrices.
 */

import { type AdamWSettings, DEFAULT_ADAMW, type GptConfig, NUM_CLASSES, paramLayout } from "./config.ts";

export type Params = Map<string, Float64Array>;
export type Head = "lm" | "cls" | "reward";

export interface RefBatch {
  /** Rows in the batch. */
  B: number;
  /** Padded sequence length (≤ contextLength). */
  T: number;
  /** B×T token ids, right-padded. */
  tokens: Int32Array;
  /** Valid tokens per row, 0 ≤ len ≤ T. */
  lengths: Int32Array;
  /** B×T next-token targets for the LM head, −1 = ignored. */
  targets?: Int32Array;
  /** B×2 soft class targets for the classification head. */
  classTargets?: Float64Array;
  /** (B/2)×2 soft pair targets [t_first, t_second] for the reward head (rows 2i, 2i+1 are pair i). */
  pairTargets?: Float64Array;
}

export const LAYERNORM_EPS = 1e-5;

// ---------------------------------------------------------------------------------------------
// Flat float32 layout ↔ named float64 tensors

/** Splits the flat float32 parameter buffer into one float64 tensor per parameter name. */
export function paramsFromFlat(cfg: GptConfig, flat: Float32Array): Params {
  const layout = paramLayout(cfg);
  if (flat.length !== layout.total) {
    throw new Error(`flat parameter buffer has ${flat.length} elements, layout needs ${layout.total}`);
  }
  const params: Params = new Map();
  for (const spec of layout.specs) {
    params.set(spec.name, Float64Array.from(flat.subarray(spec.offset, spec.offset + spec.size)));
  }
  return params;
}

/** Packs named tensors into the flat float32 buffer (padding stays 0). */
export function paramsToFlat(cfg: GptConfig, params: Params): Float32Array {
  const layout = paramLayout(cfg);
  const flat = new Float32Array(layout.total);
  for (const spec of layout.specs) {
    const tensor = params.get(spec.name);
    if (!tensor) throw new Error(`parameter ${spec.name} is missing`);
    if (tensor.length !== spec.size) {
      throw new Error(`parameter ${spec.name} has ${tensor.length} elements, expected ${spec.size}`);
    }
    flat.set(tensor, spec.offset);
  }
  return flat;
}

function param(params: Params, name: string): Float64Array {
  const p = params.get(name);
  if (!p) throw new Error(`parameter ${name} is missing`);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Layers, forward and backward. Activations are row-major; N = B·T rows unless stated.

/** out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:] */
export function encoderForward(
  out: Float64Array,
  tokens: Int32Array,
  wte: Float64Array,
  wpe: Float64Array,
  B: number,
  T: number,
  C: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t];
      const o = (b * T + t) * C;
      for (let c = 0; c < C; c++) out[o + c] = wte[tok * C + c] + wpe[t * C + c];
    }
  }
}

export function encoderBackward(
  dwte: Float64Array,
  dwpe: Float64Array,
  dout: Float64Array,
  tokens: Int32Array,
  B: number,
  T: number,
  C: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t];
      const o = (b * T + t) * C;
      for (let c = 0; c < C; c++) {
        dwte[tok * C + c] += dout[o + c];
        dwpe[t * C + c] += dout[o + c];
      }
    }
  }
}

/** Normalizes each row of C values (biased variance), then scales and shifts. Saves mean and 1/std. */
export function layernormForward(
  out: Float64Array,
  mean: Float64Array,
  rstd: Float64Array,
  inp: Float64Array,
  weight: Float64Array,
  bias: Float64Array,
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += inp[o + c];
    m /= C;
    let variance = 0;
    for (let c = 0; c < C; c++) variance += (inp[o + c] - m) ** 2;
    variance /= C;
    const s = 1 / Math.sqrt(variance + LAYERNORM_EPS);
    for (let c = 0; c < C; c++) out[o + c] = (inp[o + c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

export function layernormBackward(
  dinp: Float64Array,
  dweight: Float64Array,
  dbias: Float64Array,
  dout: Float64Array,
  inp: Float64Array,
  weight: Float64Array,
  mean: Float64Array,
  rstd: Float64Array,
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    // The two row means that the gradient through the normalization subtracts.
    let dnormMean = 0;
    let dnormNormMean = 0;
    for (let c = 0; c < C; c++) {
      const norm = (inp[o + c] - mean[n]) * rstd[n];
      const dnorm = weight[c] * dout[o + c];
      dnormMean += dnorm;
      dnormNormMean += dnorm * norm;
    }
    dnormMean /= C;
    dnormNormMean /= C;
    for (let c = 0; c < C; c++) {
      const norm = (inp[o + c] - mean[n]) * rstd[n];
      const dnorm = weight[c] * dout[o + c];
      dbias[c] += dout[o + c];
      dweight[c] += norm * dout[o + c];
      dinp[o + c] += rstd[n] * (dnorm - dnormMean - norm * dnormNormMean);
    }
  }
}

/** out[n,o] = bias[o] + Σ_i inp[n,i]·weight[i,o]  (weight is in × out, HF Conv1D). */
export function matmulForward(
  out: Float64Array,
  inp: Float64Array,
  weight: Float64Array,
  bias: Float64Array | null,
  N: number,
  inDim: number,
  outDim: number,
): void {
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outDim; o++) {
      let sum = bias ? bias[o] : 0;
      for (let i = 0; i < inDim; i++) sum += inp[n * inDim + i] * weight[i * outDim + o];
      out[n * outDim + o] = sum;
    }
  }
}

export function matmulBackward(
  dinp: Float64Array,
  dweight: Float64Array,
  dbias: Float64Array | null,
  dout: Float64Array,
  inp: Float64Array,
  weight: Float64Array,
  N: number,
  inDim: number,
  outDim: number,
): void {
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outDim; o++) {
      const d = dout[n * outDim + o];
      if (dbias) dbias[o] += d;
      for (let i = 0; i < inDim; i++) {
        dinp[n * inDim + i] += d * weight[i * outDim + o];
        dweight[i * outDim + o] += d * inp[n * inDim + i];
      }
    }
  }
}

/**
 * Causal multi-head attention with key padding. qkv is (B, T, 3C) with q | k | v along the last axis and
 * head h in columns h·hs..(h+1)·hs of each; out is (B, T, C); att (B, H, T, T) keeps the probabilities.
 */
export function attentionForward(
  out: Float64Array,
  att: Float64Array,
  qkv: Float64Array,
  lengths: Int32Array,
  B: number,
  T: number,
  C: number,
  H: number,
): void {
  const hs = C / H;
  const scale = 1 / Math.sqrt(hs);
  out.fill(0);
  att.fill(0);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const visibleKeys = Math.min(i + 1, lengths[b]);
        if (visibleKeys === 0) continue; // no key to attend to: output stays 0
        const q = (b * T + i) * 3 * C + h * hs;
        const a = ((b * H + h) * T + i) * T;
        let max = -Infinity;
        for (let j = 0; j < visibleKeys; j++) {
          const k = (b * T + j) * 3 * C + C + h * hs;
          let dot = 0;
          for (let d = 0; d < hs; d++) dot += qkv[q + d] * qkv[k + d];
          att[a + j] = dot * scale;
          max = Math.max(max, att[a + j]);
        }
        let sum = 0;
        for (let j = 0; j < visibleKeys; j++) {
          att[a + j] = Math.exp(att[a + j] - max);
          sum += att[a + j];
        }
        const o = (b * T + i) * C + h * hs;
        for (let j = 0; j < visibleKeys; j++) {
          att[a + j] /= sum;
          const v = (b * T + j) * 3 * C + 2 * C + h * hs;
          for (let d = 0; d < hs; d++) out[o + d] += att[a + j] * qkv[v + d];
        }
      }
    }
  }
}

export function attentionBackward(
  dqkv: Float64Array,
  dout: Float64Array,
  qkv: Float64Array,
  att: Float64Array,
  lengths: Int32Array,
  B: number,
  T: number,
  C: number,
  H: number,
): void {
  const hs = C / H;
  const scale = 1 / Math.sqrt(hs);
  const datt = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const visibleKeys = Math.min(i + 1, lengths[b]);
        const q = (b * T + i) * 3 * C + h * hs;
        const a = ((b * H + h) * T + i) * T;
        const o = (b * T + i) * C + h * hs;
        // out = Σ_j att_j v_j: gradients into v and into the probabilities.
        let weighted = 0;
        for (let j = 0; j < visibleKeys; j++) {
          const v = (b * T + j) * 3 * C + 2 * C + h * hs;
          let d = 0;
          for (let e = 0; e < hs; e++) {
            d += dout[o + e] * qkv[v + e];
            dqkv[v + e] += att[a + j] * dout[o + e];
          }
          datt[j] = d;
          weighted += att[a + j] * d;
        }
        // Softmax backward, then the scaled dot product into q and k.
        for (let j = 0; j < visibleKeys; j++) {
          const dscore = att[a + j] * (datt[j] - weighted) * scale;
          const k = (b * T + j) * 3 * C + C + h * hs;
          for (let e = 0; e < hs; e++) {
            dqkv[q + e] += dscore * qkv[k + e];
            dqkv[k + e] += dscore * qkv[q + e];
          }
        }
      }
    }
  }
}

const GELU_SCALE = Math.sqrt(2 / Math.PI);

/** GELU, tanh form: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function geluForward(out: Float64Array, inp: Float64Array): void {
  for (let i = 0; i < inp.length; i++) {
    const x = inp[i];
    out[i] = 0.5 * x * (1 + Math.tanh(GELU_SCALE * (x + 0.044715 * x * x * x)));
  }
}

export function geluBackward(dinp: Float64Array, inp: Float64Array, dout: Float64Array): void {
  for (let i = 0; i < inp.length; i++) {
    const x = inp[i];
    const th = Math.tanh(GELU_SCALE * (x + 0.044715 * x * x * x));
    const sech2 = 1 - th * th;
    const local = 0.5 * (1 + th) + 0.5 * x * sech2 * GELU_SCALE * (1 + 3 * 0.044715 * x * x);
    dinp[i] += local * dout[i];
  }
}

export function residualForward(out: Float64Array, a: Float64Array, b: Float64Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + b[i];
}

/** Softmax of each row of `width` logits into probs. */
function softmaxRows(probs: Float64Array, logits: Float64Array, rows: number, width: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * width;
    let max = -Infinity;
    for (let v = 0; v < width; v++) max = Math.max(max, logits[o + v]);
    let sum = 0;
    for (let v = 0; v < width; v++) {
      probs[o + v] = Math.exp(logits[o + v] - max);
      sum += probs[o + v];
    }
    for (let v = 0; v < width; v++) probs[o + v] /= sum;
  }
}

/** Mean cross-entropy over positions whose target is not −1; also its gradient w.r.t. the logits. */
export function crossEntropyForwardBackward(
  dlogits: Float64Array,
  logits: Float64Array,
  targets: Int32Array,
  N: number,
  V: number,
): number {
  const probs = new Float64Array(N * V);
  softmaxRows(probs, logits, N, V);
  let count = 0;
  for (let n = 0; n < N; n++) if (targets[n] !== -1) count++;
  let loss = 0;
  dlogits.fill(0);
  if (count === 0) return 0;
  for (let n = 0; n < N; n++) {
    const target = targets[n];
    if (target === -1) continue;
    loss -= Math.log(probs[n * V + target]);
    for (let v = 0; v < V; v++) {
      dlogits[n * V + v] = (probs[n * V + v] - (v === target ? 1 : 0)) / count;
    }
  }
  return loss / count;
}

/**
 * Mean over rows with lengths[b] > 0 (a length, or a 0/1 valid flag) of −Σ_c p_c log softmax(logits)_c;
 * also its gradient w.r.t. the logits.
 */
export function softCrossEntropyForwardBackward(
  dlogits: Float64Array,
  logits: Float64Array,
  soft: Float64Array,
  lengths: Int32Array,
  B: number,
  K: number,
): number {
  const probs = new Float64Array(B * K);
  softmaxRows(probs, logits, B, K);
  let rows = 0;
  for (let b = 0; b < B; b++) if (lengths[b] > 0) rows++;
  let loss = 0;
  dlogits.fill(0);
  if (rows === 0) return 0;
  for (let b = 0; b < B; b++) {
    if (lengths[b] === 0) continue;
    let targetMass = 0;
    for (let c = 0; c < K; c++) {
      loss -= soft[b * K + c] * Math.log(probs[b * K + c]);
      targetMass += soft[b * K + c];
    }
    // Exact derivative even if the targets do not sum to 1.
    for (let c = 0; c < K; c++) {
      dlogits[b * K + c] = (probs[b * K + c] * targetMass - soft[b * K + c]) / rows;
    }
  }
  return loss / rows;
}

// ---------------------------------------------------------------------------------------------
// The model

interface BlockActivations {
  /** Residual stream entering the block. */
  residualIn: Float64Array;
  ln1: Float64Array;
  ln1Mean: Float64Array;
  ln1Rstd: Float64Array;
  qkv: Float64Array;
  att: Float64Array;
  attOut: Float64Array;
  /** Residual after the attention branch. */
  residualMid: Float64Array;
  ln2: Float64Array;
  ln2Mean: Float64Array;
  ln2Rstd: Float64Array;
  fc: Float64Array;
  fcGelu: Float64Array;
}

export interface RefCache {
  blocks: BlockActivations[];
  /** Residual stream after the last block. */
  residualOut: Float64Array;
  lnf: Float64Array;
  lnfMean: Float64Array;
  lnfRstd: Float64Array;
  /** Gradient of the loss w.r.t. the logits, computed with the loss. */
  dlogits: Float64Array;
}

export interface RefForwardResult {
  loss: number;
  /** LM: B×T×V; cls: B×2; reward: B (one reward per row, = (B/2)×2 pair logits). */
  logits: Float64Array;
  /** L+2 arrays of B×C: residual after l blocks at token len−1 (l = 0..L), then the ln_f output there. */
  features: Float64Array[];
  cache: RefCache;
}

/** Checks shapes and ids so that bad input fails with a named error instead of garbage. */
export function validateBatch(cfg: GptConfig, batch: RefBatch, head?: Head): void {
  const { B, T, tokens, lengths } = batch;
  if (!Number.isInteger(B) || B < 1) throw new Error(`batch.B must be a positive integer, got ${B}`);
  if (!Number.isInteger(T) || T < 1 || T > cfg.contextLength) {
    throw new Error(`batch.T must be in [1, ${cfg.contextLength}] (contextLength), got ${T}`);
  }
  if (tokens.length !== B * T) {
    throw new Error(`batch.tokens has ${tokens.length} ids, expected B·T = ${B * T}`);
  }
  if (lengths.length !== B) throw new Error(`batch.lengths has ${lengths.length} entries, expected B = ${B}`);
  for (let b = 0; b < B; b++) {
    if (!(lengths[b] >= 0 && lengths[b] <= T)) {
      throw new Error(`batch.lengths[${b}] = ${lengths[b]} is outside [0, ${T}]`);
    }
  }
  for (let i = 0; i < tokens.length; i++) {
    if (!(tokens[i] >= 0 && tokens[i] < cfg.vocabSize)) {
      throw new Error(
        `token id ${tokens[i]} at row ${Math.floor(i / T)}, position ${
          i % T
        } is outside [0, ${cfg.vocabSize})`,
      );
    }
  }
  if (head === "lm") {
    const targets = batch.targets;
    if (!targets) throw new Error("batch.targets is required for the lm head");
    if (targets.length !== B * T) {
      throw new Error(`batch.targets has ${targets.length} ids, expected ${B * T}`);
    }
    for (let i = 0; i < targets.length; i++) {
      if (!(targets[i] >= -1 && targets[i] < cfg.vocabSize)) {
        throw new Error(
          `target id ${targets[i]} at row ${Math.floor(i / T)}, position ${
            i % T
          } is outside [-1, ${cfg.vocabSize})`,
        );
      }
    }
  }
  if (head === "reward") {
    if (B % 2 !== 0) throw new Error(`batch.B must be even for the reward head (pairs of rows), got ${B}`);
    const soft = batch.pairTargets;
    if (!soft) throw new Error("batch.pairTargets is required for the reward head");
    if (soft.length !== B) {
      throw new Error(`batch.pairTargets has ${soft.length} values, expected (B/2)·2 = ${B}`);
    }
  }
  if (head === "cls") {
    const soft = batch.classTargets;
    if (!soft) throw new Error("batch.classTargets is required for the cls head");
    if (soft.length !== B * NUM_CLASSES) {
      throw new Error(
        `batch.classTargets has ${soft.length} values, expected B·${NUM_CLASSES} = ${B * NUM_CLASSES}`,
      );
    }
  }
}

export function refForward(cfg: GptConfig, params: Params, batch: RefBatch, head: Head): RefForwardResult {
  validateBatch(cfg, batch, head);
  const { B, T, tokens, lengths } = batch;
  const { width: C, layers: L } = cfg;
  const N = B * T;

  let residual: Float64Array = new Float64Array(N * C);
  encoderForward(residual, tokens, param(params, "wte.weight"), param(params, "wpe.weight"), B, T, C);
  const residuals = [residual];
  const blocks: BlockActivations[] = [];
  for (let l = 0; l < L; l++) {
    const block = blockForward(cfg, params, l, batch, residual);
    residual = block.residualOut;
    residuals.push(residual);
    blocks.push(block.act);
  }
  const lnf = new Float64Array(N * C);
  const lnfMean = new Float64Array(N);
  const lnfRstd = new Float64Array(N);
  layernormForward(
    lnf,
    lnfMean,
    lnfRstd,
    residual,
    param(params, "ln_f.weight"),
    param(params, "ln_f.bias"),
    N,
    C,
  );

  const features = [...residuals, lnf].map((stream) => lastTokenRows(stream, lengths, B, T, C));
  const { logits, dlogits, loss } = headForward(cfg, params, batch, head, lnf, features[L + 1]);
  return {
    loss,
    logits,
    features,
    cache: { blocks, residualOut: residual, lnf, lnfMean, lnfRstd, dlogits },
  };
}

/** Block l: x += attn(ln_1(x)); x += mlp(ln_2(x)). Returns its activations and the residual it outputs. */
function blockForward(
  cfg: GptConfig,
  params: Params,
  l: number,
  batch: RefBatch,
  residualIn: Float64Array,
): { act: BlockActivations; residualOut: Float64Array } {
  const { B, T, lengths } = batch;
  const { width: C, heads: H } = cfg;
  const N = B * T;
  const weight = (name: string) => param(params, `h.${l}.${name}`);
  const act: BlockActivations = {
    residualIn,
    ln1: new Float64Array(N * C),
    ln1Mean: new Float64Array(N),
    ln1Rstd: new Float64Array(N),
    qkv: new Float64Array(N * 3 * C),
    att: new Float64Array(B * H * T * T),
    attOut: new Float64Array(N * C),
    residualMid: new Float64Array(N * C),
    ln2: new Float64Array(N * C),
    ln2Mean: new Float64Array(N),
    ln2Rstd: new Float64Array(N),
    fc: new Float64Array(N * 4 * C),
    fcGelu: new Float64Array(N * 4 * C),
  };
  const branch = new Float64Array(N * C);
  layernormForward(
    act.ln1,
    act.ln1Mean,
    act.ln1Rstd,
    residualIn,
    weight("ln_1.weight"),
    weight("ln_1.bias"),
    N,
    C,
  );
  matmulForward(act.qkv, act.ln1, weight("attn.c_attn.weight"), weight("attn.c_attn.bias"), N, C, 3 * C);
  attentionForward(act.attOut, act.att, act.qkv, lengths, B, T, C, H);
  matmulForward(branch, act.attOut, weight("attn.c_proj.weight"), weight("attn.c_proj.bias"), N, C, C);
  residualForward(act.residualMid, residualIn, branch);
  layernormForward(
    act.ln2,
    act.ln2Mean,
    act.ln2Rstd,
    act.residualMid,
    weight("ln_2.weight"),
    weight("ln_2.bias"),
    N,
    C,
  );
  matmulForward(act.fc, act.ln2, weight("mlp.c_fc.weight"), weight("mlp.c_fc.bias"), N, C, 4 * C);
  geluForward(act.fcGelu, act.fc);
  matmulForward(branch, act.fcGelu, weight("mlp.c_proj.weight"), weight("mlp.c_proj.bias"), N, 4 * C, C);
  const residualOut = new Float64Array(N * C);
  residualForward(residualOut, act.residualMid, branch);
  return { act, residualOut };
}

/**
 * The head on ln_f's output: the tied LM head over every position, or the class or reward head on each
 * row's last token (`lnfLast`). Returns the logits, the loss and its gradient w.r.t. the logits.
 */
function headForward(
  cfg: GptConfig,
  params: Params,
  batch: RefBatch,
  head: Head,
  lnf: Float64Array,
  lnfLast: Float64Array,
): { logits: Float64Array; dlogits: Float64Array; loss: number } {
  const { B, T, lengths } = batch;
  const { width: C, vocabSize: V } = cfg;
  const N = B * T;
  if (head === "lm") {
    const logits = new Float64Array(N * V);
    lmHeadForward(logits, lnf, param(params, "wte.weight"), N, C, V);
    const dlogits = new Float64Array(N * V);
    const loss = crossEntropyForwardBackward(dlogits, logits, batch.targets!, N, V);
    return { logits, dlogits, loss };
  }
  if (head === "reward") {
    const rewards = new Float64Array(B);
    matmulForward(rewards, lnfLast, param(params, "reward.weight"), null, B, C, 1);
    for (let b = 0; b < B; b++) if (lengths[b] === 0) rewards[b] = 0;
    const drewards = new Float64Array(B);
    const loss = softCrossEntropyForwardBackward(
      drewards,
      rewards,
      batch.pairTargets!,
      pairValid(lengths),
      B / 2,
      2,
    );
    return { logits: rewards, dlogits: drewards, loss };
  }
  const logits = new Float64Array(B * NUM_CLASSES);
  matmulForward(logits, lnfLast, param(params, "cls.weight"), param(params, "cls.bias"), B, C, NUM_CLASSES);
  for (let b = 0; b < B; b++) if (lengths[b] === 0) logits.fill(0, b * NUM_CLASSES, (b + 1) * NUM_CLASSES);
  const dlogits = new Float64Array(B * NUM_CLASSES);
  const loss = softCrossEntropyForwardBackward(dlogits, logits, batch.classTargets!, lengths, B, NUM_CLASSES);
  return { logits, dlogits, loss };
}

/** 1 for each pair of rows (2i, 2i+1) that both hold tokens, else 0. */
export function pairValid(lengths: Int32Array): Int32Array {
  return Int32Array.from(
    { length: lengths.length / 2 },
    (_, i) => lengths[2 * i] > 0 && lengths[2 * i + 1] > 0 ? 1 : 0,
  );
}

/** Rows of a (B, T, C) stream at each sequence's last valid token; zeros for empty rows. */
function lastTokenRows(
  stream: Float64Array,
  lengths: Int32Array,
  B: number,
  T: number,
  C: number,
): Float64Array {
  const rows = new Float64Array(B * C);
  for (let b = 0; b < B; b++) {
    if (lengths[b] === 0) continue;
    const o = (b * T + lengths[b] - 1) * C;
    rows.set(stream.subarray(o, o + C), b * C);
  }
  return rows;
}

/** logits[n,v] = Σ_c lnf[n,c]·wte[v,c]  (tied embedding, NT product). */
function lmHeadForward(
  logits: Float64Array,
  lnf: Float64Array,
  wte: Float64Array,
  N: number,
  C: number,
  V: number,
) {
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      let sum = 0;
      for (let c = 0; c < C; c++) sum += lnf[n * C + c] * wte[v * C + c];
      logits[n * V + v] = sum;
    }
  }
}

function lmHeadBackward(
  dlnf: Float64Array,
  dwte: Float64Array,
  dlogits: Float64Array,
  lnf: Float64Array,
  wte: Float64Array,
  N: number,
  C: number,
  V: number,
) {
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      const d = dlogits[n * V + v];
      if (d === 0) continue;
      for (let c = 0; c < C; c++) {
        dlnf[n * C + c] += d * wte[v * C + c];
        dwte[v * C + c] += d * lnf[n * C + c];
      }
    }
  }
}

/** Gradients of the loss of `refForward` w.r.t. every parameter (zeros where the loss does not depend). */
export function refBackward(
  cfg: GptConfig,
  params: Params,
  batch: RefBatch,
  head: Head,
  forward: RefForwardResult = refForward(cfg, params, batch, head),
): Params {
  const { B, T, tokens } = batch;
  const { width: C, layers: L } = cfg;
  const N = B * T;
  const grads: Params = new Map();
  for (const spec of paramLayout(cfg).specs) grads.set(spec.name, new Float64Array(spec.size));
  const grad = (name: string) => grads.get(name)!;
  const { cache } = forward;

  const dlnf = headBackward(cfg, params, grads, batch, head, forward);
  let dresidual: Float64Array = new Float64Array(N * C);
  layernormBackward(
    dresidual,
    grad("ln_f.weight"),
    grad("ln_f.bias"),
    dlnf,
    cache.residualOut,
    param(params, "ln_f.weight"),
    cache.lnfMean,
    cache.lnfRstd,
    N,
    C,
  );
  for (let l = L - 1; l >= 0; l--) {
    dresidual = blockBackward(cfg, params, grads, l, batch, cache.blocks[l], dresidual);
  }
  encoderBackward(grad("wte.weight"), grad("wpe.weight"), dresidual, tokens, B, T, C);
  return grads;
}

/** Mirrors headForward: accumulates the head's parameter gradients and returns the gradient w.r.t. ln_f. */
function headBackward(
  cfg: GptConfig,
  params: Params,
  grads: Params,
  batch: RefBatch,
  head: Head,
  forward: RefForwardResult,
): Float64Array {
  const { B, T, lengths } = batch;
  const { width: C, layers: L, vocabSize: V } = cfg;
  const N = B * T;
  const grad = (name: string) => grads.get(name)!;
  const { cache } = forward;
  const dlnf = new Float64Array(N * C);
  if (head === "lm") {
    lmHeadBackward(dlnf, grad("wte.weight"), cache.dlogits, cache.lnf, param(params, "wte.weight"), N, C, V);
    return dlnf;
  }
  const dfeature = new Float64Array(B * C);
  const [weight, bias, outDim] = head === "cls"
    ? ["cls.weight", "cls.bias", NUM_CLASSES]
    : ["reward.weight", null, 1];
  matmulBackward(
    dfeature,
    grad(weight),
    bias ? grad(bias) : null,
    cache.dlogits,
    forward.features[L + 1],
    param(params, weight),
    B,
    C,
    outDim,
  );
  for (let b = 0; b < B; b++) {
    if (lengths[b] === 0) continue;
    const o = (b * T + lengths[b] - 1) * C;
    for (let c = 0; c < C; c++) dlnf[o + c] += dfeature[b * C + c];
  }
  return dlnf;
}

/**
 * Mirrors blockForward: from the gradient w.r.t. the block's output residual, accumulates block l's
 * parameter gradients and returns the gradient w.r.t. its input residual.
 */
function blockBackward(
  cfg: GptConfig,
  params: Params,
  grads: Params,
  l: number,
  batch: RefBatch,
  act: BlockActivations,
  dresidualOut: Float64Array,
): Float64Array {
  const { B, T, lengths } = batch;
  const { width: C, heads: H } = cfg;
  const N = B * T;
  const weight = (name: string) => param(params, `h.${l}.${name}`);
  const grad = (name: string) => grads.get(`h.${l}.${name}`)!;
  // residualOut = residualMid + mlp(ln_2(residualMid)): the residual gradient flows through unchanged.
  const dresidualMid = Float64Array.from(dresidualOut);
  const dfcGelu = new Float64Array(N * 4 * C);
  matmulBackward(
    dfcGelu,
    grad("mlp.c_proj.weight"),
    grad("mlp.c_proj.bias"),
    dresidualOut,
    act.fcGelu,
    weight("mlp.c_proj.weight"),
    N,
    4 * C,
    C,
  );
  const dfc = new Float64Array(N * 4 * C);
  geluBackward(dfc, act.fc, dfcGelu);
  const dln2 = new Float64Array(N * C);
  matmulBackward(
    dln2,
    grad("mlp.c_fc.weight"),
    grad("mlp.c_fc.bias"),
    dfc,
    act.ln2,
    weight("mlp.c_fc.weight"),
    N,
    C,
    4 * C,
  );
  layernormBackward(
    dresidualMid,
    grad("ln_2.weight"),
    grad("ln_2.bias"),
    dln2,
    act.residualMid,
    weight("ln_2.weight"),
    act.ln2Mean,
    act.ln2Rstd,
    N,
    C,
  );
  // residualMid = residualIn + attn(ln_1(residualIn)).
  const dresidualIn = Float64Array.from(dresidualMid);
  const dattOut = new Float64Array(N * C);
  matmulBackward(
    dattOut,
    grad("attn.c_proj.weight"),
    grad("attn.c_proj.bias"),
    dresidualMid,
    act.attOut,
    weight("attn.c_proj.weight"),
    N,
    C,
    C,
  );
  const dqkv = new Float64Array(N * 3 * C);
  attentionBackward(dqkv, dattOut, act.qkv, act.att, lengths, B, T, C, H);
  const dln1 = new Float64Array(N * C);
  matmulBackward(
    dln1,
    grad("attn.c_attn.weight"),
    grad("attn.c_attn.bias"),
    dqkv,
    act.ln1,
    weight("attn.c_attn.weight"),
    N,
    C,
    3 * C,
  );
  layernormBackward(
    dresidualIn,
    grad("ln_1.weight"),
    grad("ln_1.bias"),
    dln1,
    act.residualIn,
    weight("ln_1.weight"),
    act.ln1Mean,
    act.ln1Rstd,
    N,
    C,
  );
  return dresidualIn;
}

// ---------------------------------------------------------------------------------------------
// AdamW

export type AdamWHyper = AdamWSettings;
/** The fixture defaults. */
export { DEFAULT_ADAMW };

export interface AdamWState {
  /** Steps taken so far. */
  step: number;
  m: Params;
  v: Params;
}

export function newAdamWState(cfg: GptConfig): AdamWState {
  const m: Params = new Map();
  const v: Params = new Map();
  for (const spec of paramLayout(cfg).specs) {
    m.set(spec.name, new Float64Array(spec.size));
    v.set(spec.name, new Float64Array(spec.size));
  }
  return { step: 0, m, v };
}

/**
 * One AdamW step, in place on params and state (torch semantics): global gradient norm over all
 * parameters, clip coef = min(1, maxNorm/(norm + 1e-6)); decoupled decay p −= lr·wd·p on matrices only;
 * p −= lr·(m/(1−β1^t)) / (√v/√(1−β2^t) + eps). Returns the unclipped norm and the coefficient used.
 */
export function refAdamWStep(
  cfg: GptConfig,
  params: Params,
  grads: Params,
  state: AdamWState,
  hyper: AdamWHyper = DEFAULT_ADAMW,
): { gradNorm: number; clipCoef: number } {
  const layout = paramLayout(cfg);
  let sumSquares = 0;
  for (const spec of layout.specs) {
    const g = grads.get(spec.name);
    if (!g || g.length !== spec.size) throw new Error(`gradient of ${spec.name} is missing or mis-sized`);
    for (let i = 0; i < g.length; i++) sumSquares += g[i] * g[i];
  }
  const gradNorm = Math.sqrt(sumSquares);
  if (!Number.isFinite(gradNorm)) throw new Error(`non-finite gradient norm (${gradNorm}); step skipped`);
  const clipCoef = Math.min(1, hyper.maxGradNorm / (gradNorm + 1e-6));

  state.step += 1;
  const t = state.step;
  const biasCorrection1 = 1 - hyper.beta1 ** t;
  const biasCorrection2Sqrt = Math.sqrt(1 - hyper.beta2 ** t);
  for (const spec of layout.specs) {
    const p = param(params, spec.name);
    const g = grads.get(spec.name)!;
    const m = state.m.get(spec.name)!;
    const v = state.v.get(spec.name)!;
    const decayFactor = spec.decay ? 1 - hyper.lr * hyper.weightDecay : 1;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] * clipCoef;
      m[i] = hyper.beta1 * m[i] + (1 - hyper.beta1) * gi;
      v[i] = hyper.beta2 * v[i] + (1 - hyper.beta2) * gi * gi;
      p[i] *= decayFactor;
      p[i] -= (hyper.lr / biasCorrection1) * m[i] / (Math.sqrt(v[i]) / biasCorrection2Sqrt + hyper.eps);
    }
  }
  return { gradNorm, clipCoef };
}
