/**
 * LayerNorm over the last axis (eps 1e-5, biased variance), forward and backward. Versions of the row
 * kernels (forward, dx; spec.version, default v4 or v3 where it applies, else v2):
 *   v1 workgroup per row   64 invocations per row, a workgroup reduction (described below).
 *   v2 invocation per row  one invocation per row looping over its C values in order: no workgroup
 *                          memory and no barriers (64 rows per workgroup).
 *   v3 vec4 rows           v2 reading and writing its rows four values at a time, each vec4's lanes added
 *                          to the sums in v2's order (so the same bits wherever the compiler rounds a
 *                          vec4 as four scalars), and the column sums four columns per invocation. On
 *                          llvmpipe every storage access is a loop over the SIMD lanes whatever its
 *                          width, so a quarter of the accesses. Needs C and every offset a multiple of 4.
 *   v4 texture operands    v3 reading its row inputs (x, or stream and branch; dy and x backward) from
 *                          textures packed first (texture-operand.ts): the same values, so v3's bits; the
 *                          default instead of v3 where the engine reads texture operands.
 *
 * Forward:  mean[n] = Σ_c x[n,c] / C; rstd[n] = 1/√(Σ_c (x[n,c] − mean)² / C + eps);
 *           y[n,c] = (x[n,c] − mean)·rstd·gamma[c] + beta[c]. mean and rstd are saved for backward.
 *           Fused residual (spec.residual): x = stream + branch is computed in the same pass, written
 *           to x (the new residual stream) and normalized, saving the separate add's dispatch and
 *           its full read and write of the stream; x is bit-identical to planAdd's.
 *           Dispatch: one 64-invocation workgroup per row (grid1d over rows); each invocation sums a
 *           strided subset of the row in order, then a fixed tree reduction in workgroup memory.
 * Backward: xhat = (x − mean)·rstd, g = dy·gamma;
 *           dx[n,c] (+)= rstd·(g − mean_c(g) − xhat·mean_c(g·xhat))   (accumulateDx adds into dx)
 *           dgamma[c] += Σ_n dy·xhat, dbeta[c] += Σ_n dy  (always accumulated into grads)
 *   Dispatch 1: dx, one workgroup per row as in the forward.
 *   Dispatch 2: column sums, one invocation per column c (v3: per four columns) looping over the rows
 *               n = 0..N−1 in order (sum from 0, then added to the old gradient).
 * Layouts: x, y, dy, dx are N×C row-major; gamma/beta sit at element offsets inside the flat params
 * tensor, dgamma/dbeta inside the flat grads tensor (one binding, two offsets).
 */
import type { Gpu } from "../device.ts";
import { type Dispatch, grid1d, plan, type Tensor } from "../runtime.ts";
import {
  bindOperands,
  type BoundOperands,
  offsetParams,
  requireLength,
  requireShape,
  vec4Misfit,
  vec4Version,
} from "./operands.ts";
import { subgroupsEnable, workgroupReduce } from "./reduce.ts";
import {
  packTexture,
  type TextureOperand,
  textureUnfit,
  textureVersion,
  withTextureBindings,
} from "./texture-operand.ts";
import type { KernelVersion } from "../versions.ts";

const ROW_WG = 64;
const COL_WG = 64;

/** Workgroup sum for the v1 row kernels (tree, or subgroup operations where granted); all invocations call it. */
const rowReduce = (subgroups: boolean) => workgroupReduce(ROW_WG, { sum: "workgroup_sum" }, { subgroups });
/** The tree variant, which v2 strips from the v1 text. */
const REDUCE = rowReduce(false);

/**
 * v2 drops v1's workgroup reduction: on llvmpipe a barrier suspends and resumes every invocation of
 * the workgroup, so v1's tree reductions cost more than the row's math.
 */
export type LayernormVersion = KernelVersion<"layernorm">;

const ROWS_PER_WG = 64;
/** v3's column sums: 4 columns an invocation, 8 invocations a workgroup (one SIMD vector on llvmpipe). */
const COL4_WG = 8;

/** Why v3 cannot run on these shapes ("" when it can): C or an offset is not a multiple of 4. */
function v3Misfit(C: number, offsets: Record<string, number>): string {
  return C % 4 !== 0 ? `C = ${C} is not a multiple of 4` : vec4Misfit(Object.entries(offsets));
}

