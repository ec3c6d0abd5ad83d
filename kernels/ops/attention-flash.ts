/**
 * Causal multi-head self-attention with key padding, v3 "flash" (attention.ts lists the versions and
 * dispatches to them): online softmax, no T×T tensor. The forward saves one log-sum-exp per attention
 * row instead of the probabilities; the backward recomputes p_ij = exp(s_ij − lse_i) from q, k and lse.
 *
 * Layouts (row-major, N = B·T rows, hs = C/H, same as v1/v2 in attention.ts):
 *   qkv   N×3C: q | k | v along the last axis; head h uses columns h·hs .. h·hs+hs of each part.
 *   out   N×C:  head h writes columns h·hs .. h·hs+hs.
 *   lse   B×H×T: lse[b,h,i] = log Σ_j exp(s_ij) over allowed j, with s_ij = (q_i·k_j)/√hs.
 *         A row with no allowed key gets lse = FLT_MAX (so exp(s − lse) = 0) and outputs 0 (no NaN).
 *   lengths i32 B: key j is allowed for query i iff j ≤ i and j < lengths[b] (clamped to [0, T]).
 *
 * Forward, per query row i, keys j ascending: running max m and sum l, accumulator a (hs floats);
 *   one exp per key: e = exp(−|s − m|) is either the rescale of the old state (s > m) or p (s ≤ m).
 *   out_i = a / l, lse_i = m + log l.
 * Backward (dqkv overwritten entirely, also rows of padding positions), dP_ij = dout_i·v_j:
 *   dispatch 1, per query row i: D_i = dout_i·out_i (= Σ_j P_ij dP_ij; kept in a scratch tensor B·H·T
 *               owned by the plan), dq_i = scale Σ_j P_ij (dP_ij − D_i) k_j (j ascending);
 *   dispatch 2, per key row j: dk_j = scale Σ_i P_ij (dP_ij − D_i) q_i, dv_j = Σ_i P_ij dout_i
 *               (i ascending).
 * Every sum runs in a fixed order, so reruns are bit-identical.
 *
 * Dispatch shape: one workgroup of `lanes` invocations per block of lanes·rowsPerLane consecutive rows
 * of ONE (b, h), i.e. B·H·⌈T/(lanes·rowsPerLane)⌉ workgroups (grid1d); lane l owns rows
 * first + l + r·lanes. The loop over the other side (keys for forward/dq, queries for dk/dv) runs to
 * the block's last row, masking per row with select().
 * Why this shape on Mesa llvmpipe (22.x): an SSBO load is a scalar loop over the SIMD lanes unless its
 * address is built from constants alone (workgroup ids and loop counters do not count), so loads, not
 * FLOPs, set the time. Each k/v (q/dout) vector loaded is reused by the lane's rowsPerLane rows, rows
 * are read and written as vec4 where C, hs and the offsets allow (else scalar, for odd shapes), and hs
 * is baked into the shader with its loops unrolled so every row vector stays in registers.
 */
import type { Gpu } from "../device.ts";
import { createTensor, type Dispatch, grid1d, plan, type Tensor } from "../runtime.ts";
import { bindOperands, type BoundOperands, offsetParams, requireLength, requireShape } from "./operands.ts";
import { packTexture, withTextureBindings } from "./texture-operand.ts";

/** Largest head size whose per-row vectors are kept per invocation. */
export const FLASH_MAX_HEAD_SIZE = 128;
/** Invocations per workgroup unless a spec asks otherwise (llvmpipe's SIMD width with AVX2). */
export const FLASH_LANES = 8;

/** Rows each invocation owns unless a spec asks otherwise: fewer for wide heads (register pressure). */
export function flashRowsPerLane(hs: number): number {
  return hs <= 32 ? 4 : hs <= 64 ? 2 : 1;
}

interface Tiling {
  /** Invocations per workgroup. */
  lanes?: number;
  /** Rows (queries, or keys in dk/dv) per invocation; each k/v (q/dout) load serves all of them. */
  rowsPerLane?: number;
  /** v4: read qkv (and dout) from textures packed first (texture-operand.ts); the same bits as v3. */
  textures?: boolean;
}

export interface AttentionForwardV3Spec extends Tiling {
  qkv: Tensor;
  lengths: Tensor;
  out: Tensor;
  lse: Tensor;
  B: number;
  T: number;
  C: number;
  H: number;
  label: string;
}

