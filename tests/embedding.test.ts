/**
 * The embedding kernels (kernels/ops/embedding.ts): the CPU-side grouping of positions by token, the
 * forward against a float64 gather, the deterministic backward (accumulate and overwrite), on odd shapes.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { readTensor, slice } from "../kernels/runtime.ts";
import {
  groupPositionsByToken,
  planEmbeddingBackward,
  planEmbeddingForward,
} from "../kernels/ops/embedding.ts";
import { assertClose, placed, randoms, run, toF64 } from "./helpers/kernel-check.ts";

Deno.test("groupPositionsByToken groups positions by ascending token id with padding", () => {
  const g = groupPositionsByToken(Int32Array.from([5, 2, 5, 0, 2, 5]), 4);
  assert.deepEqual([...g.unique], [0, 2, 5, -1]);
  assert.deepEqual([...g.starts], [0, 1, 3, 6, 6]);
  assert.deepEqual([...g.positions], [3, 1, 4, 0, 2, 5]);
  assert.throws(() => groupPositionsByToken(Int32Array.from([1, 2, 3]), 2), /maxUnique/);
  assert.throws(() => groupPositionsByToken(Int32Array.from([1, -2]), 2), /position 1/);
});

Deno.test("embedding forward and deterministic backward (accumulate and overwrite) on odd shapes", async () => {
  const gpu = await getGpu();
  for (const [B, T, C, V] of [[1, 1, 1, 1], [3, 5, 7, 11], [2, 33, 9, 4], [4, 3, 130, 50]]) {
    const N = B * T;
    const tokens = Int32Array.from({ length: N }, (_, i) => (i * 7 + (i >> 1) * 3) % V);
    // wte and wpe inside one flat "params" buffer; dwte and dwpe inside one flat "grads" buffer.
    const wteOff = 3, wpeOff = wteOff + V * C + 5;
    const flat = randoms(wpeOff + T * C + 2, B * 1000 + C);
    const params = placed(gpu, flat, "params", 0);
    const wte = slice(params, wteOff, V * C, "wte"), wpe = slice(params, wpeOff, T * C, "wpe");
    const tokT = placed(gpu, tokens, "tokens");
    const out = placed(gpu, new Float32Array(N * C), "out");
    await run(gpu, planEmbeddingForward(gpu, { tokens: tokT, wte, wpe, out, B, T, C, label: "emb" }));
    const want = new Float64Array(N * C);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        want[n * C + c] = flat[wteOff + tokens[n] * C + c] + flat[wpeOff + (n % T) * C + c];
      }
    }
    assertClose(await readTensor(gpu, out), want, `embedding forward B=${B} T=${T} C=${C}`, 1e-6, 1e-6);

    const dx = randoms(N * C, 77 + C);
    const maxUnique = Math.min(V, N);
    const groups = groupPositionsByToken(tokens, maxUnique);
    const dxT = placed(gpu, dx, "dx");
    const uniqueT = placed(gpu, groups.unique, "unique");
    const startsT = placed(gpu, groups.starts, "starts");
    const positionsT = placed(gpu, groups.positions, "positions");
    const gradsInit = randoms(flat.length, 5);
    for (const accumulate of [true, false]) {
      const grads = placed(gpu, gradsInit, "grads");
      const dispatches = planEmbeddingBackward(gpu, {
        dx: dxT,
        unique: uniqueT,
        starts: startsT,
        positions: positionsT,
        dwte: slice(grads, wteOff, V * C, "dwte"),
        dwpe: slice(grads, wpeOff, T * C, "dwpe"),
        B,
        T,
        C,
        maxUnique,
        accumulate,
        label: "emb backward",
      });
      await run(gpu, dispatches);
      const ref = toF64(gradsInit);
      const present = new Set(tokens);
      for (const v of present) for (let c = 0; c < C; c++) if (!accumulate) ref[wteOff + v * C + c] = 0;
      for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) if (!accumulate) ref[wpeOff + t * C + c] = 0;
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          ref[wteOff + tokens[n] * C + c] += dx[n * C + c];
          ref[wpeOff + (n % T) * C + c] += dx[n * C + c];
        }
      }
      const got = await readTensor(gpu, grads);
      assertClose(got, ref, `embedding backward accumulate=${accumulate} B=${B} T=${T} C=${C}`, 1e-5, 1e-5);
      if (accumulate) {
        await run(gpu, dispatches.map((d) => d)); // second accumulation must equal 2× the sums
        const again = await readTensor(gpu, grads);
        const twice = ref.map((r, i) => r + (r - gradsInit[i]));
        assertClose(again, twice, `embedding backward twice B=${B} T=${T} C=${C}`, 1e-5, 1e-5);
      }
    }
  }
});

Deno.test("embedding forward writes NaN for an out-of-range token id instead of reading out of bounds", async () => {
  const gpu = await getGpu();
  const C = 3, V = 4;
  const wte = placed(gpu, randoms(V * C, 1), "wte"), wpe = placed(gpu, randoms(2 * C, 2), "wpe");
  const out = placed(gpu, new Float32Array(2 * C), "out");
  const tokens = placed(gpu, Int32Array.from([1, 4]), "tokens");
  await run(gpu, planEmbeddingForward(gpu, { tokens, wte, wpe, out, B: 1, T: 2, C, label: "emb bad id" }));
  const got = await readTensor(gpu, out);
  assert.ok(got.slice(0, C).every(Number.isFinite), "valid token row must be finite");
  assert.ok(got.slice(C).every(Number.isNaN), `row of id 4 ≥ V must be NaN, got ${[...got.slice(C)]}`);
});
