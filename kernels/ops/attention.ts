/**
 * Causal multi-head self-attention with key padding, forward and backward. Versions (spec.version of
 * planAttentionForward / planAttentionBackward, which dispatch to the numbered functions):
 *   v1 per row          one invocation per attention row; simple, exact (planAttentionForwardV1, below).
 *   v2 batched matmuls  the products as batched matmuls around small row kernels (…V2, below).
 *   v3 flash            online softmax, a log-sum-exp per row instead of the T×T probabilities
 *                       (…V3, in attention-flash.ts); the default up to head size FLASH_MAX_HEAD_SIZE.
 *   v4 flash, textures  v3's kernels reading qkv (and dout) from textures packed first
 *                       (texture-operand.ts), the same bits; the model's default instead of v3 where
 *                       the engine prefers texture operands (setKernelOperands) and the shape allows.
 * v1 and v2 save the probabilities for the backward, v3 and v4 the log-sum-exp: spec.saved holds either.
 *
 * v1 in detail. Layouts (row-major, N = B·T rows, hs = C/H):
 *   qkv   N×3C: q | k | v along the last axis; head h uses columns h·hs .. h·hs+hs of each part.
 *   out   N×C:  head h writes columns h·hs .. h·hs+hs.
 *   probs B×H×T×T: the saved softmax, probs[b,h,i,j]; masked entries are exactly 0.
 *   lengths i32 B: key j is allowed for query i iff j ≤ i and j < lengths[b] (clamped to [0, T]).
 *   A query with no allowed key (lengths[b] = 0) has all-zero probs and outputs 0 (no NaN).
 *
 * Forward (per (b,h,i)): s_j = (q_i·k_j)/√hs over allowed j; p = softmax(s) (max-subtracted);
 *   out_i = Σ_j p_j v_j. Sums run over j ascending.
 * Backward, with dP_ij = dout_i·v_j and D_i = Σ_j P_ij dP_ij, dS_ij = P_ij (dP_ij − D_i):
 *   dispatch 1, per (b,h,i): D_i (kept in a small scratch tensor B·H·T owned by the plan), then
 *               dq_i = scale Σ_j dS_ij k_j (j ascending);
 *   dispatch 2, per (b,h,j): dk_j = scale Σ_i dS_ij q_i and dv_j = Σ_i P_ij dout_i (i ascending;
 *               entries with P_ij = 0 contribute nothing and are skipped).
 *   dqkv is overwritten entirely (also rows of padding positions).
 * Dispatch shape: B·H·T invocations, 64 per workgroup, grid1d.
 */
import type { Gpu } from "../device.ts";
import { bindTensor, createTensor, type Dispatch, grid1d, plan, slice, type Tensor } from "../runtime.ts";
import { planMatmul } from "./matmul.ts";
import { bindOperands, type BoundOperands, offsetParams, requireLength, requireShape } from "./operands.ts";
import {
  FLASH_MAX_HEAD_SIZE,
  planAttentionBackwardV3,
  planAttentionForwardV3,
  whyNotAttentionTextures,
} from "./attention-flash.ts";
import { kernelOperands } from "./texture-operand.ts";
import { KERNEL_VERSIONS, type KernelVersion } from "../versions.ts";

export type AttentionVersion = KernelVersion<"attention">;

/**
 * The version a model takes unless told: v3, which holds a head in registers, up to its largest head
 * (else v2); v4 instead of v3 where the engine prefers texture operands and `rows` (B·T) rows of this
 * shape fit a texture on `gpu`. v3 and v4 save the same, so memory plans need only the head size.
 */
export function defaultAttentionVersion(
  headSize: number,
  textures?: { gpu: Gpu; B: number; T: number; C: number; H: number },
): AttentionVersion {
  if (headSize > FLASH_MAX_HEAD_SIZE) return "v2";
  const v4 = textures && kernelOperands() === "textures" &&
    whyNotAttentionTextures(textures.gpu, textures) === undefined;
  return v4 ? "v4" : "v3";
}