export interface AttentionBackwardV3Spec extends Tiling {
  dout: Tensor;
  qkv: Tensor;
  out: Tensor;
  lse: Tensor;
  lengths: Tensor;
  dqkv: Tensor;
  B: number;
  T: number;
  C: number;
  H: number;
  label: string;
}

interface Geometry {
  hs: number;
  lanes: number;
  rowsPerLane: number;
  /** Rows per workgroup: lanes · rowsPerLane. */
  block: number;
  blocks: number;
}

function geometry(s: { B: number; T: number; C: number; H: number; label: string } & Tiling): Geometry {
  for (const [name, v] of [["B", s.B], ["T", s.T], ["C", s.C], ["H", s.H]] as const) {
    requireShape(s.label, name, v);
  }
  if (s.C % s.H !== 0) throw new Error(`${s.label}: C = ${s.C} is not divisible by H = ${s.H}`);
  const hs = s.C / s.H;
  if (hs > FLASH_MAX_HEAD_SIZE) {
    throw new Error(
      `${s.label}: head size ${hs} (C ${s.C} / H ${s.H}) exceeds ${FLASH_MAX_HEAD_SIZE}, the largest the ` +
        `flash attention (v3) keeps per invocation; use attention v2`,
    );
  }
  const lanes = s.lanes ?? FLASH_LANES;
  const rowsPerLane = s.rowsPerLane ?? flashRowsPerLane(hs);
  if (![1, 2, 4, 8, 16, 32, 64, 128, 256].includes(lanes)) {
    throw new Error(`${s.label}: lanes must be a power of two from 1 to 256, got ${lanes}`);
  }
  if (!Number.isInteger(rowsPerLane) || rowsPerLane < 1 || rowsPerLane > 8) {
    throw new Error(`${s.label}: rowsPerLane must be an integer from 1 to 8, got ${rowsPerLane}`);
  }
  const block = lanes * rowsPerLane;
  return { hs, lanes, rowsPerLane, block, blocks: Math.ceil(s.T / block) };
}

/**
 * Declares the f32 operands among `vectorNames` as array<vec4<f32>> when every row they hold starts on
 * a multiple of 4 (C, hs and the offsets divisible by 4) and no other operand shares their binding:
 * one load or store instruction then moves four floats, and on llvmpipe each one costs a loop over
 * the SIMD lanes.
 */
function vectorize(b: BoundOperands, vectorNames: string[], C: number, hs: number): Set<string> {
  const byArray = new Map<string, string[]>();
  for (const [name, array] of Object.entries(b.array)) {
    byArray.set(array, [...(byArray.get(array) ?? []), name]);
  }
  const vec = new Set<string>();
  if (C % 4 !== 0 || hs % 4 !== 0) return vec;
  for (const [array, names] of byArray) {
    if (names.every((n) => vectorNames.includes(n) && b.offset[n] % 4 === 0)) {
      b.declarations = b.declarations.replace(new RegExp(`(> ${array}: array<)f32>`), "$1vec4<f32>>");
      for (const n of names) vec.add(n);
    }
  }
  return vec;
}

function header(b: BoundOperands, g: Geometry): string {
  return /* wgsl */ `
const HS = ${g.hs}u;
const LANES = ${g.lanes}u;
const BLOCK = ${g.block}u;
struct Params {
  B: u32, T: u32, C: u32, H: u32, blocks: u32, scale: f32,
  qkv_off: u32, lengths_off: u32, out_off: u32, lse_off: u32, dout_off: u32, rowsum_off: u32, dqkv_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}
// Workgroup → (b, h, first row of its block of BLOCK rows); lane l owns rows first + l + r·LANES.
struct Block { b: u32, h: u32, first: u32, valid: bool }
fn block_of(wid: vec3<u32>, nwg: vec3<u32>) -> Block {
  var k: Block;
  let group = wid.x + wid.y * nwg.x;
  k.valid = group < params.B * params.H * params.blocks;
  k.first = (group % params.blocks) * BLOCK;
  let bh = group / params.blocks;
  k.h = bh % params.H;
  k.b = bh / params.H;
  return k;
}
fn seq_len(batch: u32) -> u32 {
  return u32(clamp(${b.array.lengths}[params.lengths_off + batch], 0, i32(params.T)));
}
// Element offset of part (0 = q, 1 = k, 2 = v) of head h at token t of sequence b inside qkv rows.
fn qkv_index(b: u32, t: u32, part: u32, h: u32) -> u32 {
  return params.qkv_off + (b * params.T + t) * 3u * params.C + part * params.C + h * HS;
}
// Element offset of head h at token t of sequence b inside N×C rows (out, dout).
fn head_index(b: u32, t: u32, h: u32) -> u32 { return (b * params.T + t) * params.C + h * HS; }
fn row_index(b: u32, h: u32, i: u32) -> u32 { return (b * params.H + h) * params.T + i; }
`;
}

