/**
 * Softmax cross-entropy, forward and backward fused, mean-reduced on the device. Versions of the LM
 * head's row pass (spec.version; default v3 where it applies, else v2, else v1):
 *   v1 workgroup per row   256 invocations per row, tree reductions (2. below).
 *   v2 invocation per row  one invocation per row, three ordered loops (see lmRowSourceV2).
 *   v3 vec4 rows           v2 reading and writing the row four logits at a time, each vec4's lanes taken
 *                          in v2's order (the same results bit for bit where the compiler rounds a vec4
 *                          as four scalars): a quarter of the storage accesses, each a loop over the SIMD
 *                          lanes on llvmpipe, and one exp per logit instead of two (the second loop keeps
 *                          exp(logit − max) in the row for the third). Needs the row stride and the logits'
 *                          offset 4-aligned and the buffer to hold the last row's padding to a multiple of 4.
 *
 * The model's `stats` tensor (slots in kernels/stats.ts) collects a step's scalars. These kernels only
 * ever SET stats[STAT_NONFINITE] to 1 (never clear it), and overwrite LOSS, COUNT (and CORRECT).
 *
 * Language-model head (`planLmCrossEntropy`), logits rows×V row-major (row stride ld ≥ V, default V), targets i32 rows (< 0 = ignored):
 *   1. count:  one 64-invocation workgroup (SUM_WG); stats[COUNT] = #(target ≥ 0). A target ≥ V counts as an
 *              error: NONFINITE is set, its row loss is NaN, and no logit beyond the row is read.
 *   2. rows:   one 256-invocation workgroup per row (grid1d): max and Σexp by fixed tree reductions,
 *              rowLoss = logsumexp − logit[target]; logits are overwritten with
 *              dlogits = (softmax − onehot)/count (all 0 for an ignored row, rowLoss 0).
 *   3. reduce: one 64-invocation workgroup; stats[LOSS] = Σ rowLoss (strided in order, then a tree) / count, and
 *              NONFINITE = 1 if that is NaN/Inf. With no valid target the loss is 0.
 *   Pass 2 has three versions: v1 as above, v2 one invocation per row (three ordered loops over the
 *   row), v3 v2 on vec4s. v2 only up to LM_ROW_V2_MAX_VOCAB, v3 up to LM_ROW_V3_MAX_VOCAB with 4-aligned
 *   rows (the default picks v3, else v2, else v1; an explicit version that cannot run is refused).
 *   Logits larger than one storage binding (GPT-2's vocabulary × a long batch): pass 2 runs once per
 *   block of whole rows that fits a binding (runtime.ts windowRanges); passes 1 and 3 read one value
 *   per row and run once.
 *
 * Classification head (`planClassCrossEntropy`), logits B×2, soft targets B×2, valid i32 B: one
 * 64-invocation workgroup does everything (B ≤ MAX_CLASS_ROWS), rows strided over invocations:
 *   loss = mean over valid rows of −Σ_c target_c·log softmax_c; dlogits = (softmax·Σ_c target_c −
 *   target)/count (= softmax − target for targets summing to 1), 0 on invalid rows.
 *   aux = true: the logconf target of openai/weak-to-strong with warmup weight `alpha` (a parameter
 *   the caller updates per step with setParams): preds = softmax(logits);
 *   threshold = torch.quantile(preds[:,0] over valid rows, q = mean of targets[:,1] over valid rows)
 *   with linear interpolation (sorted by rank in workgroup memory, pos = q·(n−1), torch's lerp;
 *   q is clamped to [0, 1] where torch would raise);
 *   hard = [preds0 ≥ threshold, preds0 < threshold] (a constant); target = (1−α)·targets + α·hard.
 *   stats: LOSS, COUNT (valid rows), CORRECT (= valid rows whose logit argmax equals the argmax of
 *   the original targets; ties go to class 0 as in torch.argmax), NONFINITE.
 */
