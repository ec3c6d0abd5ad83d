/**
 * rows: moving the hidden state at each sequence's last non-padding token.
 *   gather   out[b, :] = x[b·T + len[b] − 1, :]   (zero for an empty row, len = 0)
 *   scatter  dx[b·T + len[b] − 1, :] = dout[b, :] (dx must be zero elsewhere: the caller fills it)
 *   mask     out[b, :] = x[b, :], zero for an empty row (x already one row per sequence)
 * Buffers: x / dx (N·C, B·C for mask), out / dout (B·C), lengths (i32, B). One invocation per (b, c):
 * dispatch ⌈B·C / 64⌉ workgroups. The classification head and the probes' feature readout use them.
 *
 * stats: `planStatsCarry` adds a step's non-finite flag into a sticky counter (a read every N steps
 * still sees a skipped update) and counts steps; one invocation.
 */
import type { Gpu } from "../device.ts";
import { bindTensor, type Dispatch, grid1d, plan, type Tensor } from "../runtime.ts";

const GATHER = /* wgsl */ `
struct Params { B: u32, T: u32, C: u32, x_off: u32, out_off: u32, len_off: u32, scatter: u32, width: u32, last: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> lengths: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * params.width;
  if (i >= params.B * params.C) { return; }
  let b = i / params.C;
  let c = i % params.C;
  let len = lengths[params.len_off + b];
  if (len <= 0) {
    if (params.scatter == 0u) { out[params.out_off + i] = 0.0; }
    return;
  }
  let row = b * params.T + (u32(len) - 1u) * params.last;
  if (params.scatter == 0u) {
    out[params.out_off + i] = x[params.x_off + row * params.C + c];
  } else {
    x[params.x_off + row * params.C + c] = out[params.out_off + i];
  }
}
`;

export interface RowsSpec {
  label: string;
  /** N·C activations (read for gather, written for scatter). */
  x: Tensor;
  /** B·C rows (written for gather, read for scatter). */
  rows: Tensor;
  lengths: Tensor;
  B: number;
  T: number;
  C: number;
}

function planRows(gpu: Gpu, s: RowsSpec, scatter: boolean, last = true): Dispatch {
  const x = bindTensor(gpu, s.x);
  const rows = bindTensor(gpu, s.rows);
  const len = bindTensor(gpu, s.lengths);
  const [gx, gy] = grid1d(gpu, s.B * s.C, 64);
  return plan(gpu, {
    label: s.label,
    code: GATHER,
    params: {
      B: s.B,
      T: s.T,
      C: s.C,
      x_off: x.base,
      out_off: rows.base,
      len_off: len.base,
      scatter: scatter ? 1 : 0,
      width: gx * 64,
      last: last ? 1 : 0,
    },
    bindings: [x.binding, rows.binding, len.binding],
    workgroups: [gx, gy],
    bytes: 8 * s.B * s.C,
  });
}

/** rows[b] = x[b, len[b] − 1]. */
export function planGatherLast(gpu: Gpu, s: RowsSpec): Dispatch {
  return planRows(gpu, s, false);
}

/** rows[b] = x[b] for a row with tokens, zero for an empty row (the gather's rule on B·C rows). */
export function planMaskEmpty(gpu: Gpu, s: Omit<RowsSpec, "T">): Dispatch {
  return planRows(gpu, { ...s, T: 1 }, false, false);
}

/** x[b, len[b] − 1] = rows[b] (x zero elsewhere, filled by the caller). */
export function planScatterLast(gpu: Gpu, s: RowsSpec): Dispatch {
  return planRows(gpu, s, true);
}

const CARRY = /* wgsl */ `
struct Params { flag: u32, sticky: u32, steps: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(1)
fn main() {
  if (stats[params.flag] != 0.0) { stats[params.sticky] += 1.0; }
  stats[params.steps] += 1.0;
}
`;

/** stats[sticky] += (stats[flag] ≠ 0); stats[steps] += 1. */
export function planStatsCarry(
  gpu: Gpu,
  stats: Tensor,
  flag: number,
  sticky: number,
  steps: number,
): Dispatch {
  const s = bindTensor(gpu, stats);
  return plan(gpu, {
    label: "stats carry",
    code: CARRY,
    params: { flag: s.base + flag, sticky: s.base + sticky, steps: s.base + steps },
    bindings: [s.binding],
    workgroups: [1],
  });
}
