/**
 * The bias gradient (kernels/ops/bias-grad.ts): db += Σ_rows dy against a float64 reference, v2 (vec4
 * column sums) and v3 (v2 reading dy from a texture) bit for bit v1's (the matmul with a ones vector) so
 * the ladder keeps its bits, and the version choice: v2 or v3 asked for on unaligned operands is refused
 * with the reason, unasked it falls back; unasked with texture operands preferred it is v3.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { readTensor } from "../kernels/runtime.ts";
import { type BiasGradVersion, planBiasGrad } from "../kernels/ops/bias-grad.ts";
import { kernelOperands, setKernelOperands } from "../kernels/ops/texture-operand.ts";
import { assertBitIdentical, assertClose, placed, randoms, run, toF64 } from "./helpers/kernel-check.ts";

async function biasGrad(version: BiasGradVersion | undefined, rows: number, width: number, pads = [40, 44]) {
  const gpu = await getGpu();
  const dyData = randoms(rows * width, rows + width);
  const before = randoms(width, 7 * width);
  const dy = placed(gpu, dyData, "dy", pads[0]);
  const db = placed(gpu, before, "db", pads[1]);
  const ones = placed(gpu, new Float32Array(rows).fill(1), "ones");
  const steps = planBiasGrad(gpu, { label: "db", dy, db, rows, width, ones, version });
  await run(gpu, [...steps, ...steps]); // accumulates twice, as two micro-batches do
  const launch = steps.at(-1)!;
  return {
    got: await readTensor(gpu, db),
    dyData,
    before,
    steps,
    workgroups: "copy" in launch ? [] : launch.workgroups,
  };
}

Deno.test("bias gradient v1, v2 and v3 against float64, v2 and v3 bit for bit v1's", async () => {
  for (const [rows, width] of [[1, 4], [5, 12], [130, 64], [512, 132], [3, 200]]) {
    const shape = `rows=${rows} width=${width}`;
    const v2 = await biasGrad("v2", rows, width);
    const want = toF64(v2.before);
    for (let n = 0; n < rows; n++) for (let c = 0; c < width; c++) want[c] += 2 * v2.dyData[n * width + c];
    assertClose(v2.got, want, `v2 ${shape}`, 1e-5, 1e-4);
    const v1 = await biasGrad("v1", rows, width);
    assertClose(v1.got, want, `v1 ${shape}`, 1e-5, 1e-4);
    // v2 adds the rows in v1's order and db last, so every model keeps its bits.
    assertBitIdentical(v2.got, v1.got, `v2 against v1 ${shape}`);
    // Eight invocations of sixteen columns a workgroup: a width of 132 needs two workgroups.
    assert.equal(v2.workgroups[0], Math.ceil(width / 128), `v2 workgroups ${shape}`);
    const v3 = await biasGrad("v3", rows, width);
    assertBitIdentical(v3.got, v1.got, `v3 against v1 ${shape}`);
    // dy packed first: by a copy where its rows lie 256 bytes apart (width 64), else by a launch.
    assert.deepEqual(v3.steps.map((d) => "copy" in d), [width % 64 === 0, false], `v3 steps ${shape}`);
  }
});

Deno.test("bias gradient v3 is the default with texture operands, and refused on unaligned operands", async () => {
  const before = kernelOperands();
  try {
    setKernelOperands("textures");
    assert.equal((await biasGrad(undefined, 5, 12)).steps.length, 2, "v3 (pack and launch) unasked");
    assert.equal((await biasGrad(undefined, 5, 6)).steps.length, 1, "width 6: v1 unasked");
    setKernelOperands("buffers");
    assert.equal((await biasGrad(undefined, 5, 12)).steps.length, 1, "v2 unasked on buffers");
  } finally {
    setKernelOperands(before);
  }
  await assert.rejects(
    () => biasGrad("v3", 3, 6),
    /bias gradient v3 \(texture operand\) does not apply: width 6/,
  );
  await assert.rejects(
    () => biasGrad("v3", 3, 8, [37, 44]),
    /bias gradient v3 \(texture operand\) does not apply: dy starts at element 37, not a multiple of 4/,
  );
});

Deno.test("bias gradient v2 where a width or offset is not 4-aligned: refused when asked for, else v1", async () => {
  await assert.rejects(() => biasGrad("v2", 3, 6), /bias gradient v2 \(vec4\) does not apply: width 6/);
  await assert.rejects(
    () => biasGrad("v2", 3, 8, [37, 44]),
    /bias gradient v2 \(vec4\) does not apply: dy starts at element 37, not a multiple of 4/,
  );
  for (const [width, pads] of [[6, [40, 44]], [8, [37, 41]]] as const) {
    const r = await biasGrad(undefined, 3, width, [...pads]);
    const want = toF64(r.before);
    for (let n = 0; n < 3; n++) for (let c = 0; c < width; c++) want[c] += 2 * r.dyData[n * width + c];
    assertClose(r.got, want, `unasked, width ${width}`, 1e-5, 1e-4);
  }
});
