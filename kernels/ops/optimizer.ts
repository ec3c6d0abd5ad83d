/**
 * Global gradient norm and AdamW over the flat parameter / gradient / moment buffers.
 *
 * Frozen range [frozen_start, frozen_end) (uniforms, empty by default; frozenRangeParams): those
 * elements are left out of the gradient norm and AdamW leaves their params, m and v untouched, as
 * torch does for parameters with requires_grad = False.
 * Gradient norm (deterministic two-pass sum of squares):
 *   pass 1: workgroup w (NORM_WG invocations, grid1d over workgroups) sums g² over its fixed chunk
 *           [w·CHUNK, (w+1)·CHUNK) outside the frozen range, each invocation a strided subset in
 *           order, then a tree reduction → partials[w]. CHUNK = 64·64 elements (NORM_WG·ITEMS);
 *           `gradNormPartials(n)` = ⌈n / CHUNK⌉.
 *           v2 (the default where the window and the gradient are 4-aligned) has 16 invocations a
 *           chunk load vec4s, lane j of invocation q being v1's invocation 4q + j in v1's order, then
 *           v1's fallback tree over the same 64 sums: v1's bits where v1 has no subgroups, with a
 *           quarter of the loads and loop iterations on llvmpipe.
 *   pass 2: one workgroup sums the partials the same way → stats[GRAD_NORM_SQ]; a NaN/Inf sum
 *           (any non-finite gradient makes it so) sets stats[NONFINITE] = 1 (never cleared here).
 * Windows: a buffer larger than one storage binding is reduced and updated one window at a time
 * (runtime.ts windowRanges), shard by shard where the buffers are sharded (runtime.ts ShardedTensor),
 * every index compared with the frozen range and decayEnd being global (`base` + the index inside
 * the window). Norm windows hold whole chunks wherever a chunk fits a
 * binding (partials then equal one pass's bit for bit); a window that starts inside a chunk adds its
 * sum to the partial the previous window wrote.
 * AdamW (one invocation per element, 256 per workgroup, grid1d), torch.optim.AdamW semantics with
 * torch.nn.utils.clip_grad_norm_ before it:
 *   if stats[NONFINITE] ≠ 0 or i is frozen: nothing changes (params, m, v untouched).
 *   coef = max_norm > 0 ? min(1, max_norm / (√stats[GRAD_NORM_SQ] + 1e-6)) : 1;  g = coef·grad
 *   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
 *   if i < decayEnd: p = p·(1 − lr·wd)            (decoupled decay; matrices come first in the buffer)
 *              or, with an anchor p0 (L2-SP): p = p − lr·wd·(p − p0[i])   (decay toward p0, not 0)
 *   p = p − (lr/bc1) · m / (√v/√bc2 + eps)        (bc1 = 1−β1^t, bc2 = 1−β2^t)
 *   Uniform parameters lr, beta1, beta2, eps, weight_decay, bc1, bc2, max_norm (from AdamWSettings of
 *   kernels/config.ts); the caller rewrites them per step: setParams(adamwStepParams(settings, t)).
 * AdamW versions: v1 one element per invocation; v2 four (vec4 loads and stores, the same arithmetic
 * per element, so the same bits), 1.8–2.8× faster on llvmpipe, where each storage access is a per-lane
 * gather whatever its width. v2 needs every window's start and length, each tensor's offset and
 * decayEnd to be multiples of 4 (the model's layout pads every parameter to 64 floats); the frozen
 * range may fall anywhere (chosen per element). The default is v2 where it applies, else v1.
 */
import { type AdamWSettings, DEFAULT_ADAMW, NO_PARAMS, type ParamRange } from "../config.ts";
import type { Gpu } from "../device.ts";
import {
  asSharded,
  type Dispatch,
  grid1d,
  plan,
  type ShardedTensor,
  slice,
  type Tensor,
  windowRanges,
} from "../runtime.ts";
import {
  bindOperands,
  type BoundOperands,
  offsetParams,
  requireLength,
  requireShape,
  vec4Misfit,
  vec4Version,
  WGSL_COMMON,
} from "./operands.ts";
import { subgroupsEnable, workgroupReduce } from "./reduce.ts";
import { STAT_GRAD_NORM_SQ, STAT_NONFINITE, STATS_LENGTH } from "../stats.ts";
import type { KernelVersion } from "../versions.ts";