/** Whether a version saves the log-sum-exp per row (v3, v4) rather than the probabilities (v1, v2). */
export function savesLogSumExp(version: AttentionVersion): boolean {
  return version === "v3" || version === "v4";
}

/** Floats a version saves for its backward: probs B·H·T·T (v1, v2) or the log-sum-exp B·H·T (v3, v4). */
export function attentionSavedLength(version: AttentionVersion, s: { B: number; H: number; T: number }) {
  return savesLogSumExp(version) ? s.B * s.H * s.T : s.B * s.H * s.T * s.T;
}

/** Any version's forward; its backward takes the same spec plus dout and dqkv. */
export interface AttentionSpec {
  version: AttentionVersion;
  qkv: Tensor;
  lengths: Tensor;
  /** Written by the forward; v3's backward reads it. */
  out: Tensor;
  /** Written by the forward, read by the backward: see attentionSavedLength. */
  saved: Tensor;
  B: number;
  T: number;
  C: number;
  H: number;
  label: string;
}

/** Throws unless `version` names one of the versions (an option can come from untyped input). */
export function requireAttentionVersion(version: string): void {
  if (!Object.hasOwn(KERNEL_VERSIONS.attention, version)) {
    throw new Error(
      `attention version ${version} is unknown (${Object.keys(KERNEL_VERSIONS.attention).join(", ")})`,
    );
  }
}

export function planAttentionForward(gpu: Gpu, s: AttentionSpec): Dispatch[] {
  requireAttentionVersion(s.version);
  const { version, saved, ...shape } = s;
  if (savesLogSumExp(version)) {
    return planAttentionForwardV3(gpu, { ...shape, lse: saved, textures: version === "v4" });
  }
  return version === "v1"
    ? [planAttentionForwardV1(gpu, { ...shape, probs: saved })]
    : planAttentionForwardV2(gpu, { ...shape, probs: saved });
}

export function planAttentionBackward(
  gpu: Gpu,
  s: AttentionSpec & { dout: Tensor; dqkv: Tensor },
): Dispatch[] {
  requireAttentionVersion(s.version);
  const { version, saved, out, ...shape } = s;
  if (savesLogSumExp(version)) {
    return planAttentionBackwardV3(gpu, { ...shape, out, lse: saved, textures: version === "v4" });
  }
  return version === "v1"
    ? planAttentionBackwardV1(gpu, { ...shape, probs: saved })
    : planAttentionBackwardV2(gpu, { ...shape, probs: saved });
}

const WG = 64;

const HEADER = /* wgsl */ `
struct Params {
  B: u32, T: u32, C: u32, H: u32, hs: u32, scale: f32,
  qkv_off: u32, lengths_off: u32, probs_off: u32, out_off: u32, dout_off: u32, dlse_off: u32, dqkv_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
`;

const ROW = /* wgsl */ `
struct Row { b: u32, h: u32, i: u32, valid: bool }
// Invocation r handles attention row (b·H + h)·T + i (a query row, or key row i in dk/dv).
fn row_of(gid: vec3<u32>, nwg: vec3<u32>) -> Row {
  var r: Row;
  let idx = gid.x + gid.y * nwg.x * ${WG}u;
  r.valid = idx < params.B * params.H * params.T;
  r.i = idx % params.T;
  let bh = idx / params.T;
  r.h = bh % params.H;
  r.b = bh / params.H;
  return r;
}
`;

function lengthOf(b: BoundOperands): string {
  return /* wgsl */ `
fn seq_len(batch: u32) -> u32 {
  return u32(clamp(${b.array.lengths}[params.lengths_off + batch], 0, i32(params.T)));
}
// Element offset of part (0 = q, 1 = k, 2 = v) of head h at token t of sequence b inside qkv rows.
fn qkv_index(b: u32, t: u32, part: u32, h: u32) -> u32 {
  return (b * params.T + t) * 3u * params.C + part * params.C + h * params.hs;
}
fn row_index(b: u32, h: u32, i: u32) -> u32 { return (b * params.H + h) * params.T + i; }
`;
}

