/**
 * The benchmark's fma ceiling (kernels/bench/ceiling.ts) does the work its GFLOP/s counts: every
 * invocation's result equals the float64 recurrence a ← a · s + t run iterations × unroll times on each
 * chain (one round fewer moves it by ~0.1 %), and the launch's flop count is the hand-computed one.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { createTensor, readTensor } from "../kernels/runtime.ts";
import { CEILING_CHAINS, CEILING_UNROLL, CEILING_WG, planCeiling } from "../kernels/bench/ceiling.ts";
import { assertClose, run } from "./helpers/kernel-check.ts";

Deno.test("fma ceiling: each invocation's sum of chains matches the float64 recurrence", async () => {
  const gpu = await getGpu();
  const groups = 2, iterations = 20;
  const out = createTensor(gpu, 4 * CEILING_WG * groups, "ceiling out");
  const d = planCeiling(gpu, { out, groups, iterations });
  // 2 flops × 4 lanes × 4 chains × 8 unrolled × 20 iterations × 64 invocations × 2 groups.
  assert.equal(d.flops, 655_360);
  await run(gpu, d);
  const got = await readTensor(gpu, out);
  const want = new Float64Array(got.length);
  const f = Math.fround;
  for (let g = 0; g < CEILING_WG * groups; g++) {
    // The WGSL's f32 constants: s = f32(g) · 1e-9 + 0.999, t = 1e-7.
    const s = f(f(g * f(1e-9)) + f(0.999)), t = f(1e-7);
    let sum = 0;
    for (let chain = 0; chain < CEILING_CHAINS; chain++) {
      let a = g + chain;
      for (let step = 0; step < iterations * CEILING_UNROLL; step++) a = a * s + t;
      sum += a;
    }
    want.fill(sum, 4 * g, 4 * g + 4);
  }
  assertClose(got, want, "ceiling sums", 1e-6, 1e-5);
  out.buffer.destroy();
});