/** AdamW's workgroup (no barriers). */
const WG = 256;
/**
 * The gradient norm's workgroups: 64 invocations take 4× fewer barrier waits per tree level than 256
 * on llvmpipe, where a barrier suspends and resumes every invocation of the workgroup.
 */
const NORM_WG = 64;
const ITEMS = 64;
const CHUNK = NORM_WG * ITEMS;

/** Length of the partial-sums tensor planGradNorm needs for n gradient elements. */
export function gradNormPartials(n: number): number {
  return Math.max(1, Math.ceil(n / CHUNK));
}

/** The tree reduction, or subgroup operations where the device grants them (see reduce.ts). */
const reduce = (subgroups: boolean) => workgroupReduce(NORM_WG, { sum: "reduce_sum" }, { subgroups });

/** The uniforms of a frozen element range, for Dispatch.setParams of the norm's passes and AdamW. */
export function frozenRangeParams(frozen: ParamRange): Record<string, number> {
  return { frozen_start: frozen.start, frozen_end: frozen.end };
}

function requireRange(label: string, frozen: ParamRange, n: number): void {
  const { start, end } = frozen;
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= n)) {
    throw new Error(
      `${label}: frozen range [${start}, ${end}) must be integers with 0 ≤ start ≤ end ≤ n = ${n}`,
    );
  }
}

const NORM_PARAMS = /* wgsl */ `
struct Params {
  n: u32, chunks: u32, frozen_start: u32, frozen_end: u32, grads_off: u32, partials_off: u32, stats_off: u32,
  base: u32, count: u32, first_chunk: u32, window_chunks: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
`;

/**
 * Pass 1's entry point up to its sum, for both versions: the workgroup's chunk (`chunk`, its first element
 * `start`) and the window's end; `lane` names the local invocation index.
 */
function chunkEntry(workgroupSize: number, lane: string): string {
  return /* wgsl */ `
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let local = wid.x + wid.y * nwg.x;
  if (local >= params.window_chunks) { return; }
  let chunk = params.first_chunk + local;
  let ${lane} = lid.x;
  let start = chunk * ${CHUNK}u;
  let end = params.base + params.count;`;
}

/** Pass 1's store of the chunk's sum `total` (by one invocation), for both versions. */
function storePartial(partials: string, total: string): string {
  return /* wgsl */ `
    // A chunk the previous window began: add to its partial.
    var before = 0.0;
    if (start < params.base) { before = ${partials}[params.partials_off + chunk]; }
    ${partials}[params.partials_off + chunk] = before + ${total};`;
}

function partialSource(b: BoundOperands, subgroups: boolean): string {
  return subgroupsEnable({ subgroups }) + NORM_PARAMS + b.declarations + reduce(subgroups) +
    chunkEntry(NORM_WG, "tid") + /* wgsl */ `
  var s = 0.0;
  for (var k = 0u; k < ${ITEMS}u; k++) {
    let i = start + k * ${NORM_WG}u + tid;
    if (i >= params.base && i < end && (i < params.frozen_start || i >= params.frozen_end)) {
      let g = ${b.array.grads}[params.grads_off + i - params.base];
      s += g * g;
    }
  }
  let total = reduce_sum(tid, s);
  if (tid == 0u) {${storePartial(b.array.partials, "total")}
  }
}
`;
}

/**
 * Pass 1, v2: 16 invocations a chunk, each loading vec4s and so summing four of v1's strided subsets
 * at once (lane j of invocation q is v1's invocation 4q + j, in v1's order), then v1's fallback tree
 * over the same 64 sums. Bit for bit v1's where v1 runs that tree (no subgroups); needs the window's
 * start and length and the gradient's offset to be multiples of 4.
 */