function forwardSource(b: BoundOperands): string {
  const qkv = b.array.qkv, probs = b.array.probs, out = b.array.out;
  return HEADER + b.declarations + ROW + lengthOf(b) + /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(gid, nwg);
  if (!r.valid) { return; }
  let T = params.T;
  let hs = params.hs;
  let keys = min(r.i + 1u, seq_len(r.b));
  let p0 = params.probs_off + row_index(r.b, r.h, r.i) * T;
  let q0 = params.qkv_off + qkv_index(r.b, r.i, 0u, r.h);
  var max_score = -3.4028234663852886e38;
  for (var j = 0u; j < keys; j++) {
    let k0 = params.qkv_off + qkv_index(r.b, j, 1u, r.h);
    var dot = 0.0;
    for (var d = 0u; d < hs; d++) { dot += ${qkv}[q0 + d] * ${qkv}[k0 + d]; }
    let s = dot * params.scale;
    ${probs}[p0 + j] = s;
    max_score = max(max_score, s);
  }
  var sum = 0.0;
  for (var j = 0u; j < keys; j++) {
    let e = exp(${probs}[p0 + j] - max_score);
    ${probs}[p0 + j] = e;
    sum += e;
  }
  var inv = 0.0;
  if (keys > 0u) { inv = 1.0 / sum; }
  for (var j = 0u; j < T; j++) {
    if (j < keys) { ${probs}[p0 + j] = ${probs}[p0 + j] * inv; } else { ${probs}[p0 + j] = 0.0; }
  }
  let o0 = params.out_off + (r.b * T + r.i) * params.C + r.h * hs;
  for (var d = 0u; d < hs; d++) {
    var acc = 0.0;
    for (var j = 0u; j < keys; j++) {
      acc += ${probs}[p0 + j] * ${qkv}[params.qkv_off + qkv_index(r.b, j, 2u, r.h) + d];
    }
    ${out}[o0 + d] = acc;
  }
}
`;
}

export interface AttentionForwardSpec {
  qkv: Tensor;
  lengths: Tensor;
  out: Tensor;
  probs: Tensor;
  B: number;
  T: number;
  C: number;
  H: number;
  label: string;
}

function checkShape(s: { B: number; T: number; C: number; H: number; label: string }): number {
  for (const [name, v] of [["B", s.B], ["T", s.T], ["C", s.C], ["H", s.H]] as const) {
    requireShape(s.label, name, v);
  }
  if (s.C % s.H !== 0) throw new Error(`${s.label}: C = ${s.C} is not divisible by H = ${s.H}`);
  return s.C / s.H;
}

function baseParams(s: { B: number; T: number; C: number; H: number }, hs: number) {
  // Every field of Params is set (unused offsets 0) so one struct serves all three kernels.
  return {
    B: s.B,
    T: s.T,
    C: s.C,
    H: s.H,
    hs,
    scale: 1 / Math.sqrt(hs),
    qkv_off: 0,
    lengths_off: 0,
    probs_off: 0,
    out_off: 0,
    dout_off: 0,
    dlse_off: 0,
    dqkv_off: 0,
  };
}

export function planAttentionForwardV1(gpu: Gpu, s: AttentionForwardSpec): Dispatch {
  const hs = checkShape(s);
  const { B, T, C, H, label } = s;
  const N = B * T;
  requireLength(label, s.qkv, N * 3 * C, "qkv");
  requireLength(label, s.lengths, B, "lengths");
  requireLength(label, s.out, N * C, "out");
  requireLength(label, s.probs, B * H * T * T, "probs");
  const b = bindOperands(gpu, label, [
    { name: "qkv", tensor: s.qkv },
    { name: "lengths", tensor: s.lengths, type: "i32" },
    { name: "probs", tensor: s.probs, write: true },
    { name: "out", tensor: s.out, write: true },
  ]);
  return plan(gpu, {
    family: "attention",
    label,
    code: forwardSource(b),
    params: { ...baseParams(s, hs), ...offsetParams(b) },
    bindings: b.bindings,
    workgroups: grid1d(gpu, B * H * T, WG),
    flops: 2 * B * H * T * T * hs, // causal half of 2·(QKᵀ + PV)
    bytes: 4 * (N * 3 * C + N * C + B * H * T * T),
  });
}

function backwardQuerySource(b: BoundOperands): string {
  const qkv = b.array.qkv,
    probs = b.array.probs,
    dout = b.array.dout,
    dlse = b.array.dlse,
    dqkv = b.array.dqkv;
  return HEADER + b.declarations + ROW + lengthOf(b) + /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(gid, nwg);
  if (!r.valid) { return; }
  let T = params.T;
  let hs = params.hs;
  let keys = min(r.i + 1u, seq_len(r.b));
  let row = row_index(r.b, r.h, r.i);
  let p0 = params.probs_off + row * T;
  let g0 = params.dout_off + (r.b * T + r.i) * params.C + r.h * hs;
  var D = 0.0;
  for (var j = 0u; j < keys; j++) {
    let v0 = params.qkv_off + qkv_index(r.b, j, 2u, r.h);
    var dp = 0.0;
    for (var d = 0u; d < hs; d++) { dp += ${dout}[g0 + d] * ${qkv}[v0 + d]; }
    D += ${probs}[p0 + j] * dp;
  }
  ${dlse}[params.dlse_off + row] = D;
  let dq0 = params.dqkv_off + qkv_index(r.b, r.i, 0u, r.h);
  for (var d = 0u; d < hs; d++) { ${dqkv}[dq0 + d] = 0.0; }
  for (var j = 0u; j < keys; j++) {
    let v0 = params.qkv_off + qkv_index(r.b, j, 2u, r.h);
    var dp = 0.0;
    for (var d = 0u; d < hs; d++) { dp += ${dout}[g0 + d] * ${qkv}[v0 + d]; }
    let ds = ${probs}[p0 + j] * (dp - D) * params.scale;
    let k0 = params.qkv_off + qkv_index(r.b, j, 1u, r.h);
    for (var d = 0u; d < hs; d++) { ${dqkv}[dq0 + d] = ${dqkv}[dq0 + d] + ds * ${qkv}[k0 + d]; }
  }
}
`;
}

