/**
 * Causal multi-head self-attention with key padding, forward and backward ("v1": one invocation per
 * attention row; simple, exact, and cheap at this lab's context lengths).
 *
 * Layouts (row-major, N = B·T rows, hs = C/H):
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
import { createTensor, type Dispatch, grid1d, plan, type Tensor } from "../runtime.ts";
import { bindOperands, type BoundOperands, offsetParams, requireLength, requireShape } from "./operands.ts";

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
  var max_score = -3.4028235e38;
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

export function planAttentionForward(gpu: Gpu, s: AttentionForwardSpec): Dispatch {
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
export function planAttentionBackward(gpu: Gpu, s: AttentionBackwardSpec): Dispatch[] {
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
      label: label + " dq",
      code: backwardQuerySource(bq),
      params: { ...baseParams(s, hs), ...offsetParams(bq) },
      bindings: bq.bindings,
      workgroups: grid1d(gpu, B * H * T, WG),
      flops,
      bytes,
    }),
    plan(gpu, {
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