/** An operand read from a texture (v4): its WGSL name and the elements in one of its rows. */
interface TextureRead {
  name: string;
  row: number;
}

/** Code generation helpers: every hs-long row is ⌈hs/4⌉ named vec4 values, loops over hs unrolled. */
class Gen {
  readonly chunks: number[];
  readonly rows: number[];
  constructor(
    readonly b: BoundOperands,
    readonly g: Geometry,
    readonly vec: Set<string>,
    readonly textures: Record<string, TextureRead> = {},
  ) {
    this.chunks = Array.from({ length: Math.ceil(g.hs / 4) }, (_, c) => c);
    this.rows = Array.from({ length: g.rowsPerLane }, (_, r) => r);
  }

  /** `let|var name_c = <chunk c of operand's row at element base>;` (zero-padded tail). */
  load(decl: "let" | "var", name: string, operand: string, base: string): string {
    const array = this.b.array[operand];
    const t = this.textures[operand];
    return this.chunks.map((c) => {
      if (t) {
        // Element e of the operand is component e % 4 of texel ((e % row) / 4, e / row); rows hold whole heads.
        const texel = `vec2<u32>(((${base}) % ${t.row}u) / 4u + ${c}u, (${base}) / ${t.row}u)`;
        return `${decl} ${name}_${c} = textureLoad(${t.name}, ${texel}, 0);`;
      }
      if (this.vec.has(operand)) return `${decl} ${name}_${c} = ${array}[(${base}) / 4u + ${c}u];`;
      const parts = [0, 1, 2, 3].map((k) =>
        4 * c + k < this.g.hs ? `${array}[${base} + ${4 * c + k}u]` : "0.0"
      );
      return `${decl} ${name}_${c} = vec4<f32>(${parts.join(", ")});`;
    }).join("\n  ");
  }

  zero(name: string): string {
    return this.chunks.map((c) => `var ${name}_${c} = vec4<f32>();`).join("\n  ");
  }

  /** Σ_c dot(a_c, b_c) in chunk order. */
  dot(a: string, b: string): string {
    return this.chunks.map((c) => `dot(${a}_${c}, ${b}_${c})`).join(" + ");
  }

  /** `acc_c = <expr with chunk c>;` for every chunk. */
  update(acc: string, expr: (c: number) => string): string {
    return this.chunks.map((c) => `${acc}_${c} = ${expr(c)};`).join("\n      ");
  }

  store(operand: string, base: string, name: string, scale = ""): string {
    const array = this.b.array[operand];
    if (this.vec.has(operand)) {
      return this.chunks.map((c) => `${array}[(${base}) / 4u + ${c}u] = ${name}_${c}${scale};`).join(
        "\n    ",
      );
    }
    const lines: string[] = [];
    for (let d = 0; d < this.g.hs; d++) {
      lines.push(`${array}[${base} + ${d}u] = ${name}_${d >> 2}[${d & 3}]${scale};`);
    }
    return lines.join("\n    ");
  }

  /** The block of text `f(r)` for each of this lane's rows r. */
  each(f: (r: number) => string): string {
    return this.rows.map(f).join("\n  ");
  }
}

const ENTRY = /* wgsl */ `
@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let blk = block_of(wid, nwg);
  if (!blk.valid) { return; }
  let T = params.T;`;

