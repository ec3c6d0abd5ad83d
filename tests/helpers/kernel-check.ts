/**
 * What the kernel-family tests share: seeded inputs (mulberry32 of kernels/random.ts), tensors placed
 * at unaligned offsets inside larger buffers, a checked submit, and comparisons with a float64
 * reference. assertClose keeps the worst error per kernel; a test file that used it prints that report
 * when it unloads (after its tests, pass or fail).
 */
import assert from "node:assert/strict";
import type { Gpu } from "../../kernels/device.ts";
import { mulberry32 } from "../../kernels/random.ts";
import {
  checked,
  createTensor,
  type Dispatch,
  slice,
  submit,
  type Tensor,
  writeTensor,
} from "../../kernels/runtime.ts";

/** Deterministic pseudo-random numbers in [-scale, scale). */
export function randoms(n: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

/** A tensor at an unaligned offset inside a larger buffer, so kernels must honour `base`. */
export function placed(gpu: Gpu, data: Float32Array | Int32Array, label: string, pad = 37): Tensor {
  const whole = createTensor(gpu, pad + data.length + 5, label + " buffer");
  const t = slice(whole, pad, data.length, label);
  writeTensor(gpu, t, data);
  return t;
}

/** Submits and waits, failing on any WebGPU validation error. */
export async function run(gpu: Gpu, dispatches: Dispatch | Dispatch[]): Promise<void> {
  await checked(gpu, () => submit(gpu, Array.isArray(dispatches) ? dispatches : [dispatches]));
}

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

/** Worst errors per kernel over all shapes, printed at unload. */
const errorLog = new Map<string, { maxAbs: number; maxRel: number }>();

function reportAtUnload(): void {
  globalThis.addEventListener("unload", () => {
    const lines = [...errorLog].map(([k, e]) =>
      `${k.padEnd(48)} max abs ${e.maxAbs.toExponential(2)}  max rel ${e.maxRel.toExponential(2)}`
    );
    console.log(lines.join("\n"));
  });
}

/** Asserts |got − want| ≤ atol + rtol·|want| everywhere; the message reports max abs and rel error. */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  what: string,
  atol = 1e-5,
  rtol = 1e-4,
): { maxAbs: number; maxRel: number } {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  let maxAbs = 0, maxRel = 0, worst = -1, worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= atol + rtol * Math.abs(want[i]))) {
      const excess = Number.isNaN(err) ? Infinity : err - atol - rtol * Math.abs(want[i]);
      if (worst < 0 || excess > worstExcess) [worst, worstExcess] = [i, excess];
    }
    if (Number.isNaN(err)) maxAbs = NaN;
    else maxAbs = Math.max(maxAbs, err);
    maxRel = Math.max(maxRel, err / Math.max(Math.abs(want[i]), 1e-12));
  }
  const summary = `${what}: max abs err ${maxAbs.toExponential(2)}, max rel err ${maxRel.toExponential(2)}`;
  assert.ok(worst < 0, `${summary}; worst at [${worst}]: got ${got[worst]}, want ${want[worst]}`);
  // The report keeps the worst error per kernel over all shapes.
  const kernel = what.replace(/ [A-Za-z]+=[\d.e+-]+/g, "");
  const prev = errorLog.get(kernel) ?? { maxAbs: 0, maxRel: 0 };
  if (errorLog.size === 0) reportAtUnload();
  errorLog.set(kernel, { maxAbs: Math.max(prev.maxAbs, maxAbs), maxRel: Math.max(prev.maxRel, maxRel) });
  return { maxAbs, maxRel };
}

export function assertBitIdentical(a: Float32Array, b: Float32Array, what: string): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    assert.equal(ua[i], ub[i], `${what}: run 1 and run 2 differ at [${i}]: ${a[i]} vs ${b[i]}`);
  }
}