import type { Gpu } from "../device.ts";
import { type Dispatch, grid1d, plan, slice, type Tensor, windowRanges } from "../runtime.ts";
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
import { STATS_LENGTH, STATS_WGSL } from "../stats.ts";
import type { KernelVersion } from "../versions.ts";

export type CrossEntropyVersion = KernelVersion<"crossEntropy">;

/** Largest batch the single-workgroup classification kernel accepts. */
export const MAX_CLASS_ROWS = 1024;

const WG = 256;
/**
 * Invocations of the single-workgroup kernels (the classification loss, the LM loss's sum over rows):
 * they stride over at most MAX_CLASS_ROWS rows, and a workgroup of 64 takes 4× fewer barrier waits per
 * tree level than 256 on llvmpipe, where a barrier suspends and resumes every invocation.
 */
const SUM_WG = 64;

/**
 * Reductions over one workgroup of `size` invocations (call from uniform control flow): fixed-order
 * trees, or subgroup operations where the device grants them (then the module starts with subgroupsEnable).
 */
const reduce = (subgroups: boolean, size = WG) =>
  workgroupReduce(size, { sum: "reduce_sum", max: "reduce_max" }, { subgroups });

export interface LmCrossEntropySpec {
  logits: Tensor;
  targets: Tensor;
  rowLoss: Tensor;
  stats: Tensor;
  rows: number;
  V: number;
  /** Row stride of the logits (default V): rows padded to a multiple of 4 keep the LM head's products vec4. */
  ld?: number;
  label: string;
  /**
   * Row pass version: v1 workgroup per row, v2 invocation per row, v3 vec4 rows. Default: v3 where it applies
   * (lmRowV3Misfit), else v2 up to LM_ROW_V2_MAX_VOCAB, else v1.
   */
  version?: CrossEntropyVersion;
}

const LM_PARAMS = /* wgsl */ `
struct Params { rows: u32, V: u32, ld: u32, logits_off: u32, targets_off: u32, row_loss_off: u32, stats_off: u32 }
@group(0) @binding(0) var<uniform> params: Params;
`;

function lmCountSource(b: BoundOperands, subgroups: boolean): string {
  return subgroupsEnable({ subgroups }) + LM_PARAMS + b.declarations + STATS_WGSL +
    reduce(subgroups, SUM_WG) + /* wgsl */ `
@compute @workgroup_size(${SUM_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.x;
  var count = 0.0;
  var bad = 0.0;
  for (var r = tid; r < params.rows; r += ${SUM_WG}u) {
    let t = ${b.array.targets}[params.targets_off + r];
    if (t >= 0) { count += 1.0; }
    if (t >= i32(params.V)) { bad += 1.0; }
  }
  let total = reduce_sum(tid, count);
  let total_bad = reduce_sum(tid, bad);
  if (tid == 0u) {
    ${b.array.stats}[params.stats_off + STAT_COUNT] = total;
    if (total_bad > 0.0) { ${b.array.stats}[params.stats_off + STAT_NONFINITE] = 1.0; }
  }
}
`;
}

