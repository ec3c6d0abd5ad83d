/**
 * The adapter's arithmetic ceiling for WGSL: vec4 fused multiply-adds on values that stay in registers,
 * no memory traffic inside the loop. Every invocation runs `iterations` rounds of CEILING_UNROLL ×
 * CEILING_CHAINS independent recurrences a ← a · s + t (vec4 each), then stores their sum once. It is what a kernel's
 * GFLOP/s can be compared with on this adapter: on llvmpipe it is what LLVM makes of WGSL `fma` (a
 * multiply and an add, 8 lanes per instruction), not the CPU's datasheet peak, and no kernel that also
 * loads its operands can reach it.
 *
 * Buffers: out (N vec4s, one per invocation). Params: iterations. Dispatch: x = groups, 64 invocations.
 */
import type { Gpu } from "../device.ts";
import { bindTensor, createTensor, type Dispatch, plan, type Tensor } from "../runtime.ts";
import { CEILING_KERNEL, type KernelResult } from "./report.ts";
import type { Timer } from "./timer.ts";

export const CEILING_WG = 64;

/** Independent vec4 chains per invocation (their latency hides behind each other) and rounds unrolled. */
export const CEILING_CHAINS = 4;
export const CEILING_UNROLL = 8;

function ceilingSource(): string {
  const chains = [...Array(CEILING_CHAINS).keys()];
  const round = chains.map((i) => `a${i} = fma(a${i}, s, t);`).join(" ");
  return /* wgsl */ `
struct Params { iterations: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(${CEILING_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = vec4(f32(gid.x) * 1e-9 + 0.999);
  let t = vec4(1e-7);
  ${chains.map((i) => `var a${i} = vec4(f32(gid.x + ${i}u));`).join("\n  ")}
  for (var i = 0u; i < params.iterations; i++) {
    ${Array(CEILING_UNROLL).fill(round).join("\n    ")}
  }
  out[gid.x] = ${chains.map((i) => `a${i}`).join(" + ")};
}
`;
}

/** Floating-point operations of one launch: 2 per fma lane. */
export function ceilingFlops(groups: number, iterations: number): number {
  return 2 * 4 * CEILING_CHAINS * CEILING_UNROLL * iterations * CEILING_WG * groups;
}

/**
 * One launch of `groups` workgroups: enough on llvmpipe (a few hundred keep every thread busy) and on a
 * GPU (thousands fill its cores); `out` holds groups × 64 vec4s.
 */
export function planCeiling(gpu: Gpu, spec: { out: Tensor; groups: number; iterations: number }): Dispatch {
  if (spec.out.length < 4 * CEILING_WG * spec.groups) {
    throw new Error(`ceiling: out holds ${spec.out.length} floats, needs ${4 * CEILING_WG * spec.groups}`);
  }
  const { binding, base } = bindTensor(gpu, spec.out);
  if (base !== 0) throw new Error("ceiling: out must start its binding (a tensor of its own, not a slice)");
  return plan(gpu, {
    label: CEILING_KERNEL,
    code: ceilingSource(),
    params: { iterations: spec.iterations },
    bindings: [binding],
    workgroups: [spec.groups],
    flops: ceilingFlops(spec.groups, spec.iterations),
    family: "ceiling",
  });
}

/** The shape the benchmark times: about 0.1–0.3 s on llvmpipe, milliseconds on a GPU. */
function ceilingShape(gpu: Gpu): { groups: number; iterations: number } {
  return gpu.isSoftware ? { groups: 256, iterations: 2048 } : { groups: 16384, iterations: 4096 };
}

/** The ceiling's row of the kernel table (median of five launches after a compiling one). */
export async function measureCeiling(gpu: Gpu, timer: Timer): Promise<KernelResult> {
  const { groups, iterations } = ceilingShape(gpu);
  const out = createTensor(gpu, 4 * CEILING_WG * groups, "ceiling out");
  const d = planCeiling(gpu, { out, groups, iterations });
  await timer.wall([d], 1);
  const ms = await timer.median(d, 5);
  out.buffer.destroy();
  return {
    kernel: CEILING_KERNEL,
    version: "registers only",
    shape: `${CEILING_WG * groups} inv × ${iterations} it`,
    ms,
    gflops: d.flops / ms / 1e6,
    timer: timer.kind,
  };
}