// A row past the end of the sequence computes on row T − 1 (in bounds) and writes nothing; no lane
// returns early.
function forwardSource(x: Gen): string {
  return header(x.b, x.g) + ENTRY + /* wgsl */ `
  let keys = min(min(blk.first + BLOCK, T), seq_len(blk.b)); // keys of the block's last row
  ${
    x.each((r) => `
  let i${r} = blk.first + lane + ${r}u * LANES;
  let row${r} = min(i${r}, T - 1u);
  ${x.load("let", `q${r}`, "qkv", `qkv_index(blk.b, row${r}, 0u, blk.h)`)}
  ${x.zero(`acc${r}`)}
  var m${r} = -3.4028234663852886e38;
  var l${r} = 0.0;`)
  }
  for (var j = 0u; j < keys; j++) {
    let k0 = qkv_index(blk.b, j, 1u, blk.h);
    ${x.load("let", "k", "qkv", "k0")}
    ${x.load("let", "v", "qkv", "k0 + params.C")}
    ${
    x.each((r) =>
      `{
      let s = (${x.dot(`q${r}`, "k")}) * params.scale;
      let allowed = j <= row${r};
      let e = exp(-abs(s - m${r}));
      let grows = allowed && s > m${r};
      let rescale = select(1.0, e, grows);
      let p = select(select(0.0, e, allowed), 1.0, grows);
      m${r} = select(m${r}, s, grows);
      l${r} = l${r} * rescale + p;
      ${x.update(`acc${r}`, (c) => `acc${r}_${c} * rescale + p * v_${c}`)}
    }`
    )
  }
  }
  ${
    x.each((r) =>
      `if (i${r} < T) {
    let inv = select(0.0, 1.0 / l${r}, l${r} > 0.0);
    let o0 = params.out_off + head_index(blk.b, i${r}, blk.h);
    ${x.store("out", "o0", `acc${r}`, " * inv")}
    ${x.b.array.lse}[params.lse_off + row_index(blk.b, blk.h, i${r})] = select(3.4028234663852886e38, m${r} + log(l${r}), l${r} > 0.0);
  }`
    )
  }
}
`;
}

function backwardQuerySource(x: Gen): string {
  const a = x.b.array;
  return header(x.b, x.g) + ENTRY + /* wgsl */ `
  let keys = min(min(blk.first + BLOCK, T), seq_len(blk.b));
  ${
    x.each((r) => `
  let i${r} = blk.first + lane + ${r}u * LANES;
  let row${r} = min(i${r}, T - 1u);
  ${x.load("let", `q${r}`, "qkv", `qkv_index(blk.b, row${r}, 0u, blk.h)`)}
  ${x.load("let", `go${r}`, "dout", `params.dout_off + head_index(blk.b, row${r}, blk.h)`)}
  ${x.load("let", `o${r}`, "out", `params.out_off + head_index(blk.b, row${r}, blk.h)`)}
  let D${r} = ${x.dot(`go${r}`, `o${r}`)};
  let r${r} = row_index(blk.b, blk.h, row${r});
  let lse${r} = ${a.lse}[params.lse_off + r${r}];
  ${x.zero(`dq${r}`)}`)
  }
  for (var j = 0u; j < keys; j++) {
    let k0 = qkv_index(blk.b, j, 1u, blk.h);
    ${x.load("let", "k", "qkv", "k0")}
    ${x.load("let", "v", "qkv", "k0 + params.C")}
    ${
    x.each((r) =>
      `{
      let s = (${x.dot(`q${r}`, "k")}) * params.scale;
      let dp = ${x.dot(`go${r}`, "v")};
      let p = select(0.0, exp(s - lse${r}), j <= row${r});
      let ds = p * (dp - D${r}) * params.scale;
      ${x.update(`dq${r}`, (c) => `dq${r}_${c} + ds * k_${c}`)}
    }`
    )
  }
  }
  ${
    x.each((r) =>
      `if (i${r} < T) {
    ${a.rowsum}[params.rowsum_off + r${r}] = D${r};
    let dq0 = params.dqkv_off + (blk.b * T + i${r}) * 3u * params.C + blk.h * HS;
    ${x.store("dqkv", "dq0", `dq${r}`)}
  }`
    )
  }
}
`;
}