function partialSourceV2(b: BoundOperands): string {
  const grads = b.array.grads, partials = b.array.partials;
  return NORM_PARAMS + b.declarations + `\nvar<workgroup> red: array<f32, ${NORM_WG}>;` +
    chunkEntry(NORM_WG / 4, "q") + /* wgsl */ `
  var s = vec4(0.0);
  for (var k = 0u; k < ${ITEMS}u; k++) {
    let i = start + k * ${NORM_WG}u + 4u * q;
    let idx = vec4<u32>(i, i + 1u, i + 2u, i + 3u);
    let inside = (idx >= vec4<u32>(params.base)) & (idx < vec4<u32>(end)) &
      ((idx < vec4<u32>(params.frozen_start)) | (idx >= vec4<u32>(params.frozen_end)));
    if (any(inside)) {
      let g = ${grads}[params.grads_off + (i - params.base) / 4u];
      s = s + select(vec4(0.0), g * g, inside);
    }
  }
  for (var j = 0u; j < 4u; j++) { red[4u * q + j] = s[j]; }
  workgroupBarrier();
  for (var stride = ${NORM_WG / 2}u; stride > 0u; stride = stride / 2u) {
    for (var t = q; t < stride; t += ${NORM_WG / 4}u) { red[t] = red[t] + red[t + stride]; }
    workgroupBarrier();
  }
  if (q == 0u) {${storePartial(partials, "red[0]")}
  }
}
`;
}

function finalSource(b: BoundOperands, subgroups: boolean): string {
  return subgroupsEnable({ subgroups }) + NORM_PARAMS + b.declarations + reduce(subgroups) + WGSL_COMMON +
    /* wgsl */ `
@compute @workgroup_size(${NORM_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.x;
  var s = 0.0;
  for (var c = tid; c < params.chunks; c += ${NORM_WG}u) { s += ${b.array.partials}[params.partials_off + c]; }
  let total = reduce_sum(tid, s);
  if (tid == 0u) {
    ${b.array.stats}[params.stats_off + ${STAT_GRAD_NORM_SQ}u] = total;
    if (is_nonfinite(total)) { ${b.array.stats}[params.stats_off + ${STAT_NONFINITE}u] = 1.0; }
  }
}
`;
}

export interface GradNormSpec {
  /** The flat gradient, in one buffer or in shards (runtime.ts ShardedTensor). */
  grads: Tensor | ShardedTensor;
  n: number;
  stats: Tensor;
  partials: Tensor;
  /** Elements left out of the norm (default none); later changes via setParams(frozenRangeParams(…)). */
  frozen?: ParamRange;
  label: string;
  /** Pass 1's version: default v2 (vec4) where its alignment holds, else v1; an explicit v2 that cannot apply is refused. */
  version?: GradNormVersion;
}

export type GradNormVersion = KernelVersion<"gradNorm">;

/** Why a vec4 kernel cannot take this window of the flat buffers ("" when it can). */
function windowMisfit(start: number, length: number): string {
  return start % 4 !== 0 || length % 4 !== 0 ? `window [${start}, ${start + length}) is not 4-aligned` : "";
}

/** Why v2 cannot sum this window ("" when it can): its start, length or the gradient's offset off 4. */
function gradNormV2Misfit(start: number, length: number, grads: Tensor): string {
  return windowMisfit(start, length) || vec4Misfit([[grads.label, grads.offset]]);
}