function backwardKeySource(b: BoundOperands): string {
  const qkv = b.array.qkv,
    probs = b.array.probs,
    dout = b.array.dout,
    dlse = b.array.dlse,
    dqkv = b.array.dqkv;
  return HEADER + b.declarations + ROW + lengthOf(b) + /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(gid, nwg);
  if (!r.valid) { return; }
  let T = params.T;
  let hs = params.hs;
  let j = r.i; // this invocation owns key/value row j
  let dk0 = params.dqkv_off + qkv_index(r.b, j, 1u, r.h);
  let dv0 = params.dqkv_off + qkv_index(r.b, j, 2u, r.h);
  for (var d = 0u; d < hs; d++) {
    ${dqkv}[dk0 + d] = 0.0;
    ${dqkv}[dv0 + d] = 0.0;
  }
  if (j >= seq_len(r.b)) { return; } // a padding key is never attended to
  let v0 = params.qkv_off + qkv_index(r.b, j, 2u, r.h);
  for (var i = j; i < T; i++) {
    let row = row_index(r.b, r.h, i);
    let p = ${probs}[params.probs_off + row * T + j];
    if (p == 0.0) { continue; }
    let g0 = params.dout_off + (r.b * T + i) * params.C + r.h * hs;
    var dp = 0.0;
    for (var d = 0u; d < hs; d++) { dp += ${dout}[g0 + d] * ${qkv}[v0 + d]; }
    let ds = p * (dp - ${dlse}[params.dlse_off + row]) * params.scale;
    let q0 = params.qkv_off + qkv_index(r.b, i, 0u, r.h);
    for (var d = 0u; d < hs; d++) {
      ${dqkv}[dk0 + d] = ${dqkv}[dk0 + d] + ds * ${qkv}[q0 + d];
      ${dqkv}[dv0 + d] = ${dqkv}[dv0 + d] + p * ${dout}[g0 + d];
    }
  }
}
`;
}

export interface AttentionBackwardSpec {
  dout: Tensor;
  qkv: Tensor;
  probs: Tensor;
  lengths: Tensor;
  dqkv: Tensor;
  B: number;
  T: number;
  C: number;
  H: number;
  label: string;
}

/** Returns [dq (+ row sums D), dk dv] dispatches. */
export function planAttentionBackwardV1(gpu: Gpu, s: AttentionBackwardSpec): Dispatch[] {
  const hs = checkShape(s);
  const { B, T, C, H, label } = s;
  const N = B * T;
  requireLength(label, s.dout, N * C, "dout");
  requireLength(label, s.qkv, N * 3 * C, "qkv");
  requireLength(label, s.probs, B * H * T * T, "probs");
  requireLength(label, s.lengths, B, "lengths");
  requireLength(label, s.dqkv, N * 3 * C, "dqkv");
  // D_i = Σ_j P_ij dP_ij per attention row, written by dispatch 1 and read by dispatch 2.
  const rowSums = createTensor(gpu, B * H * T, label + " row sums D");
  const operands = (writeRowSums: boolean) => [
    { name: "dout", tensor: s.dout },
    { name: "qkv", tensor: s.qkv },
    { name: "probs", tensor: s.probs },
    { name: "lengths", tensor: s.lengths, type: "i32" as const },
    { name: "dlse", tensor: rowSums, write: writeRowSums },
    { name: "dqkv", tensor: s.dqkv, write: true },
  ];
  const bq = bindOperands(gpu, label, operands(true));
  const bk = bindOperands(gpu, label, operands(false));
  const flops = 2 * B * H * T * T * hs; // per dispatch, causal half
  const bytes = 4 * (N * 3 * C + N * C + B * H * T * T);
  return [
    plan(gpu, {
      family: "attention",
      label: label + " dq",
      code: backwardQuerySource(bq),
      params: { ...baseParams(s, hs), ...offsetParams(bq) },
      bindings: bq.bindings,
      workgroups: grid1d(gpu, B * H * T, WG),
      flops,
      bytes,
    }),
    plan(gpu, {
      family: "attention",
      label: label + " dk dv",
      code: backwardKeySource(bk),
      params: { ...baseParams(s, hs), ...offsetParams(bk) },
      bindings: bk.bindings,
      workgroups: grid1d(gpu, B * H * T, WG),
      flops: 2 * flops,
      bytes,
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// v2: attention as batched matmuls (the automatic matmul version) around small row kernels.
//
// Forward:  S = scale·Q·Kᵀ per (b, h) into probs; masked softmax in place (row kernel); out = P·V.
// Backward: dP = dout·Vᵀ (scratch B·H·T·T); dS = P ⊙ (dP − Σ_j P·dP) in place (row kernel);
//           dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = Pᵀ·dout, written into dqkv (overwrite).
// The matmuls compute the masked (causal) half too: on a CPU adapter they are so much faster per FLOP
// than v1's per-row loops that this pays for itself. Same layouts and semantics as v1 (masked probs exactly 0;
// a row with no allowed key has all-zero probs and outputs 0). Row kernels: one invocation per
// attention row (b, h, i), 64 per workgroup, grid1d.

const SOFTMAX_ROWS = /* wgsl */ `
struct Params { B: u32, T: u32, H: u32, probs_off: u32, len_off: u32, width: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;
@group(0) @binding(2) var<storage, read> lengths: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + gid.y * params.width;
  if (row >= params.B * params.H * params.T) { return; }
  let i = row % params.T;
  let b = row / (params.T * params.H);
  let len = u32(clamp(lengths[params.len_off + b], 0, i32(params.T)));
  let base = params.probs_off + row * params.T;
  // Allowed keys: j ≤ i and j < len, i.e. j < min(i + 1, len).
  let end = min(i + 1u, len);
  var m = -3.4e38;
  for (var j = 0u; j < end; j++) { m = max(m, probs[base + j]); }
  var sum = 0.0;
  for (var j = 0u; j < end; j++) {
    let e = exp(probs[base + j] - m);
    probs[base + j] = e;
    sum += e;
  }
  let inv = select(0.0, 1.0 / sum, end > 0u);
  for (var j = 0u; j < params.T; j++) {
    probs[base + j] = select(0.0, probs[base + j] * inv, j < end);
  }
}
`;

const SOFTMAX_BACKWARD_ROWS = /* wgsl */ `
struct Params { rows: u32, T: u32, probs_off: u32, grad_off: u32, width: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + gid.y * params.width;
  if (row >= params.rows) { return; }
  let p0 = params.probs_off + row * params.T;
  let g0 = params.grad_off + row * params.T;
  var d = 0.0;
  for (var j = 0u; j < params.T; j++) { d += probs[p0 + j] * grad[g0 + j]; }
  for (var j = 0u; j < params.T; j++) { grad[g0 + j] = probs[p0 + j] * (grad[g0 + j] - d); }
}
`;

/** Strides of one head's q, k or v block inside qkv, for the batched matmuls over (b, h). */
function headOperand(qkv: Tensor, part: number, T: number, C: number, label: string) {
  return {
    tensor: slice(qkv, part * C, qkv.length - part * C, label),
    ld: 3 * C,
    outer: T * 3 * C,
  };
}

export function planAttentionForwardV2(gpu: Gpu, s: AttentionForwardSpec): Dispatch[] {
  const { B, T, C, H, label } = s;
  const hs = C / H;
  const N = B * T;
  requireLength(label, s.qkv, N * 3 * C, "qkv");
  requireLength(label, s.lengths, B, "lengths");
  requireLength(label, s.out, N * C, "out");
  requireLength(label, s.probs, B * H * T * T, "probs");
  const q = headOperand(s.qkv, 0, T, C, "q");
  const k = headOperand(s.qkv, 1, T, C, "k");
  const v = headOperand(s.qkv, 2, T, C, "v");
  const probsStrides = { batchStrideC: H * T * T, innerStrideC: T * T };
  const scores = planMatmul(gpu, {
    label: label + " scores",
    a: q.tensor,
    b: k.tensor,
    c: s.probs,
    M: T,
    N: T,
    K: hs,
    transB: true,
    lda: q.ld,
    ldb: k.ld,
    ldc: T,
    alpha: 1 / Math.sqrt(hs),
    batch: B * H,
    batchSplit: H,
    batchStrideA: q.outer,
    innerStrideA: hs,
    batchStrideB: k.outer,
    innerStrideB: hs,
    ...probsStrides,
  });
  const p = bindTensor(gpu, s.probs);
  const len = bindTensor(gpu, s.lengths);
  const [gx, gy] = grid1d(gpu, B * H * T, 64);
  const softmax = plan(gpu, {
    family: "attention",
    label: label + " softmax",
    code: SOFTMAX_ROWS,
    params: { B, T, H, probs_off: p.base, len_off: len.base, width: gx * 64 },
    bindings: [p.binding, len.binding],
    workgroups: [gx, gy],
  });
  const output = planMatmul(gpu, {
    label: label + " P·V",
    a: s.probs,
    b: v.tensor,
    c: s.out,
    M: T,
    N: hs,
    K: T,
    lda: T,
    ldb: v.ld,
    ldc: C,
    batch: B * H,
    batchSplit: H,
    batchStrideA: H * T * T,
    innerStrideA: T * T,
    batchStrideB: v.outer,
    innerStrideB: hs,
    batchStrideC: T * C,
    innerStrideC: hs,
  });
  return [scores, softmax, output];
}

export function planAttentionBackwardV2(gpu: Gpu, s: AttentionBackwardSpec): Dispatch[] {
  const { B, T, C, H, label } = s;
  const hs = C / H;
  const N = B * T;
  requireLength(label, s.dout, N * C, "dout");
  requireLength(label, s.qkv, N * 3 * C, "qkv");
  requireLength(label, s.probs, B * H * T * T, "probs");
  requireLength(label, s.dqkv, N * 3 * C, "dqkv");
  const scale = 1 / Math.sqrt(hs);
  const dscores = createTensor(gpu, B * H * T * T, label + " dscores");
  const heads = { batch: B * H, batchSplit: H };
  const probsAsA = { batchStrideA: H * T * T, innerStrideA: T * T };
  const doutAs = (which: "A" | "B") =>
    which === "A" ? { batchStrideA: T * C, innerStrideA: hs } : { batchStrideB: T * C, innerStrideB: hs };
  const part = (t: Tensor, p: number, name: string) => headOperand(t, p, T, C, name);
  const [q, k, v] = [0, 1, 2].map((i) => part(s.qkv, i, ["q", "k", "v"][i]));
  const [dq, dk, dv] = [0, 1, 2].map((i) => part(s.dqkv, i, ["dq", "dk", "dv"][i]));
  const dP = planMatmul(gpu, {
    label: label + " dP",
    a: s.dout,
    b: v.tensor,
    c: dscores,
    M: T,
    N: T,
    K: hs,
    transB: true,
    lda: C,
    ldb: v.ld,
    ldc: T,
    ...heads,
    ...doutAs("A"),
    batchStrideB: v.outer,
    innerStrideB: hs,
    batchStrideC: H * T * T,
    innerStrideC: T * T,
  });
  const p = bindTensor(gpu, s.probs);
  const g = bindTensor(gpu, dscores);
  const [gx, gy] = grid1d(gpu, B * H * T, 64);
  const softmaxBackward = plan(gpu, {
    family: "attention",
    label: label + " softmax backward",
    code: SOFTMAX_BACKWARD_ROWS,
    params: { rows: B * H * T, T, probs_off: p.base, grad_off: g.base, width: gx * 64 },
    bindings: [p.binding, g.binding],
    workgroups: [gx, gy],
  });
  const intoQkv = (target: typeof dq) => ({
    c: target.tensor,
    ldc: target.ld,
    batchStrideC: target.outer,
    innerStrideC: hs,
  });
  const dQ = planMatmul(gpu, {
    label: label + " dQ",
    a: dscores,
    b: k.tensor,
    M: T,
    N: hs,
    K: T,
    lda: T,
    ldb: k.ld,
    alpha: scale,
    ...heads,
    ...probsAsA,
    batchStrideB: k.outer,
    innerStrideB: hs,
    ...intoQkv(dq),
  });
  const dK = planMatmul(gpu, {
    label: label + " dK",
    a: dscores,
    b: q.tensor,
    M: T,
    N: hs,
    K: T,
    transA: true,
    lda: T,
    ldb: q.ld,
    alpha: scale,
    ...heads,
    ...probsAsA,
    batchStrideB: q.outer,
    innerStrideB: hs,
    ...intoQkv(dk),
  });
  const dV = planMatmul(gpu, {
    label: label + " dV",
    a: s.probs,
    b: s.dout,
    M: T,
    N: hs,
    K: T,
    transA: true,
    lda: T,
    ldb: C,
    ...heads,
    ...probsAsA,
    ...doutAs("B"),
    ...intoQkv(dv),
  });
  return [dP, softmaxBackward, dQ, dK, dV];
}