/**
 * The version to run: the caller's (v3 or v4 refused with the reason where it cannot apply), else v4 where
 * the engine reads texture operands (on the AVX2 host a fused forward and backward ran 1.5–1.6× faster than
 * v3 where its packs are copies, C = 64 and 128, and as fast at C = 48, packed by launches), else v3 where
 * it applies.
 */
function chooseVersion(
  gpu: Gpu,
  label: string,
  asked: LayernormVersion | undefined,
  C: number,
  offsets: Record<string, number>,
  textures: TextureOperand[],
): LayernormVersion {
  const misfit = v3Misfit(C, offsets);
  const unfit = () => misfit || (textures.map((o) => textureUnfit(gpu, o)).find((why) => why) ?? "");
  return textureVersion(
    label,
    "layernorm v4 (texture operands)",
    asked,
    "v4",
    unfit,
    () => vec4Version(label, "layernorm v3 (vec4)", asked, "v3", misfit, "v2"),
  );
}

/** v4's packs of `names` (N × C each) into textures of their role, and the views by name. */
function packRows(gpu: Gpu, label: string, tensors: Record<string, Tensor>, N: number, C: number) {
  return Object.entries(tensors).map(([name, tensor]) => ({
    name,
    ...packTexture(
      gpu,
      `${label} (pack ${name})`,
      `layernorm ${name}`,
      { tensor, rows: N, cols: C, ld: C },
      "other",
    ),
  }));
}

/** The offsets of a tensor list, by name, for v3Misfit. */
function tensorOffsets(
  tensors: Record<string, Tensor>,
  extra: Record<string, number> = {},
): Record<string, number> {
  const offsets: Record<string, number> = { ...extra };
  for (const [name, t] of Object.entries(tensors)) offsets[t.label || name] = t.offset;
  return offsets;
}

/** "s += v.x; s += v.y; …": a vec4's lanes added to a scalar sum in order, as v2 adds four values. */
function addLanes(sum: string, vec: (lane: string) => string): string {
  return ["x", "y", "z", "w"].map((l) => `${sum} += ${vec(l)};`).join(" ");
}

