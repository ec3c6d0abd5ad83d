/**
 * Token + position embedding, forward and a deterministic backward (no float atomics).
 *
 * Forward:  out[n, c] = wte[tokens[n], c] + wpe[n mod T, c] for the N = B·T rows, all row-major.
 *           A token id outside [0, vocabRows) writes NaN (never a read out of bounds), so a bad id
 *           surfaces as a non-finite loss; the model validates ids on the CPU first.
 *           Dispatch: one invocation per output element, 256 per workgroup, grid1d.
 *
 * Backward: the CPU groups the positions of a batch by token id when it uploads the batch
 *           (`groupPositionsByToken`): unique[u] is the u-th distinct token id in ascending order,
 *           positions[starts[u] .. starts[u+1]) are the flat positions (b·T + t) holding it, ascending.
 *           Arrays are padded to fixed sizes (maxUnique = min(V, N)): unused entries have unique = -1
 *           and the empty range starts[u] = starts[u+1] = N.
 *   dwte:   one invocation per (u, c): dwte[unique[u], c] (+)= Σ dx[p, c] over its positions, in
 *           position order. Grid: grid1d over maxUnique·C.
 *   dwpe:   one invocation per (t, c): dwpe[t, c] (+)= Σ_b dx[b·T + t, c], b ascending. Grid: T·C.
 *   Both sums start from 0 and are then added to the old gradient when `accumulate` is true.
 *   With accumulate = false, dwte overwrites ONLY the rows of tokens present in the batch (other
 *   rows keep their values) and dwpe overwrites rows 0..T-1 (rows T.. of a longer wpe are untouched).
 *   dwte and dwpe are given as tensors (parts of the flat gradient, each bound alone).
 * Windows: a token embedding larger than one storage binding (GPT-2's) is split by vocabulary rows
 * (runtime.ts windowRanges); forward and dwte run once per window [row_start, row_end), each touching
 * only the tokens in its rows. The forward's first window also writes NaN for ids outside the table.
 */
import type { Gpu } from "../device.ts";
import { type Dispatch, grid1d, plan, slice, type Tensor, windowRanges } from "../runtime.ts";
import {
  bindOperands,
  type BoundOperands,
  offsetParams,
  requireLength,
  requireShape,
  WGSL_COMMON,
} from "./operands.ts";

const WG = 256;

const INDEX = /* wgsl */ `
fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * ${WG}u; }
`;

export interface EmbeddingForwardSpec {
  tokens: Tensor;
  wte: Tensor;
  wpe: Tensor;
  out: Tensor;
  B: number;
  T: number;
  C: number;
  label: string;
}

function forwardSource(b: BoundOperands): string {
  return /* wgsl */ `
struct Params {
  N: u32, T: u32, C: u32, vocab_rows: u32, row_start: u32, row_end: u32,
  tokens_off: u32, wte_off: u32, wpe_off: u32, out_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${INDEX}${WGSL_COMMON}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.N * params.C) { return; }
  let n = i / params.C;
  let c = i % params.C;
  let t = n % params.T;
  let token = ${b.array.tokens}[params.tokens_off + n];
  if (token >= i32(params.row_start) && u32(token) < params.row_end) {
    let row = u32(token) - params.row_start;
    ${b.array.out}[params.out_off + i] = ${b.array.wte}[params.wte_off + row * params.C + c] + ${b.array.wpe}[params.wpe_off + t * params.C + c];
  } else if (params.row_start == 0u && (token < 0 || u32(token) >= params.vocab_rows)) {
    ${b.array.out}[params.out_off + i] = nan_f32();
  }
}
`;
}