function backwardKeySource(x: Gen): string {
  const a = x.b.array;
  return header(x.b, x.g) + ENTRY + /* wgsl */ `
  let len = seq_len(blk.b);
  // Queries i ≥ first can see keys of this block; none can when the whole block is padding.
  let queries = select(T, blk.first, blk.first >= len);
  ${
    x.each((r) => `
  let j${r} = blk.first + lane + ${r}u * LANES; // key/value rows owned by this invocation
  let key${r} = min(j${r}, T - 1u);
  let attended${r} = key${r} < len;
  ${x.load("let", `k${r}`, "qkv", `qkv_index(blk.b, key${r}, 1u, blk.h)`)}
  ${x.load("let", `v${r}`, "qkv", `qkv_index(blk.b, key${r}, 2u, blk.h)`)}
  ${x.zero(`dk${r}`)}
  ${x.zero(`dv${r}`)}`)
  }
  for (var i = blk.first; i < queries; i++) {
    let r = row_index(blk.b, blk.h, i);
    let lse_i = ${a.lse}[params.lse_off + r];
    let D = ${a.rowsum}[params.rowsum_off + r];
    ${x.load("let", "q", "qkv", "qkv_index(blk.b, i, 0u, blk.h)")}
    ${x.load("let", "go", "dout", "params.dout_off + head_index(blk.b, i, blk.h)")}
    ${
    x.each((r) =>
      `{
      let s = (${x.dot("q", `k${r}`)}) * params.scale;
      let dp = ${x.dot("go", `v${r}`)};
      let p = select(0.0, exp(s - lse_i), attended${r} && key${r} <= i);
      let ds = p * (dp - D) * params.scale;
      ${x.update(`dk${r}`, (c) => `dk${r}_${c} + ds * q_${c}`)}
      ${x.update(`dv${r}`, (c) => `dv${r}_${c} + p * go_${c}`)}
    }`
    )
  }
  }
  ${
    x.each((r) =>
      `if (j${r} < T) {
    let dk0 = params.dqkv_off + (blk.b * T + j${r}) * 3u * params.C + params.C + blk.h * HS;
    let dv0 = dk0 + params.C;
    ${x.store("dqkv", "dk0", `dk${r}`)}
    ${x.store("dqkv", "dv0", `dv${r}`)}
  }`
    )
  }
}
`;
}

function baseParams(s: { B: number; T: number; C: number; H: number }, g: Geometry) {
  // Every field of Params is set (unused offsets 0) so one struct serves all three kernels.
  return {
    B: s.B,
    T: s.T,
    C: s.C,
    H: s.H,
    blocks: g.blocks,
    scale: 1 / Math.sqrt(g.hs),
    qkv_off: 0,
    lengths_off: 0,
    out_off: 0,
    lse_off: 0,
    dout_off: 0,
    rowsum_off: 0,
    dqkv_off: 0,
  };
}

/** Why attention v4 cannot read this shape from textures, or undefined when it can. */
export function whyNotAttentionTextures(gpu: Gpu, s: { B: number; T: number; C: number; H: number }) {
  const hs = s.C / s.H;
  if (s.C % 4 !== 0 || hs % 4 !== 0) return `needs C and the head size divisible by 4 (C ${s.C}, head ${hs})`;
  const rows = s.B * s.T, width = (3 * s.C) / 4, max = gpu.device.limits.maxTextureDimension2D;
  if (rows > max || width > max) {
    return `needs a ${width} × ${rows} texture for qkv, over this device's maxTextureDimension2D (${max})`;
  }
}

/** An operand of v4 in its texture. */
interface Packed {
  name: string;
  row: number;
  view: GPUTextureView;
}

/** Packs v4's texture operands (N rows each), once for every kernel of a plan that reads them. */
function packAll(
  gpu: Gpu,
  s: { B: number; T: number; C: number; H: number; label: string },
  operands: { name: string; tensor: Tensor; row: number }[],
): { packs: Dispatch[]; packed: Packed[] } {
  const why = whyNotAttentionTextures(gpu, s);
  if (why) throw new Error(`${s.label}: attention v4 (texture operands) ${why}; use v3`);
  const rows = s.B * s.T;
  const done = operands.map(({ name, tensor, row }) => {
    const operand = { tensor, rows, cols: row, ld: row };
    return {
      name,
      row,
      ...packTexture(gpu, `${s.label} (pack ${name})`, `attention ${name}`, operand, "attention"),
    };
  });
  return {
    packs: done.map((p) => p.dispatch),
    packed: done.map(({ name, row, view }) => ({ name, row, view })),
  };
}

/** Declares packed operands as textures after a kernel's buffers: what its Gen reads, and its bindings. */
function withTextures(b: BoundOperands, packed: Packed[]) {
  const declared = withTextureBindings(b, packed);
  b.declarations = declared.declarations;
  const textures: Record<string, TextureRead> = {};
  for (const p of packed) textures[p.name] = { name: `${p.name}_tex`, row: p.row };
  return { textures, bindings: declared.bindings };
}