/** Rewrites a v1 row kernel (workgroup per row, strided loops, workgroup_sum) into v2. */
function perInvocationRows(v1: string): string {
  const out = v1
    .replace(REDUCE, "")
    .replace(
      /@compute @workgroup_size\(\d+\)\nfn main\([^)]*\)[^{]*\{\n {2}let row = wid\.x \+ wid\.y \* nwg\.x;/s,
      `@compute @workgroup_size(${ROWS_PER_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * ${ROWS_PER_WG}u;`,
    )
    .replace("let tid = lid.x;", "")
    .replaceAll(`c = tid; c < C; c += ${ROW_WG}u`, "c = 0u; c < C; c++")
    .replace(/workgroup_sum\(tid, ([a-z_]+)\)/g, "$1")
    .replace("if (tid == 0u) {", "{");
  if (/tid|workgroup_sum|wid/.test(out)) throw new Error("layernorm v2: the v1 kernel changed shape");
  return out;
}

export interface LayernormForwardSpec {
  x: Tensor;
  params: Tensor;
  gammaOffset: number;
  betaOffset: number;
  y: Tensor;
  mean: Tensor;
  rstd: Tensor;
  N: number;
  C: number;
  label: string;
  /** Row kernel version (default v3 where it applies, else v2). */
  version?: LayernormVersion;
  /** When given, x is an output: x = stream + branch (the residual add), then normalized. */
  residual?: { stream: Tensor; branch: Tensor };
}

function forwardSource(b: BoundOperands, residual: boolean, subgroups = false): string {
  const x = b.array.x;
  const firstPass = residual
    ? `let v = ${b.array.stream}[params.stream_off + row * C + c] + ${b.array.branch}[params.branch_off + row * C + c];
    ${x}[x0 + c] = v;
    s += v;`
    : `s += ${x}[x0 + c];`;
  const residualParams = residual ? ", stream_off: u32, branch_off: u32" : "";
  return subgroupsEnable({ subgroups }) + /* wgsl */ `
struct Params { N: u32, C: u32, x_off: u32, gamma_off: u32, beta_off: u32, y_off: u32, mean_off: u32, rstd_off: u32${residualParams} }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.N) { return; }
  let tid = lid.x;
  let C = params.C;
  let x0 = params.x_off + row * C;
  var s = 0.0;
  for (var c = tid; c < C; c += ${ROW_WG}u) {
    ${firstPass}
  }
  let mean = workgroup_sum(tid, s) / f32(C);
  var q = 0.0;
  for (var c = tid; c < C; c += ${ROW_WG}u) {
    let d = ${b.array.x}[x0 + c] - mean;
    q += d * d;
  }
  let rstd = 1.0 / sqrt(workgroup_sum(tid, q) / f32(C) + 1e-5);
  let y0 = params.y_off + row * C;
  for (var c = tid; c < C; c += ${ROW_WG}u) {
    let xhat = (${b.array.x}[x0 + c] - mean) * rstd;
    ${b.array.y}[y0 + c] = xhat * ${b.array.gamma}[params.gamma_off + c] + ${b.array.beta}[params.beta_off + c];
  }
  if (tid == 0u) {
    ${b.array.mean}[params.mean_off + row] = mean;
    ${b.array.rstd}[params.rstd_off + row] = rstd;
  }
}
`;
}

/** The v3 row kernels' entry: one invocation per row, C4 vec4s in it. */
const V3_ROW_ENTRY = /* wgsl */ `@compute @workgroup_size(${ROWS_PER_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * ${ROWS_PER_WG}u;
  if (row >= params.N) { return; }
  let C = params.C;
  let C4 = C / 4u;`;

/** A texel fetch of row `row`, vec4 column `c` of a v4 texture operand (texture-operand.ts). */
const texel = (name: string, row = "row") => `textureLoad(${name}_tex, vec2<u32>(c, ${row}), 0)`;

/**
 * v3 forward: one invocation per row, the row in vec4s (x, y, gamma, beta, stream and branch bound as
 * vec4f). With `textures` (v4) it reads x, or stream and branch, from textures: the same values, so v3's
 * bits; fused, its later passes add stream and branch again instead of reading back the x it wrote.
 */
function forwardSourceV3(b: BoundOperands, residual: boolean, textures = false): string {
  const x = b.array.x;
  const sum = textures
    ? `${texel("stream")} + ${texel("branch")}`
    : `${b.array.stream}[params.stream_off + row * C4 + c] + ${b.array.branch}[params.branch_off + row * C4 + c]`;
  const load = residual
    ? `let v = ${sum};\n    ${x}[x0 + c] = v;`
    : `let v = ${textures ? texel("x") : `${x}[x0 + c]`};`;
  const again = !textures ? `${x}[x0 + c]` : residual ? `(${sum})` : texel("x");
  const residualParams = residual ? ", stream_off: u32, branch_off: u32" : "";
  return /* wgsl */ `
struct Params { N: u32, C: u32, x_off: u32, gamma_off: u32, beta_off: u32, y_off: u32, mean_off: u32, rstd_off: u32${residualParams} }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}
${V3_ROW_ENTRY}
  let x0 = params.x_off + row * C4;
  var s = 0.0;
  for (var c = 0u; c < C4; c++) {
    ${load}
    ${addLanes("s", (l) => `v.${l}`)}
  }
  let mean = s / f32(C);
  var q = 0.0;
  for (var c = 0u; c < C4; c++) {
    let d = ${again} - vec4(mean);
    ${addLanes("q", (l) => `d.${l} * d.${l}`)}
  }
  let rstd = 1.0 / sqrt(q / f32(C) + 1e-5);
  let y0 = params.y_off + row * C4;
  for (var c = 0u; c < C4; c++) {
    let xhat = (${again} - vec4(mean)) * rstd;
    ${b.array.y}[y0 + c] = xhat * ${b.array.gamma}[params.gamma_off + c] + ${b.array.beta}[params.beta_off + c];
  }
  ${b.array.mean}[params.mean_off + row] = mean;
  ${b.array.rstd}[params.rstd_off + row] = rstd;
}
`;
}

/** The forward: one launch, or v4's packs and then the launch. */
export function planLayernormForward(gpu: Gpu, s: LayernormForwardSpec): Dispatch[] {
  const { N, C, label } = s;
  requireShape(label, "N", N);
  requireShape(label, "C", C);
  requireLength(label, s.x, N * C, "x");
  requireLength(label, s.y, N * C, "y");
  requireLength(label, s.mean, N, "mean");
  requireLength(label, s.rstd, N, "rstd");
  requireLength(label, s.params, s.gammaOffset + C, "params (gamma)");
  requireLength(label, s.params, s.betaOffset + C, "params (beta)");
  if (s.residual) {
    requireLength(label, s.residual.stream, N * C, "residual stream");
    requireLength(label, s.residual.branch, N * C, "residual branch");
  }
  const fused = s.residual !== undefined;
  // v4 reads x, or (fused) stream and branch, from textures.
  const read: Record<string, Tensor> = s.residual ? { ...s.residual } : { x: s.x };
  const version = chooseVersion(
    gpu,
    label,
    s.version,
    C,
    tensorOffsets(
      { x: s.x, y: s.y, ...(s.residual ?? {}) },
      { gamma: s.params.offset + s.gammaOffset, beta: s.params.offset + s.betaOffset },
    ),
    Object.values(read).map((tensor) => ({ tensor, rows: N, cols: C, ld: C })),
  );
  const v4 = version === "v4";
  const vec4 = version === "v3" || v4;
  const type = vec4 ? "vec4f" as const : "f32" as const;
  const packs = v4 ? packRows(gpu, label, read, N, C) : [];
  const residual = s.residual && !v4
    ? (["stream", "branch"] as const).map((name) => ({ name, tensor: s.residual![name], type }))
    : [];
  // v1's early return is per workgroup (uniform), so its barriers stay in uniform control flow.
  const b = bindOperands(gpu, label, [
    ...(v4 && !fused ? [] : [{ name: "x", tensor: s.x, write: fused, type }]),
    ...residual,
    { name: "gamma", tensor: s.params, type },
    { name: "beta", tensor: s.params, type },
    { name: "y", tensor: s.y, write: true, type },
    { name: "mean", tensor: s.mean, write: true },
    { name: "rstd", tensor: s.rstd, write: true },
  ]);
  const p = offsetParams(b);
  const unit = vec4 ? 4 : 1;
  p.gamma_off += s.gammaOffset / unit;
  p.beta_off += s.betaOffset / unit;
  const { declarations, bindings } = withTextureBindings(b, packs);
  const code = {
    v1: () => forwardSource(b, fused, gpu.features.subgroups),
    v2: () => perInvocationRows(forwardSource(b, fused)),
    v3: () => forwardSourceV3(b, fused),
    v4: () => forwardSourceV3({ ...b, declarations }, fused, true),
  }[version]();
  return [
    ...packs.map((pack) => pack.dispatch),
    plan(gpu, {
      label,
      code,
      params: { N, C, ...p },
      bindings,
      workgroups: grid1d(gpu, N, version === "v1" ? 1 : ROWS_PER_WG),
      flops: (fused ? 9 : 8) * N * C,
      bytes: 4 * ((fused ? 4 : 2) * N * C + 2 * C + 2 * N),
    }),
  ];
}

export interface LayernormBackwardSpec {
  dy: Tensor;
  x: Tensor;
  mean: Tensor;
  rstd: Tensor;
  params: Tensor;
  gammaOffset: number;
  dx: Tensor;
  accumulateDx: boolean;
  grads: Tensor;
  dgammaOffset: number;
  dbetaOffset: number;
  N: number;
  C: number;
  label: string;
  /** Row kernel version of dx and the column sums (default v3 where it applies, else v2). */
  version?: LayernormVersion;
}

function dxSource(b: BoundOperands, subgroups = false): string {
  return subgroupsEnable({ subgroups }) + /* wgsl */ `
struct Params {
  N: u32, C: u32, accumulate: u32,
  dy_off: u32, x_off: u32, mean_off: u32, rstd_off: u32, gamma_off: u32, dx_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.N) { return; }
  let tid = lid.x;
  let C = params.C;
  let base = row * C;
  let mean = ${b.array.mean}[params.mean_off + row];
  let rstd = ${b.array.rstd}[params.rstd_off + row];
  var sum_g = 0.0;
  var sum_gx = 0.0;
  for (var c = tid; c < C; c += ${ROW_WG}u) {
    let xhat = (${b.array.x}[params.x_off + base + c] - mean) * rstd;
    let g = ${b.array.dy}[params.dy_off + base + c] * ${b.array.gamma}[params.gamma_off + c];
    sum_g += g;
    sum_gx += g * xhat;
  }
  let mean_g = workgroup_sum(tid, sum_g) / f32(C);
  let mean_gx = workgroup_sum(tid, sum_gx) / f32(C);
  for (var c = tid; c < C; c += ${ROW_WG}u) {
    let xhat = (${b.array.x}[params.x_off + base + c] - mean) * rstd;
    let g = ${b.array.dy}[params.dy_off + base + c] * ${b.array.gamma}[params.gamma_off + c];
    var d = rstd * (g - mean_g - xhat * mean_gx);
    let i = params.dx_off + base + c;
    if (params.accumulate != 0u) { d = ${b.array.dx}[i] + d; }
    ${b.array.dx}[i] = d;
  }
}
`;
}

/**
 * The column sums dgamma, dbeta: one invocation per column (v1, v2), or per four columns (v3: dy, x, dgamma
 * and dbeta bound as vec4f, each lane the same sum in the same order).
 */
/** The column sums; with `textures` (v4) dy and x come from textures, the same values. */
function paramGradSource(b: BoundOperands, vec4: boolean, textures = false): string {
  const zero = vec4 ? "vec4(0.0)" : "0.0";
  const dy = textures ? texel("dy", "n") : `${b.array.dy}[params.dy_off + i]`;
  const x = textures ? texel("x", "n") : `${b.array.x}[params.x_off + i]`;
  return /* wgsl */ `
struct Params {
  N: u32, C: u32,
  dy_off: u32, x_off: u32, mean_off: u32, rstd_off: u32, dgamma_off: u32, dbeta_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}
@compute @workgroup_size(${vec4 ? COL4_WG : COL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let columns = params.C / ${vec4 ? 4 : 1}u;
  if (c >= columns) { return; }
  var sum_gamma = ${zero};
  var sum_beta = ${zero};
  for (var n = 0u; n < params.N; n++) {
    let i = n * columns + c;
    let dy = ${dy};
    let xhat = (${x} - ${b.array.mean}[params.mean_off + n]) * ${b.array.rstd}[params.rstd_off + n];
    sum_gamma += dy * xhat;
    sum_beta += dy;
  }
  let gi = params.dgamma_off + c;
  let bi = params.dbeta_off + c;
  ${b.array.dgamma}[gi] = ${b.array.dgamma}[gi] + sum_gamma;
  ${b.array.dbeta}[bi] = ${b.array.dbeta}[bi] + sum_beta;
}
`;
}

/** v3 dx: one invocation per row, the row in vec4s (dy, x, gamma and dx bound as vec4f); v4 reads dy and x from textures. */
function dxSourceV3(b: BoundOperands, textures = false): string {
  const row = (name: string) =>
    textures && name !== "dx" ? texel(name) : `${b.array[name]}[params.${name}_off + base + c]`;
  const g = `${row("dy")} * ${b.array.gamma}[params.gamma_off + c]`;
  return /* wgsl */ `
struct Params {
  N: u32, C: u32, accumulate: u32,
  dy_off: u32, x_off: u32, mean_off: u32, rstd_off: u32, gamma_off: u32, dx_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}
${V3_ROW_ENTRY}
  let base = row * C4;
  let mean = ${b.array.mean}[params.mean_off + row];
  let rstd = ${b.array.rstd}[params.rstd_off + row];
  var sum_g = 0.0;
  var sum_gx = 0.0;
  for (var c = 0u; c < C4; c++) {
    let xhat = (${row("x")} - vec4(mean)) * rstd;
    let g = ${g};
    ${["x", "y", "z", "w"].map((l) => `sum_g += g.${l}; sum_gx += g.${l} * xhat.${l};`).join(" ")}
  }
  let mean_g = sum_g / f32(C);
  let mean_gx = sum_gx / f32(C);
  for (var c = 0u; c < C4; c++) {
    let xhat = (${row("x")} - vec4(mean)) * rstd;
    let g = ${g};
    var d = rstd * (g - vec4(mean_g) - xhat * mean_gx);
    if (params.accumulate != 0u) { d = ${row("dx")} + d; }
    ${row("dx")} = d;
  }
}
`;
}

/** Returns [dx, dgamma+dbeta] launches (v4: after its packs of dy and x). */
export function planLayernormBackward(gpu: Gpu, s: LayernormBackwardSpec): Dispatch[] {
  const { N, C, label } = s;
  requireShape(label, "N", N);
  requireShape(label, "C", C);
  for (const [t, n, what] of [[s.dy, N * C, "dy"], [s.x, N * C, "x"], [s.dx, N * C, "dx"]] as const) {
    requireLength(label, t, n, what);
  }
  requireLength(label, s.mean, N, "mean");
  requireLength(label, s.rstd, N, "rstd");
  requireLength(label, s.params, s.gammaOffset + C, "params (gamma)");
  requireLength(label, s.grads, s.dgammaOffset + C, "grads (dgamma)");
  requireLength(label, s.grads, s.dbetaOffset + C, "grads (dbeta)");

  const read = { dy: s.dy, x: s.x };
  const version = chooseVersion(
    gpu,
    label,
    s.version,
    C,
    tensorOffsets(
      { dy: s.dy, x: s.x, dx: s.dx },
      {
        gamma: s.params.offset + s.gammaOffset,
        dgamma: s.grads.offset + s.dgammaOffset,
        dbeta: s.grads.offset + s.dbetaOffset,
      },
    ),
    Object.values(read).map((tensor) => ({ tensor, rows: N, cols: C, ld: C })),
  );
  const v4 = version === "v4";
  const vec4 = version === "v3" || v4;
  const type = vec4 ? "vec4f" as const : "f32" as const;
  const unit = vec4 ? 4 : 1;
  // v4 packs dy and x once; both launches read them.
  const packs = v4 ? packRows(gpu, label, read, N, C) : [];
  const inputs = v4 ? [] : [{ name: "dy", tensor: s.dy, type }, { name: "x", tensor: s.x, type }];
  const bdx = bindOperands(gpu, label, [
    ...inputs,
    { name: "mean", tensor: s.mean },
    { name: "rstd", tensor: s.rstd },
    { name: "gamma", tensor: s.params, type },
    { name: "dx", tensor: s.dx, write: true, type },
  ]);
  const pdx = offsetParams(bdx);
  pdx.gamma_off += s.gammaOffset / unit;
  const tdx = withTextureBindings(bdx, packs);
  const dxCode = {
    v1: () => dxSource(bdx, gpu.features.subgroups),
    v2: () => perInvocationRows(dxSource(bdx)),
    v3: () => dxSourceV3(bdx),
    v4: () => dxSourceV3({ ...bdx, declarations: tdx.declarations }, true),
  }[version]();
  const dx = plan(gpu, {
    label: label + " dx",
    code: dxCode,
    params: { N, C, accumulate: s.accumulateDx ? 1 : 0, ...pdx },
    bindings: tdx.bindings,
    workgroups: grid1d(gpu, N, version === "v1" ? 1 : ROWS_PER_WG),
    flops: 14 * N * C,
    bytes: 4 * (3 * N * C + C + 2 * N),
  });

  const bp = bindOperands(gpu, label, [
    ...inputs,
    { name: "mean", tensor: s.mean },
    { name: "rstd", tensor: s.rstd },
    { name: "dgamma", tensor: s.grads, write: true, type },
    { name: "dbeta", tensor: s.grads, write: true, type },
  ]);
  const pp = offsetParams(bp);
  pp.dgamma_off += s.dgammaOffset / unit;
  pp.dbeta_off += s.dbetaOffset / unit;
  const tp = withTextureBindings(bp, packs);
  const paramGrads = plan(gpu, {
    label: label + " dgamma dbeta",
    code: paramGradSource({ ...bp, declarations: tp.declarations }, vec4, v4),
    params: { N, C, ...pp },
    bindings: tp.bindings,
    workgroups: vec4 ? [Math.ceil(C / 4 / COL4_WG), 1, 1] : [Math.ceil(C / COL_WG), 1, 1],
    flops: 5 * N * C,
    bytes: 4 * (2 * N * C + 2 * N + 4 * C),
  });
  return [...packs.map((pack) => pack.dispatch), dx, paramGrads];
}