/** One dispatch per vocabulary window of wte. */
export function planEmbeddingForward(gpu: Gpu, s: EmbeddingForwardSpec): Dispatch[] {
  const { B, T, C, label } = s;
  for (const [name, v] of [["B", B], ["T", T], ["C", C]] as const) requireShape(label, name, v);
  const N = B * T;
  requireLength(label, s.tokens, N, "tokens");
  requireLength(label, s.wpe, T * C, "wpe");
  requireLength(label, s.out, N * C, "out");
  const vocabRows = Math.floor(s.wte.length / C);
  if (vocabRows < 1) throw new Error(`${label}: wte ${s.wte.label} has fewer than C = ${C} elements`);
  const windows = windowRanges(gpu, vocabRows, C, `${label}: wte ${s.wte.label}`);
  return windows.map((w, i) => {
    const b = bindOperands(gpu, label, [
      { name: "tokens", tensor: s.tokens, type: "i32" },
      { name: "wte", tensor: slice(s.wte, w.start * C, w.length * C) },
      { name: "wpe", tensor: s.wpe },
      { name: "out", tensor: s.out, write: true },
    ]);
    return plan(gpu, {
      label: label + (windows.length > 1 ? ` [window ${i}]` : ""),
      code: forwardSource(b),
      params: {
        N,
        T,
        C,
        vocab_rows: vocabRows,
        row_start: w.start,
        row_end: w.start + w.length,
        ...offsetParams(b),
      },
      bindings: b.bindings,
      workgroups: grid1d(gpu, N * C, WG),
      flops: N * C,
      bytes: 4 * (N + 3 * N * C),
    });
  });
}

export interface TokenGroups {
  /** Distinct token ids, ascending; -1 pads up to maxUnique. */
  unique: Int32Array;
  /** maxUnique + 1 range starts into `positions`; padded entries hold N (empty ranges). */
  starts: Int32Array;
  /** The N flat positions, grouped by token (groups in `unique` order, positions ascending). */
  positions: Int32Array;
}

/** Groups the positions of a batch by token id (the CPU side of the deterministic backward). */
export function groupPositionsByToken(tokens: Int32Array, maxUnique: number): TokenGroups {
  const N = tokens.length;
  for (let p = 0; p < N; p++) {
    if (!Number.isInteger(tokens[p]) || tokens[p] < 0) {
      throw new Error(`groupPositionsByToken: token id ${tokens[p]} at position ${p} is negative`);
    }
  }
  // A stable sort of positions by token keeps positions ascending inside each group.
  const order = Array.from({ length: N }, (_, p) => p).sort((a, b) => tokens[a] - tokens[b] || a - b);
  const unique = new Int32Array(maxUnique).fill(-1);
  const starts = new Int32Array(maxUnique + 1).fill(N);
  const positions = Int32Array.from(order);
  let count = 0;
  for (let k = 0; k < N; k++) {
    const token = tokens[order[k]];
    if (k === 0 || token !== tokens[order[k - 1]]) {
      if (count === maxUnique) {
        throw new Error(
          `groupPositionsByToken: more than maxUnique = ${maxUnique} distinct token ids in the batch`,
        );
      }
      unique[count] = token;
      starts[count] = k;
      count++;
    }
  }
  return { unique, starts, positions };
}

export interface EmbeddingBackwardSpec {
  dx: Tensor;
  unique: Tensor;
  starts: Tensor;
  positions: Tensor;
  /** The token embedding's gradient (vocabulary rows × C) and the position embedding's (T × C). */
  dwte: Tensor;
  dwpe: Tensor;
  B: number;
  T: number;
  C: number;
  maxUnique: number;
  accumulate: boolean;
  label: string;
}

