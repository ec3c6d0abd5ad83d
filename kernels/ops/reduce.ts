/**
 * Workgroup reductions as WGSL source for the kernel families that need them (layernorm v1,
 * cross-entropy, gradient norm). Every invocation of the workgroup must call them (uniform control
 * flow). Two variants, same function names and signatures:
 *
 * - Fallback (no `subgroups` feature): a fixed-order tree in workgroup memory, one barrier per level
 *   (log2(size) + 2 barriers).
 * - Subgroups (the device was created with the `subgroups` feature): each subgroup reduces in
 *   registers (subgroupAdd / subgroupMax), its result is stored in workgroup memory (for a sum only
 *   by the subgroup's elected invocation, the other slots 0, so each subgroup counts once however
 *   invocations map to subgroups, which WebGPU leaves open), one barrier, then every subgroup reads
 *   all `size` slots (lane k combines slots k, k + n, k + 2n… in order, n being the subgroup's size) and
 *   reduces those with one more subgroup operation. Two barriers in all. The result is the same for
 *   every run on one device; subgroups of equal size (the workgroup sizes here are multiples of
 *   every subgroup size an adapter reports) compute bit-identical totals.
 * The module must then start with `subgroupsEnable(true)`; with subgroups off both helpers return
 * exactly the fallback text and "" so the callers' WGSL is unchanged.
 */

export interface ReduceOptions {
  /** Use subgroup operations (only when the device has the `subgroups` feature). */
  subgroups?: boolean;
}

/** The directive a module using the subgroup variant must start with; "" for the fallback. */
export function subgroupsEnable(options: ReduceOptions = {}): string {
  return options.subgroups ? "enable subgroups;\n" : "";
}

/** WGSL declaring `red` and one function per requested reduction, named as the caller wants. */
export function workgroupReduce(
  size: number,
  names: { sum?: string; max?: string },
  options: ReduceOptions = {},
): string {
  if (options.subgroups) return subgroupReduce(size, names);
  const fn = (name: string, combine: string) => /* wgsl */ `
fn ${name}(tid: u32, value: f32) -> f32 {
  red[tid] = value;
  workgroupBarrier();
  for (var stride = ${size / 2}u; stride > 0u; stride = stride / 2u) {
    if (tid < stride) { red[tid] = ${combine}; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`;
  return `\nvar<workgroup> red: array<f32, ${size}>;` +
    (names.sum ? fn(names.sum, "red[tid] + red[tid + stride]") : "") +
    (names.max ? fn(names.max, "max(red[tid], red[tid + stride])") : "") + "\n";
}

function subgroupReduce(size: number, names: { sum?: string; max?: string }): string {
  // `own` is what this invocation stores for its subgroup; `op` combines within a subgroup.
  const fn = (name: string, own: string, op: string, combine: string) => /* wgsl */ `
fn ${name}(tid: u32, value: f32) -> f32 {
  red[tid] = ${own};
  workgroupBarrier();
  let lane = subgroupExclusiveAdd(1u);
  let lanes = subgroupAdd(1u);
  var part = red[lane];
  for (var i = lane + lanes; i < ${size}u; i += lanes) { part = ${combine}; }
  let total = ${op}(part);
  workgroupBarrier();
  return total;
}`;
  return `\nvar<workgroup> red: array<f32, ${size}>;` +
    (names.sum
      ? fn(names.sum, "select(0.0, subgroupAdd(value), subgroupElect())", "subgroupAdd", "part + red[i]")
      : "") +
    (names.max ? fn(names.max, "subgroupMax(value)", "subgroupMax", "max(part, red[i])") : "") + "\n";
}