/** The forward: v3's one launch, or v4's pack of qkv and then the launch reading it. */
export function planAttentionForwardV3(gpu: Gpu, s: AttentionForwardV3Spec): Dispatch[] {
  const g = geometry(s);
  const { B, T, C, H, label } = s;
  const N = B * T;
  requireLength(label, s.qkv, N * 3 * C, "qkv");
  requireLength(label, s.lengths, B, "lengths");
  requireLength(label, s.out, N * C, "out");
  requireLength(label, s.lse, B * H * T, "lse");
  const { packs, packed } = s.textures
    ? packAll(gpu, s, [{ name: "qkv", tensor: s.qkv, row: 3 * C }])
    : { packs: [], packed: [] };
  const b = bindOperands(gpu, label, [
    ...(s.textures ? [] : [{ name: "qkv", tensor: s.qkv }]),
    { name: "lengths", tensor: s.lengths, type: "i32" },
    { name: "out", tensor: s.out, write: true },
    { name: "lse", tensor: s.lse, write: true },
  ]);
  const vec = vectorize(b, ["qkv", "out"], C, g.hs);
  const { textures, bindings } = withTextures(b, packed);
  return [
    ...packs,
    plan(gpu, {
      family: "attention",
      label,
      code: forwardSource(new Gen(b, g, vec, textures)),
      params: { ...baseParams(s, g), ...offsetParams(b) },
      bindings,
      workgroups: grid1d(gpu, B * H * g.blocks, 1),
      flops: 2 * B * H * T * T * g.hs, // causal half of 2·(QKᵀ + PV)
      bytes: 4 * (N * 3 * C + N * C + B * H * T),
    }),
  ];
}

/** Returns [D and dq, dk dv] launches (v4: after the packs of qkv and dout); dqkv is overwritten entirely. */
export function planAttentionBackwardV3(gpu: Gpu, s: AttentionBackwardV3Spec): Dispatch[] {
  const g = geometry(s);
  const { B, T, C, H, label } = s;
  const N = B * T;
  requireLength(label, s.dout, N * C, "dout");
  requireLength(label, s.qkv, N * 3 * C, "qkv");
  requireLength(label, s.out, N * C, "out");
  requireLength(label, s.lse, B * H * T, "lse");
  requireLength(label, s.lengths, B, "lengths");
  requireLength(label, s.dqkv, N * 3 * C, "dqkv");
  const { packs, packed } = s.textures
    ? packAll(gpu, s, [{ name: "qkv", tensor: s.qkv, row: 3 * C }, { name: "dout", tensor: s.dout, row: C }])
    : { packs: [], packed: [] };
  const buffers = s.textures ? [] : [{ name: "qkv", tensor: s.qkv }, { name: "dout", tensor: s.dout }];
  // D_i = dout_i·out_i per attention row, written by dispatch 1 and read by dispatch 2.
  const rowSums = createTensor(gpu, B * H * T, label + " row sums D");
  const bq = bindOperands(gpu, label, [
    ...buffers,
    { name: "lengths", tensor: s.lengths, type: "i32" },
    { name: "out", tensor: s.out },
    { name: "lse", tensor: s.lse },
    { name: "rowsum", tensor: rowSums, write: true },
    { name: "dqkv", tensor: s.dqkv, write: true },
  ]);
  const bk = bindOperands(gpu, label, [
    ...buffers,
    { name: "lengths", tensor: s.lengths, type: "i32" },
    { name: "lse", tensor: s.lse },
    { name: "rowsum", tensor: rowSums },
    { name: "dqkv", tensor: s.dqkv, write: true },
  ]);
  const vq = vectorize(bq, ["qkv", "out", "dout", "dqkv"], C, g.hs);
  const vk = vectorize(bk, ["qkv", "dout", "dqkv"], C, g.hs);
  const [tq, tk] = [withTextures(bq, packed), withTextures(bk, packed)];
  const workgroups = grid1d(gpu, B * H * g.blocks, 1);
  const flops = 2 * B * H * T * T * g.hs; // causal half of QKᵀ and dout·Vᵀ (recomputed) or one product
  const bytes = 4 * (N * 3 * C + 2 * N * C + 2 * B * H * T);
  return [
    ...packs,
    plan(gpu, {
      family: "attention",
      label: label + " dq",
      code: backwardQuerySource(new Gen(bq, g, vq, tq.textures)),
      params: { ...baseParams(s, g), ...offsetParams(bq) },
      bindings: tq.bindings,
      workgroups,
      flops: 1.5 * flops,
      bytes,
    }),
    plan(gpu, {
      family: "attention",
      label: label + " dk dv",
      code: backwardKeySource(new Gen(bk, g, vk, tk.textures)),
      params: { ...baseParams(s, g), ...offsetParams(bk) },
      bindings: tk.bindings,
      workgroups,
      flops: 2 * flops,
      bytes,
    }),
  ];
}