/** Returns [partial sums per window…, final sum] dispatches. */
export function planGradNorm(gpu: Gpu, s: GradNormSpec): Dispatch[] {
  const { n, label } = s;
  requireShape(label, "n", n);
  const chunks = gradNormPartials(n);
  requireLength(label, s.grads, n, "grads");
  requireLength(label, s.partials, chunks, "partials");
  requireLength(label, s.stats, STATS_LENGTH, "stats");
  const frozen = s.frozen ?? NO_PARAMS;
  requireRange(label, frozen, n);
  const all = (b: BoundOperands, base = 0, count = n) => {
    const firstChunk = Math.floor(base / CHUNK);
    return {
      n,
      chunks,
      ...frozenRangeParams(frozen),
      grads_off: 0,
      partials_off: 0,
      stats_off: 0,
      base,
      count,
      first_chunk: firstChunk,
      window_chunks: Math.ceil((base + count) / CHUNK) - firstChunk,
      ...offsetParams(b),
    };
  };
  const b2 = bindOperands(gpu, label, [
    { name: "partials", tensor: s.partials },
    { name: "stats", tensor: s.stats, write: true },
  ]);
  return [
    ...optimizerWindows(gpu, asSharded(s.grads), n, label).map((w, i, windows) => {
      const grads = w.part(s.grads);
      const misfit = gradNormV2Misfit(w.start, w.length, grads);
      const v2 = vec4Version(label, "gradient norm v2 (vec4)", s.version, "v2", misfit, "v1") === "v2";
      const b1 = bindOperands(gpu, label, [
        { name: "grads", tensor: grads, type: v2 ? "vec4f" : "f32" },
        { name: "partials", tensor: s.partials, write: true },
      ]);
      const params = all(b1, w.start, w.length);
      return plan(gpu, {
        label: label + " partials" + (windows.length > 1 ? ` [window ${i}]` : ""),
        code: v2 ? partialSourceV2(b1) : partialSource(b1, gpu.features.subgroups),
        params,
        bindings: b1.bindings,
        workgroups: grid1d(gpu, params.window_chunks, 1),
        flops: 2 * w.length,
        bytes: 4 * w.length,
      });
    }),
    plan(gpu, {
      label: label + " total",
      code: finalSource(b2, gpu.features.subgroups),
      params: all(b2),
      bindings: b2.bindings,
      workgroups: [1],
      flops: chunks,
      bytes: 4 * chunks,
    }),
  ];
}

/** The flat buffers AdamW updates: one buffer each, or shards with the same starts in all four. */
export interface AdamWSpec {
  params: Tensor | ShardedTensor;
  grads: Tensor | ShardedTensor;
  m: Tensor | ShardedTensor;
  v: Tensor | ShardedTensor;
  n: number;
  /** Elements [0, decayEnd) get weight decay. */
  decayEnd: number;
  /**
   * Decay toward these values instead of zero (L2-SP; decayEnd elements, the decayed range only).
   * Absent: the plain decay, and no buffer is bound.
   */
  anchor?: Tensor | ShardedTensor;
  /** Elements AdamW leaves untouched (default none); later changes via setParams(frozenRangeParams(…)). */
  frozen?: ParamRange;
  stats: Tensor;
  label: string;
  /** Default v2 (vec4) where its alignment holds, else v1; an explicit v2 that cannot apply is refused. */
  version?: AdamWVersion;
}

export type AdamWVersion = KernelVersion<"adamw">;

/**
 * The uniforms of AdamW step `step` (1, 2, …) under `settings`, for Dispatch.setParams; `lr` replaces
 * the settings' rate (a schedule's value at this step).
 */
export function adamwStepParams(
  settings: AdamWSettings,
  step: number,
  lr = settings.lr,
): Record<string, number> {
  return {
    lr,
    beta1: settings.beta1,
    beta2: settings.beta2,
    eps: settings.eps,
    weight_decay: settings.weightDecay,
    bc1: 1 - Math.pow(settings.beta1, step),
    bc2: 1 - Math.pow(settings.beta2, step),
    max_norm: settings.maxGradNorm,
  };
}

/**
 * AdamW's WGSL. v1: one element per invocation. v2: four (li counts vec4s; decayEnd is a multiple of
 * 4, the frozen range need not be, so it is chosen per element); per element the same arithmetic.
 */