function lmRowSource(b: BoundOperands, subgroups: boolean): string {
  const logits = b.array.logits;
  return subgroupsEnable({ subgroups }) + LM_PARAMS + b.declarations + STATS_WGSL + reduce(subgroups) +
    WGSL_COMMON + /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let tid = lid.x;
  let V = params.V;
  let x0 = params.logits_off + row * params.ld;
  let t = ${b.array.targets}[params.targets_off + row];
  let valid = t >= 0;
  let in_range = valid && t < i32(V);
  // Read before any invocation overwrites the row (the reductions below hold barriers).
  var target_logit = 0.0;
  if (tid == 0u && in_range) { target_logit = ${logits}[x0 + u32(t)]; }
  // The lowest finite f32, written exactly: Tint (Chromium) rejects -3.4028235e38 as out of range.
  var m = -3.4028234663852886e38;
  for (var v = tid; v < V; v += ${WG}u) { m = max(m, ${logits}[x0 + v]); }
  let row_max = reduce_max(tid, m);
  var s = 0.0;
  for (var v = tid; v < V; v += ${WG}u) { s += exp(${logits}[x0 + v] - row_max); }
  let sum = reduce_sum(tid, s);
  let inv_count = 1.0 / max(${b.array.stats}[params.stats_off + STAT_COUNT], 1.0);
  for (var v = tid; v < V; v += ${WG}u) {
    var g = 0.0;
    if (valid) {
      g = exp(${logits}[x0 + v] - row_max) / sum;
      if (i32(v) == t) { g -= 1.0; }
      g *= inv_count;
    }
    ${logits}[x0 + v] = g;
  }
  if (tid == 0u) {
    var loss = 0.0;
    if (in_range) { loss = row_max + log(sum) - target_logit; }
    if (valid && !in_range) { loss = nan_f32(); }
    ${b.array.row_loss}[params.row_loss_off + row] = loss;
  }
}
`;
}

/** Rows per workgroup of the v2 row pass. */
const ROWS_PER_WG = 64;

/**
 * Longest row (V) of the v2 row pass: its loops run 3·V iterations in one invocation, and llvmpipe
 * silently stops an invocation's loops after 65535 iterations in all (GPT-2's vocabulary gave a wrong
 * loss and dlogits, no error).
 */
export const LM_ROW_V2_MAX_VOCAB = Math.floor(65535 / 3);

/**
 * v2 of the row pass: one invocation per row (64 rows per workgroup), three ordered loops over the
 * row (max, Σexp, softmax − onehot written in place), no workgroup memory or barriers; on llvmpipe
 * v1's 256-wide tree reductions cost far more than the row's math. Same results up to summation order.
 */
function lmRowSourceV2(b: BoundOperands): string {
  const logits = b.array.logits;
  return LM_PARAMS + b.declarations + STATS_WGSL + WGSL_COMMON + /* wgsl */ `