function dwteSource(b: BoundOperands): string {
  return /* wgsl */ `
struct Params {
  C: u32, max_unique: u32, accumulate: u32, row_start: u32, row_end: u32,
  dx_off: u32, unique_off: u32, starts_off: u32, positions_off: u32, dwte_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.max_unique * params.C) { return; }
  let u = i / params.C;
  let c = i % params.C;
  let token = ${b.array.unique}[params.unique_off + u];
  // Padding entries, ids of other windows and ids outside the gradient tensor (never written out of bounds).
  if (token < i32(params.row_start) || u32(token) >= params.row_end) { return; }
  let first = u32(${b.array.starts}[params.starts_off + u]);
  let last = u32(${b.array.starts}[params.starts_off + u + 1u]);
  var sum = 0.0;
  for (var k = first; k < last; k++) {
    let p = u32(${b.array.positions}[params.positions_off + k]);
    sum += ${b.array.dx}[params.dx_off + p * params.C + c];
  }
  let g = params.dwte_off + (u32(token) - params.row_start) * params.C + c;
  if (params.accumulate != 0u) { sum = ${b.array.dwte}[g] + sum; }
  ${b.array.dwte}[g] = sum;
}
`;
}

function dwpeSource(b: BoundOperands): string {
  return /* wgsl */ `
struct Params { B: u32, T: u32, C: u32, accumulate: u32, dx_off: u32, dwpe_off: u32 }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linear_index(gid, nwg);
  if (i >= params.T * params.C) { return; }
  var sum = 0.0;
  for (var b = 0u; b < params.B; b++) {
    sum += ${b.array.dx}[params.dx_off + b * params.T * params.C + i];
  }
  let g = params.dwpe_off + i;
  if (params.accumulate != 0u) { sum = ${b.array.dwpe}[g] + sum; }
  ${b.array.dwpe}[g] = sum;
}
`;
}

/** Returns [dwte per window…, dwpe] dispatches; they write disjoint gradient rows. */
export function planEmbeddingBackward(gpu: Gpu, s: EmbeddingBackwardSpec): Dispatch[] {
  const { B, T, C, maxUnique, label } = s;
  for (const [name, v] of [["B", B], ["T", T], ["C", C], ["maxUnique", maxUnique]] as const) {
    requireShape(label, name, v);
  }
  const N = B * T;
  requireLength(label, s.dx, N * C, "dx");
  requireLength(label, s.unique, maxUnique, "unique");
  requireLength(label, s.starts, maxUnique + 1, "starts");
  requireLength(label, s.positions, N, "positions");
  requireLength(label, s.dwpe, T * C, "dwpe");
  requireLength(label, s.dwte, C, "dwte");
  // The rows of dwte: an id beyond them is skipped, never written out of bounds.
  const wteRows = Math.floor(s.dwte.length / C);
  const accumulate = s.accumulate ? 1 : 0;
  const windows = windowRanges(gpu, wteRows, C, `${label}: dwte`);
  const dwte = windows.map((w, i) => {
    const bound = bindOperands(gpu, label, [
      { name: "dx", tensor: s.dx },
      { name: "unique", tensor: s.unique, type: "i32" },
      { name: "starts", tensor: s.starts, type: "i32" },
      { name: "positions", tensor: s.positions, type: "i32" },
      { name: "dwte", tensor: slice(s.dwte, w.start * C, w.length * C), write: true },
    ]);
    return plan(gpu, {
      label: label + " dwte" + (windows.length > 1 ? ` [window ${i}]` : ""),
      code: dwteSource(bound),
      params: {
        C,
        max_unique: maxUnique,
        accumulate,
        row_start: w.start,
        row_end: w.start + w.length,
        ...offsetParams(bound),
      },
      bindings: bound.bindings,
      workgroups: grid1d(gpu, maxUnique * C, WG),
      flops: N * C,
      bytes: 4 * (2 * N * C + 2 * maxUnique * C),
    });
  });

  const wpe = bindOperands(gpu, label, [
    { name: "dx", tensor: s.dx },
    { name: "dwpe", tensor: slice(s.dwpe, 0, T * C), write: true },
  ]);
  const dwpe = plan(gpu, {
    label: label + " dwpe",
    code: dwpeSource(wpe),
    params: { B, T, C, accumulate, ...offsetParams(wpe) },
    bindings: wpe.bindings,
    workgroups: grid1d(gpu, T * C, WG),
    flops: N * C,
    bytes: 4 * (N * C + 2 * T * C),
  });
  return [...dwte, dwpe];
}
