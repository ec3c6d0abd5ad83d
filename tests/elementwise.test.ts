/**
 * The elementwise kernels (kernels/ops/elementwise.ts: fill, add, GELU forward and backward) against
 * float64 formulas on odd sizes, tensors at unaligned offsets. Runs on whatever adapter getGpu() finds.
 */
import { getGpu } from "../kernels/device.ts";
import { createTensor, readTensor, slice, writeTensor } from "../kernels/runtime.ts";
import { planAdd, planFill, planGeluBackward, planGeluForward } from "../kernels/ops/elementwise.ts";
import { assertClose, placed, randoms, run, toF64 } from "./helpers/kernel-check.ts";

const SHAPES = [1, 7, 33, 130, 132];

function geluRef(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

function geluGradRef(x: number): number {
  const s = Math.sqrt(2 / Math.PI);
  const t = Math.tanh(s * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * s * (1 + 3 * 0.044715 * x * x);
}

Deno.test("fill, add (separate and in place), gelu forward/backward on odd sizes", async () => {
  const gpu = await getGpu();
  for (const n of SHAPES) {
    const a = randoms(n, n, 3);
    const b = randoms(n, n + 100, 3);
    // Extreme inputs check the tanh clamp (no NaN) at the largest size.
    if (n === 130) a.set([60, -60, 1e4, -1e4, 0], 0);

    // Unaligned (one element at a time) and 4-aligned (vec4 where n is a multiple of 4), neighbours untouched.
    for (const pad of [37, 40]) {
      const whole = createTensor(gpu, pad + n + 5, "fill buffer");
      writeTensor(gpu, whole, randoms(pad + n + 5, 1));
      const before = await readTensor(gpu, whole);
      await run(gpu, planFill(gpu, slice(whole, pad, n, "fill"), 2.5, "fill"));
      const want = toF64(before).fill(2.5, pad, pad + n);
      assertClose(await readTensor(gpu, whole), want, `fill n=${n} at ${pad}`, 0, 0);
    }

    const ta = placed(gpu, a, "a"), tb = placed(gpu, b, "b"), out = placed(gpu, new Float32Array(n), "out");
    await run(gpu, planAdd(gpu, out, ta, tb, n, "add"));
    const sum = toF64(a).map((x, i) => x + b[i]);
    assertClose(await readTensor(gpu, out), sum, `add n=${n}`, 1e-6, 1e-6);
    // In place: out is a.
    await run(gpu, planAdd(gpu, ta, ta, tb, n, "add in place"));
    assertClose(await readTensor(gpu, ta), sum, `add in place n=${n}`, 1e-6, 1e-6);
    // Out and a in one buffer at different offsets (one read_write binding, two offsets).
    const shared = createTensor(gpu, 3 * n + 11, "shared");
    const sa = slice(shared, 3, n, "sa"), sout = slice(shared, n + 9, n, "sout");
    writeTensor(gpu, sa, a);
    await run(gpu, planAdd(gpu, sout, sa, tb, n, "add shared buffer"));
    assertClose(await readTensor(gpu, sout), sum, `add shared buffer n=${n}`, 1e-6, 1e-6);

    const x = placed(gpu, a, "x"), y = placed(gpu, new Float32Array(n), "y");
    await run(gpu, planGeluForward(gpu, x, y, n, "gelu"));
    assertClose(await readTensor(gpu, y), toF64(a).map(geluRef), `gelu forward n=${n}`, 1e-5, 1e-4);
    const dy = placed(gpu, b, "dy"), dx = placed(gpu, randoms(n, 9), "dx");
    await run(gpu, planGeluBackward(gpu, x, dy, dx, n, "gelu backward"));
    const want = toF64(a).map((v, i) => b[i] * geluGradRef(v));
    assertClose(await readTensor(gpu, dx), want, `gelu backward n=${n}`, 1e-5, 1e-4);
  }
});
