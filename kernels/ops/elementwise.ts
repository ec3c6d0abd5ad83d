/**
 * Elementwise kernels: zero/constant fill, residual add, GELU (tanh form) forward and backward.
 *
 *   fill:    t[i] = value          (four elements an invocation where t's offset and length are multiples of 4:
 *                                    on llvmpipe each store is a loop over the SIMD lanes, whatever its width)
 *   scale:   t[i] = factor · t[i]         (gradient accumulation's weights; factor set per use)
 *   add:     out[i] = a[i] + b[i]            (out may be a, or share a buffer with a or b)
 *   gelu:    y[i] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
 *   gelu':   dx[i] = dy[i] · gelu'(x[i])      (overwrites dx)
 *
 * Buffers: flat f32 arrays of n elements, each at its own element offset (params `<name>_off`).
 * Tensors that share a buffer with the written one are reached through a single binding
 * (see operands.ts). Dispatch: one invocation per element, 256 per workgroup, grid1d over x/y;
 * linear index = gid.x + gid.y · num_workgroups.x · 256.
 */
import type { Gpu } from "../device.ts";
import { type Dispatch, grid1d, plan, type Tensor } from "../runtime.ts";
import { bindOperands, type BoundOperands, offsetParams, requireLength } from "./operands.ts";

const WG = 256;

const INDEX = /* wgsl */ `
fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * ${WG}u; }
`;

// tanh's argument is clamped: tanh(±15) is ±1 in f32, and some backends form tanh from exp, which
// overflows to inf/inf = NaN for large arguments.
// Shared with the matmul epilogues (matmul.ts), so fused and separate GELU compute the same values.
export const GELU_COMMON = /* wgsl */ `
const GELU_SCALE: f32 = 0.7978845608028654;
fn gelu_tanh(x: f32) -> f32 {
  return tanh(clamp(GELU_SCALE * (x + 0.044715 * x * x * x), -15.0, 15.0));
}
fn gelu(x: f32) -> f32 { return 0.5 * x * (1.0 + gelu_tanh(x)); }
fn gelu_grad(x: f32) -> f32 {
  let t = gelu_tanh(x);
  let du = GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
}
`;

function fillSource(b: BoundOperands, vec4: boolean): string {
  return /* wgsl */ `
struct Params { n: u32, t_off: u32, value: f32 }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  ${b.array.t}[params.t_off + i] = ${vec4 ? "vec4(params.value)" : "params.value"};
}
`;
}

export function planFill(gpu: Gpu, t: Tensor, value: number, label: string): Dispatch {
  const vec4 = t.offset % 4 === 0 && t.length % 4 === 0;
  const b = bindOperands(gpu, label, [{ name: "t", tensor: t, write: true, type: vec4 ? "vec4f" : "f32" }]);
  const n = vec4 ? t.length / 4 : t.length;
  return plan(gpu, {
    label,
    code: fillSource(b, vec4),
    params: { n, value, ...offsetParams(b) },
    bindings: b.bindings,
    workgroups: grid1d(gpu, n, WG),
    bytes: 4 * t.length,
  });
}

function scaleSource(b: BoundOperands): string {
  return /* wgsl */ `
struct Params { n: u32, t_off: u32, factor: f32 }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  ${b.array.t}[params.t_off + i] = params.factor * ${b.array.t}[params.t_off + i];
}
`;
}

/** t ← factor·t in place; change the factor with setParams({ factor }). */
export function planScale(gpu: Gpu, t: Tensor, factor: number, label: string): Dispatch {
  const b = bindOperands(gpu, label, [{ name: "t", tensor: t, write: true }]);
  return plan(gpu, {
    label,
    code: scaleSource(b),
    params: { n: t.length, factor, ...offsetParams(b) },
    bindings: b.bindings,
    workgroups: grid1d(gpu, t.length, WG),
    bytes: 8 * t.length,
  });
}

function addSource(b: BoundOperands): string {
  return /* wgsl */ `
struct Params { n: u32, out_off: u32, a_off: u32, b_off: u32 }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  ${b.array.out}[params.out_off + i] = ${b.array.a}[params.a_off + i] + ${b.array.b}[params.b_off + i];
}
`;
}

export function planAdd(gpu: Gpu, out: Tensor, a: Tensor, b: Tensor, n: number, label: string): Dispatch {
  requireLength(label, out, n, "out");
  requireLength(label, a, n, "a");
  requireLength(label, b, n, "b");
  const bound = bindOperands(gpu, label, [
    { name: "out", tensor: out, write: true },
    { name: "a", tensor: a },
    { name: "b", tensor: b },
  ]);
  return plan(gpu, {
    label,
    code: addSource(bound),
    params: { n, ...offsetParams(bound) },
    bindings: bound.bindings,
    workgroups: grid1d(gpu, n, WG),
    flops: n,
    bytes: 12 * n,
  });
}

function geluForwardSource(b: BoundOperands): string {
  return /* wgsl */ `
struct Params { n: u32, x_off: u32, y_off: u32 }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${INDEX}${GELU_COMMON}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  ${b.array.y}[params.y_off + i] = gelu(${b.array.x}[params.x_off + i]);
}
`;
}

export function planGeluForward(gpu: Gpu, x: Tensor, y: Tensor, n: number, label: string): Dispatch {
  requireLength(label, x, n, "x");
  requireLength(label, y, n, "y");
  const b = bindOperands(gpu, label, [{ name: "x", tensor: x }, { name: "y", tensor: y, write: true }]);
  return plan(gpu, {
    label,
    code: geluForwardSource(b),
    params: { n, ...offsetParams(b) },
    bindings: b.bindings,
    workgroups: grid1d(gpu, n, WG),
    flops: 10 * n,
    bytes: 8 * n,
  });
}

function geluBackwardSource(b: BoundOperands): string {
  return /* wgsl */ `
struct Params { n: u32, x_off: u32, dy_off: u32, dx_off: u32 }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${INDEX}${GELU_COMMON}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  ${b.array.dx}[params.dx_off + i] = ${b.array.dy}[params.dy_off + i] * gelu_grad(${b.array.x}[params.x_off + i]);
}
`;
}

export function planGeluBackward(
  gpu: Gpu,
  x: Tensor,
  dy: Tensor,
  dx: Tensor,
  n: number,
  label: string,
): Dispatch {
  requireLength(label, x, n, "x");
  requireLength(label, dy, n, "dy");
  requireLength(label, dx, n, "dx");
  const b = bindOperands(gpu, label, [
    { name: "x", tensor: x },
    { name: "dy", tensor: dy },
    { name: "dx", tensor: dx, write: true },
  ]);
  return plan(gpu, {
    label,
    code: geluBackwardSource(b),
    params: { n, ...offsetParams(b) },
    bindings: b.bindings,
    workgroups: grid1d(gpu, n, WG),
    flops: 16 * n,
    bytes: 12 * n,
  });
}