@compute @workgroup_size(${ROWS_PER_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * ${ROWS_PER_WG}u;
  if (row >= params.rows) { return; }
  let V = params.V;
  let x0 = params.logits_off + row * params.ld;
  let t = ${b.array.targets}[params.targets_off + row];
  let valid = t >= 0;
  let in_range = valid && t < i32(V);
  var target_logit = 0.0;
  if (in_range) { target_logit = ${logits}[x0 + u32(t)]; }
  var row_max = -3.4028234663852886e38; // lowest finite f32, exactly (see the v1 row pass)
  for (var v = 0u; v < V; v++) { row_max = max(row_max, ${logits}[x0 + v]); }
  var sum = 0.0;
  for (var v = 0u; v < V; v++) { sum += exp(${logits}[x0 + v] - row_max); }
  let inv_count = 1.0 / max(${b.array.stats}[params.stats_off + STAT_COUNT], 1.0);
  let scale = select(0.0, inv_count / sum, valid);
  for (var v = 0u; v < V; v++) {
    var g = exp(${logits}[x0 + v] - row_max) * scale;
    if (valid && i32(v) == t) { g -= inv_count; }
    ${logits}[x0 + v] = g;
  }
  var loss = 0.0;
  if (in_range) { loss = row_max + log(sum) - target_logit; }
  if (valid && !in_range) { loss = nan_f32(); }
  ${b.array.row_loss}[params.row_loss_off + row] = loss;
}
`;
}

/** Longest row of v3: its loops run 3·⌈V/4⌉ iterations in one invocation, under llvmpipe's 65535 (see v2's). */
export const LM_ROW_V3_MAX_VOCAB = 4 * Math.floor(65535 / 3);

/** Why v3 cannot run the row pass ("" when it can). */
export function lmRowV3Misfit(s: LmCrossEntropySpec): string {
  const ld = s.ld ?? s.V;
  if (s.V > LM_ROW_V3_MAX_VOCAB) return `V = ${s.V} is over ${LM_ROW_V3_MAX_VOCAB}`;
  if (ld % 4 !== 0) return `the row stride ${ld} is not a multiple of 4`;
  const unaligned = vec4Misfit([[s.logits.label, s.logits.offset]]);
  if (unaligned) return unaligned;
  const padded = s.logits.offset + (s.rows - 1) * ld + 4 * Math.ceil(s.V / 4);
  if (4 * padded > s.logits.buffer.size) {
    return `the last row's padding to a multiple of 4 is past the buffer's end`;
  }
  return "";
}

/**
 * v3 of the row pass: v2 on vec4s, and the second loop keeps each exp(logit − max) in the row for the third
 * to scale (v2 computes it twice; the same value, so the same bits). The last vec4 of a row whose V is not a
 * multiple of 4 takes only its lanes below V (a padding lane leaves the max as it is, adds nothing to the
 * sum and keeps its value).
 */
function lmRowSourceV3(b: BoundOperands): string {
  const logits = b.array.logits;
  // Each loop runs over the row's whole vec4s, then once more on its partial last vec4 (tail) if any.
  const overRow = (body: (tail: boolean) => string) => `
  for (var c = 0u; c < full; c++) {
    ${body(false)}
  }
  if (full < V4) {
    let c = full;
    ${body(true)}
  }`;
  const lanes = (tail: boolean, step: (lane: string) => string) =>
    ["x", "y", "z", "w"].map((l, k) => tail ? `if (4u * c + ${k}u < V) { ${step(l)} }` : step(l)).join(" ");
  return LM_PARAMS + b.declarations + STATS_WGSL + WGSL_COMMON + /* wgsl */ `
/** The positions in the row of vec4 c's four lanes. */
fn lane_index(c: u32) -> vec4<u32> { return vec4<u32>(4u * c) + vec4<u32>(0u, 1u, 2u, 3u); }
@compute @workgroup_size(${ROWS_PER_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * ${ROWS_PER_WG}u;
  if (row >= params.rows) { return; }
  let V = params.V;
  let V4 = (V + 3u) / 4u;
  let full = V / 4u;
  let x0 = params.logits_off + row * (params.ld / 4u);
  let t = ${b.array.targets}[params.targets_off + row];
  let valid = t >= 0;
  let in_range = valid && t < i32(V);
  var target_logit = 0.0;
  if (in_range) { target_logit = ${logits}[x0 + u32(t) / 4u][u32(t) % 4u]; }
  var row_max = -3.4028234663852886e38; // lowest finite f32, exactly (see the v1 row pass)
  ${
    overRow((tail) =>
      `let l = ${logits}[x0 + c];
    ${lanes(tail, (l) => `row_max = max(row_max, l.${l});`)}`
    )
  }
  var sum = 0.0;
  ${
    overRow((tail) =>
      `let l = ${logits}[x0 + c];
    let e = exp(l - vec4(row_max));
    ${lanes(tail, (l) => `sum += e.${l};`)}
    ${logits}[x0 + c] = ${tail ? "select(l, e, lane_index(c) < vec4<u32>(V))" : "e"};`
    )
  }
  let inv_count = 1.0 / max(${b.array.stats}[params.stats_off + STAT_COUNT], 1.0);
  let scale = select(0.0, inv_count / sum, valid);
  let hot = select(vec4<u32>(0xffffffffu), vec4<u32>(u32(t)), valid);
  ${
    overRow((tail) =>
      `let l = ${logits}[x0 + c];
    let v = lane_index(c);
    var g = l * scale;
    g = select(g, g - vec4(inv_count), v == hot);
    ${logits}[x0 + c] = ${tail ? "select(l, g, v < vec4<u32>(V))" : "g"};`
    )
  }
  var loss = 0.0;
  if (in_range) { loss = row_max + log(sum) - target_logit; }
  if (valid && !in_range) { loss = nan_f32(); }
  ${b.array.row_loss}[params.row_loss_off + row] = loss;
}
`;
}

function lmReduceSource(b: BoundOperands, subgroups: boolean): string {
  return subgroupsEnable({ subgroups }) + LM_PARAMS + b.declarations + STATS_WGSL +
    reduce(subgroups, SUM_WG) + WGSL_COMMON + /* wgsl */ `
@compute @workgroup_size(${SUM_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.x;
  var s = 0.0;
  for (var r = tid; r < params.rows; r += ${SUM_WG}u) { s += ${b.array.row_loss}[params.row_loss_off + r]; }
  let total = reduce_sum(tid, s);
  if (tid == 0u) {
    let loss = total / max(${b.array.stats}[params.stats_off + STAT_COUNT], 1.0);
    ${b.array.stats}[params.stats_off + STAT_LOSS] = loss;
    if (is_nonfinite(loss)) { ${b.array.stats}[params.stats_off + STAT_NONFINITE] = 1.0; }
  }
}
`;
}

/** The row pass's version: the caller's (refused with the reason where it cannot run), else v3, v2 or v1. */
function lmRowVersion(s: LmCrossEntropySpec): CrossEntropyVersion {
  const { V, label } = s;
  if (s.version === "v2" && V > LM_ROW_V2_MAX_VOCAB) {
    throw new Error(
      `${label}: cross-entropy v2 (invocation per row) takes V ≤ ${LM_ROW_V2_MAX_VOCAB}, got V = ${V}: ` +
        `use version v1 or leave the version out`,
    );
  }
  const otherwise = V <= LM_ROW_V2_MAX_VOCAB ? "v2" : "v1";
  return vec4Version(label, "cross-entropy v3 (vec4 rows)", s.version, "v3", lmRowV3Misfit(s), otherwise);
}

/** The row pass once per block of rows whose logits fit one storage binding. */
function planLmRowBlocks(gpu: Gpu, s: LmCrossEntropySpec): Dispatch[] {
  const { V, label } = s;
  const ld = s.ld ?? V;
  const version = lmRowVersion(s);
  const blocks = windowRanges(gpu, s.rows, ld, `${label}: logits ${s.logits.label}`);
  return blocks.map(({ start, length: rows }, i) => {
    const br = bindOperands(gpu, label, [
      {
        name: "logits",
        tensor: slice(s.logits, start * ld, (rows - 1) * ld + V),
        write: true,
        type: version === "v3" ? "vec4f" : "f32",
      },
      { name: "targets", tensor: slice(s.targets, start, rows), type: "i32" },
      { name: "row_loss", tensor: slice(s.rowLoss, start, rows), write: true },
      { name: "stats", tensor: s.stats },
    ]);
    const code = {
      v1: () => lmRowSource(br, gpu.features.subgroups),
      v2: () => lmRowSourceV2(br),
      v3: () => lmRowSourceV3(br),
    }[version]();
    return plan(gpu, {
      label: label + " rows" + (blocks.length > 1 ? ` [block ${i}]` : ""),
      code,
      params: {
        rows,
        V,
        ld,
        logits_off: 0,
        targets_off: 0,
        row_loss_off: 0,
        stats_off: 0,
        ...offsetParams(br),
      },
      bindings: br.bindings,
      workgroups: grid1d(gpu, rows, version === "v1" ? 1 : ROWS_PER_WG),
      flops: 5 * rows * V,
      bytes: 4 * (2 * rows * V + 2 * rows),
    });
  });
}

/** Returns [count, rows (one per block of rows), reduce] dispatches; logits are overwritten with dlogits. */
export function planLmCrossEntropy(gpu: Gpu, s: LmCrossEntropySpec): Dispatch[] {
  const { rows, V, label } = s;
  const ld = s.ld ?? V;
  requireShape(label, "rows", rows);
  requireShape(label, "V", V);
  if (!(Number.isInteger(ld) && ld >= V)) {
    throw new Error(`${label}: logits row stride ${ld} must be an integer ≥ V (${V})`);
  }
  requireLength(label, s.logits, (rows - 1) * ld + V, "logits");
  requireLength(label, s.targets, rows, "targets");
  requireLength(label, s.rowLoss, rows, "rowLoss");
  requireLength(label, s.stats, STATS_LENGTH, "stats");
  const shape = { rows, V, ld };

  const bc = bindOperands(gpu, label, [
    { name: "targets", tensor: s.targets, type: "i32" },
    { name: "stats", tensor: s.stats, write: true },
  ]);
  const bs = bindOperands(gpu, label, [
    { name: "row_loss", tensor: s.rowLoss },
    { name: "stats", tensor: s.stats, write: true },
  ]);
  const all = (b: BoundOperands) => ({
    logits_off: 0,
    targets_off: 0,
    row_loss_off: 0,
    stats_off: 0,
    ...offsetParams(b),
  });
  return [
    plan(gpu, {
      label: label + " count",
      code: lmCountSource(bc, gpu.features.subgroups),
      params: { ...shape, ...all(bc) },
      bindings: bc.bindings,
      workgroups: [1],
      bytes: 4 * rows,
    }),
    ...planLmRowBlocks(gpu, s),
    plan(gpu, {
      label: label + " reduce",
      code: lmReduceSource(bs, gpu.features.subgroups),
      params: { ...shape, ...all(bs) },
      bindings: bs.bindings,
      workgroups: [1],
      bytes: 4 * rows,
    }),
  ];
}

export interface ClassCrossEntropySpec {
  logits: Tensor;
  targets: Tensor;
  valid: Tensor;
  rowLoss: Tensor;
  stats: Tensor;
  B: number;
  label: string;
  aux: boolean;
}

function classSource(b: BoundOperands, subgroups: boolean): string {
  const logits = b.array.logits, targets = b.array.targets, stats = b.array.stats;
  return subgroupsEnable({ subgroups }) + /* wgsl */ `
struct Params {
  B: u32, aux: u32, alpha: f32,
  logits_off: u32, targets_off: u32, valid_off: u32, row_loss_off: u32, stats_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${STATS_WGSL}${reduce(subgroups, SUM_WG)}${WGSL_COMMON}
var<workgroup> pred0: array<f32, ${MAX_CLASS_ROWS}>;
var<workgroup> sorted: array<f32, ${MAX_CLASS_ROWS}>;

fn is_valid(r: u32) -> bool { return ${b.array.valid}[params.valid_off + r] != 0; }

// torch.lerp's formula (exact at both ends).
fn torch_lerp(a: f32, b: f32, w: f32) -> f32 {
  if (w < 0.5) { return a + w * (b - a); }
  return b - (b - a) * (1.0 - w);
}

@compute @workgroup_size(${SUM_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.x;
  let B = params.B;
  var count = 0.0;
  var weak_sum = 0.0;
  var correct = 0.0;
  for (var r = tid; r < B; r += ${SUM_WG}u) {
    let l0 = ${logits}[params.logits_off + 2u * r];
    let l1 = ${logits}[params.logits_off + 2u * r + 1u];
    let m = max(l0, l1);
    let e0 = exp(l0 - m);
    pred0[r] = e0 / (e0 + exp(l1 - m));
    if (is_valid(r)) {
      let t0 = ${targets}[params.targets_off + 2u * r];
      let t1 = ${targets}[params.targets_off + 2u * r + 1u];
      count += 1.0;
      weak_sum += t1;
      if ((l1 > l0) == (t1 > t0)) { correct += 1.0; }
    }
  }
  let n = reduce_sum(tid, count);
  let mean_weak = reduce_sum(tid, weak_sum) / max(n, 1.0);
  let n_correct = reduce_sum(tid, correct);

  var threshold = 0.0;
  if (params.aux != 0u) { // uniform: the barrier below must not depend on n (read from workgroup memory)
    // Rank of each valid row among the valid rows (ties broken by index) = its place in sorted order.
    for (var r = tid; r < B; r += ${SUM_WG}u) {
      if (is_valid(r)) {
        var rank = 0u;
        for (var j = 0u; j < B; j++) {
          if (is_valid(j) && (pred0[j] < pred0[r] || (pred0[j] == pred0[r] && j < r))) { rank++; }
        }
        sorted[rank] = pred0[r];
      }
    }
    workgroupBarrier();
    if (n > 0.0) {
      let pos = clamp(mean_weak, 0.0, 1.0) * (n - 1.0);
      let lo = floor(pos);
      let hi = min(ceil(pos), n - 1.0);
      threshold = torch_lerp(sorted[u32(lo)], sorted[u32(hi)], pos - lo);
    }
  }

  let inv_count = 1.0 / max(n, 1.0);
  let alpha = params.alpha;
  var loss_sum = 0.0;
  for (var r = tid; r < B; r += ${SUM_WG}u) {
    let i0 = params.logits_off + 2u * r;
    var g0 = 0.0;
    var g1 = 0.0;
    var row_loss = 0.0;
    if (is_valid(r)) {
      let l0 = ${logits}[i0];
      let l1 = ${logits}[i0 + 1u];
      var t0 = ${targets}[params.targets_off + 2u * r];
      var t1 = ${targets}[params.targets_off + 2u * r + 1u];
      if (params.aux != 0u) {
        var hard0 = 0.0;
        if (pred0[r] >= threshold) { hard0 = 1.0; }
        t0 = (1.0 - alpha) * t0 + alpha * hard0;
        t1 = (1.0 - alpha) * t1 + alpha * (1.0 - hard0);
      }
      let m = max(l0, l1);
      let e0 = exp(l0 - m);
      let e1 = exp(l1 - m);
      let lse = m + log(e0 + e1);
      row_loss = -(t0 * (l0 - lse) + t1 * (l1 - lse));
      let mass = t0 + t1;
      g0 = (e0 / (e0 + e1) * mass - t0) * inv_count;
      g1 = (e1 / (e0 + e1) * mass - t1) * inv_count;
    }
    ${logits}[i0] = g0;
    ${logits}[i0 + 1u] = g1;
    ${b.array.row_loss}[params.row_loss_off + r] = row_loss;
    loss_sum += row_loss;
  }
  let total = reduce_sum(tid, loss_sum);
  if (tid == 0u) {
    let loss = total * inv_count;
    ${stats}[params.stats_off + STAT_LOSS] = loss;
    ${stats}[params.stats_off + STAT_COUNT] = n;
    ${stats}[params.stats_off + STAT_CORRECT] = n_correct;
    if (is_nonfinite(loss)) { ${stats}[params.stats_off + STAT_NONFINITE] = 1.0; }
  }
}
`;
}

/** Returns one dispatch (as a list); logits are overwritten with dlogits. Set `alpha` with setParams. */
export function planClassCrossEntropy(gpu: Gpu, s: ClassCrossEntropySpec): Dispatch[] {
  const { B, label } = s;
  requireShape(label, "B", B);
  if (B > MAX_CLASS_ROWS) {
    throw new Error(
      `${label}: batch B = ${B} exceeds the classification kernel's limit of ${MAX_CLASS_ROWS} rows`,
    );
  }
  requireLength(label, s.logits, 2 * B, "logits");
  requireLength(label, s.targets, 2 * B, "targets");
  requireLength(label, s.valid, B, "valid");
  requireLength(label, s.rowLoss, B, "rowLoss");
  requireLength(label, s.stats, STATS_LENGTH, "stats");
  const b = bindOperands(gpu, label, [
    { name: "logits", tensor: s.logits, write: true },
    { name: "targets", tensor: s.targets },
    { name: "valid", tensor: s.valid, type: "i32" },
    { name: "row_loss", tensor: s.rowLoss, write: true },
    { name: "stats", tensor: s.stats, write: true },
  ]);
  return [
    plan(gpu, {
      label,
      code: classSource(b, gpu.features.subgroups),
      params: { B, aux: s.aux ? 1 : 0, alpha: 0, ...offsetParams(b) },
      bindings: b.bindings,
      workgroups: [1],
      flops: 20 * B + (s.aux ? 3 * B * B : 0),
      bytes: 4 * 7 * B,
    }),
  ];
}