function adamwSource(b: BoundOperands, version: AdamWVersion): string {
  const p = b.array.p, g = b.array.g, m = b.array.m, v = b.array.v, stats = b.array.stats;
  const anchor = b.array.anchor;
  const decay = anchor
    ? `w = w - params.lr * params.weight_decay * (w - ${anchor}[params.anchor_off + li]);`
    : `w = w * (1.0 - params.lr * params.weight_decay);`;
  const v2 = version === "v2";
  // li indexes the window's tensors; i = its (first) element of the whole buffer (frozen range, decayEnd).
  const frozen = v2
    ? `let idx = vec4<u32>(i, i + 1u, i + 2u, i + 3u);
  let frozen = (idx >= vec4<u32>(params.frozen_start)) & (idx < vec4<u32>(params.frozen_end));
  if (all(frozen)) { return; }`
    : `if (i >= params.frozen_start && i < params.frozen_end) { return; }`;
  // m as torch's exp_avg.lerp_(grad, 1 − β1) rounds it; v2 keeps the old values of frozen elements.
  const store = (array: string, name: string, value: string, old: string) =>
    `${array}[params.${name}_off + li] = ${v2 ? `select(${value}, ${old}, frozen)` : value};`;
  return /* wgsl */ `
struct Params {
  n: u32, base: u32, decay_end: u32, frozen_start: u32, frozen_end: u32,
  lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, bc1: f32, bc2: f32, max_norm: f32,
  p_off: u32, g_off: u32, m_off: u32, v_off: u32, stats_off: u32,${anchor ? " anchor_off: u32," : ""}
}
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let li = gid.x + gid.y * nwg.x * ${WG}u;
  let i = params.base + ${v2 ? "4u * li" : "li"};
  if (i - params.base >= params.n) { return; }
  if (${stats}[params.stats_off + ${STAT_NONFINITE}u] != 0.0) { return; }
  ${frozen}
  var coef = 1.0;
  if (params.max_norm > 0.0) {
    let norm = sqrt(${stats}[params.stats_off + ${STAT_GRAD_NORM_SQ}u]);
    coef = min(1.0, params.max_norm / (norm + 1e-6));
  }
  let grad = ${g}[params.g_off + li] * coef;
  let m_old = ${m}[params.m_off + li];
  let v_old = ${v}[params.v_off + li];
  let p_old = ${p}[params.p_off + li];
  let mi = m_old + (1.0 - params.beta1) * (grad - m_old);
  let vi = params.beta2 * v_old + (1.0 - params.beta2) * grad * grad;
  var w = p_old;
  if (i < params.decay_end) { ${decay} }
  let denom = sqrt(vi) / sqrt(params.bc2) + params.eps;
  ${store(m, "m", "mi", "m_old")}
  ${store(v, "v", "vi", "v_old")}
  ${store(p, "p", "w - (params.lr / params.bc1) * (mi / denom)", "p_old")}
}
`;
}

/** Why v2 cannot update this window ("" when it can): its start, length, offsets or decayEnd off 4. */
function adamwV2Misfit(start: number, length: number, decayEnd: number, tensors: Tensor[]): string {
  return windowMisfit(start, length) ||
    (decayEnd % 4 !== 0 ? `decayEnd ${decayEnd} is not a multiple of 4` : "") ||
    vec4Misfit(tensors.map((t) => [t.label, t.offset]));
}

/**
 * Windows of the first n elements of a flat buffer for the flat-buffer kernels, shard by shard: whole
 * gradient-norm chunks of the shard where a chunk fits one binding (unsharded, the partial sums then
 * do not depend on the windows), else single elements.
 */
function optimizerWindows(gpu: Gpu, flat: ShardedTensor, n: number, label: string) {
  const unit = chunkFitsBinding(gpu) ? CHUNK : 1;
  return flat.shards.flatMap(({ start: shardStart, tensor }, shard) => {
    const count = Math.min(tensor.length, n - shardStart);
    if (count <= 0) return [];
    return windowRanges(gpu, Math.ceil(count / unit), unit, label).map((w) => {
      const local = w.start * unit;
      const length = Math.min(w.length * unit, count - local);
      return {
        /** Element of the whole buffer where the window starts. */
        start: shardStart + local,
        length,
        /** The window's part of a flat buffer sharded like `flat` (the first `upTo` elements only). */
        part: (t: Tensor | ShardedTensor, upTo = length) =>
          slice(asSharded(t).shards[shard].tensor, local, upTo),
      };
    });
  });
}

