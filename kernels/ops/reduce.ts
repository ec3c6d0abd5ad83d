/**
 * Fixed-order tree reductions over one workgroup, as WGSL source for the kernel families that need
 * them (layernorm v1, cross-entropy, gradient norm). Deterministic: the same inputs always combine in
 * the same order. Every invocation of the workgroup must call them (uniform control flow).
 */

/** WGSL declaring `red` and one function per requested reduction, named as the caller wants. */
export function workgroupReduce(size: number, names: { sum?: string; max?: string }): string {
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