function chunkFitsBinding(gpu: Gpu): boolean {
  const usable = gpu.limits.maxStorageBufferBindingSize - gpu.limits.minStorageBufferOffsetAlignment - 16;
  return usable >= 4 * CHUNK;
}

/** Throws unless the flat buffers are sharded alike: the same shard starts (the anchor's may stop early). */
function requireSameShards(
  label: string,
  flats: (Tensor | ShardedTensor)[],
  anchor?: Tensor | ShardedTensor,
) {
  const startsOf = (t: Tensor | ShardedTensor) => asSharded(t).shards.map((s) => s.start);
  const want = startsOf(flats[0]);
  const alike = (got: number[], prefix: boolean) =>
    (prefix ? got.length <= want.length : got.length === want.length) && got.every((s, i) => s === want[i]);
  if (!flats.every((t) => alike(startsOf(t), false)) || (anchor && !alike(startsOf(anchor), true))) {
    const all = [...flats, ...(anchor ? [anchor] : [])].map((t) => `${t.label}: ${startsOf(t).join(", ")}`);
    throw new Error(`${label}: the flat buffers must be sharded alike (shard starts ${all.join("; ")})`);
  }
}

/**
 * Plans the update as step 1 under `settings`, one dispatch per window of the buffers; later steps
 * set the uniforms of every dispatch with adamwStepParams.
 */
export function planAdamW(gpu: Gpu, s: AdamWSpec, settings: AdamWSettings = DEFAULT_ADAMW): Dispatch[] {
  const { n, label } = s;
  requireShape(label, "n", n);
  for (const [t, what] of [[s.params, "params"], [s.grads, "grads"], [s.m, "m"], [s.v, "v"]] as const) {
    requireLength(label, t, n, what);
  }
  requireLength(label, s.stats, STATS_LENGTH, "stats");
  if (!Number.isInteger(s.decayEnd) || s.decayEnd < 0 || s.decayEnd > n) {
    throw new Error(`${label}: decayEnd ${s.decayEnd} must be an integer in [0, n = ${n}]`);
  }
  if (s.anchor) requireLength(label, s.anchor, s.decayEnd, "anchor");
  const frozen = s.frozen ?? NO_PARAMS;
  requireRange(label, frozen, n);
  requireSameShards(label, [s.params, s.grads, s.m, s.v], s.anchor);
  const windows = optimizerWindows(gpu, asSharded(s.params), n, label);
  return windows.map(({ start, length, part }, i) => {
    // The anchor holds the decayed range only: a window past decayEnd binds none (it decays nothing).
    const anchored = Math.min(length, s.decayEnd - start);
    const flats = [part(s.params), part(s.grads), part(s.m), part(s.v)];
    const anchorPart = s.anchor && anchored > 0 ? part(s.anchor, anchored) : undefined;
    const misfit = adamwV2Misfit(start, length, s.decayEnd, anchorPart ? [...flats, anchorPart] : flats);
    const v2 = vec4Version(label, "AdamW v2 (vec4)", s.version, "v2", misfit, "v1") === "v2";
    const type = v2 ? "vec4f" as const : "f32" as const;
    const b = bindOperands(gpu, label, [
      { name: "p", tensor: flats[0], write: true, type },
      { name: "g", tensor: flats[1], type },
      { name: "m", tensor: flats[2], write: true, type },
      { name: "v", tensor: flats[3], write: true, type },
      { name: "stats", tensor: s.stats },
      ...(anchorPart ? [{ name: "anchor", tensor: anchorPart, type }] : []),
    ]);
    return plan(gpu, {
      label: label + (windows.length > 1 ? ` [window ${i}]` : ""),
      code: adamwSource(b, v2 ? "v2" : "v1"),
      params: {
        n: length,
        base: start,
        decay_end: s.decayEnd,
        ...frozenRangeParams(frozen),
        ...adamwStepParams(settings, 1),
        ...offsetParams(b),
      },
      bindings: b.bindings,
      workgroups: grid1d(gpu, v2 ? length / 4 : length, WG),
      flops: 20 * length,
      bytes: 4 * 7 * length + (s.anchor ? 4 * Math.max(0, anchored) : 0),
    });
  });
}
