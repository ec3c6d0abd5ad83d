/**
 * LayerNorm (kernels/ops/layernorm.ts): forward (plain and with the fused residual add, both row
 * versions) and backward against float64 references on odd shapes; column sums bit-identical on reruns.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { readTensor, writeTensor } from "../kernels/runtime.ts";
import { planFill } from "../kernels/ops/elementwise.ts";
import {
  type LayernormVersion,
  planLayernormBackward,
  planLayernormForward,
} from "../kernels/ops/layernorm.ts";
import { assertBitIdentical, assertClose, placed, randoms, run, toF64 } from "./helpers/kernel-check.ts";

function layernormRef(x: Float32Array, gamma: Float32Array, beta: Float32Array, N: number, C: number) {
  const y = new Float64Array(N * C), mean = new Float64Array(N), rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[n * C + c];
    const m = s / C;
    let q = 0;
    for (let c = 0; c < C; c++) q += (x[n * C + c] - m) ** 2;
    const r = 1 / Math.sqrt(q / C + 1e-5);
    for (let c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - m) * r * gamma[c] + beta[c];
    mean[n] = m;
    rstd[n] = r;
  }
  return { y, mean, rstd };
}

/** dx, dgamma, dbeta of y = layernorm(x) for upstream dy, from the definition (float64). */
function layernormBackwardRef(dy: Float32Array, x: Float32Array, gamma: Float32Array, N: number, C: number) {
  const { mean, rstd } = layernormRef(x, gamma, new Float32Array(C), N, C);
  const dx = new Float64Array(N * C), dgamma = new Float64Array(C), dbeta = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    let sg = 0, sgx = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (x[n * C + c] - mean[n]) * rstd[n];
      const g = dy[n * C + c] * gamma[c];
      sg += g;
      sgx += g * xhat;
      dgamma[c] += dy[n * C + c] * xhat;
      dbeta[c] += dy[n * C + c];
    }
    for (let c = 0; c < C; c++) {
      const xhat = (x[n * C + c] - mean[n]) * rstd[n];
      dx[n * C + c] = rstd[n] * (dy[n * C + c] * gamma[c] - sg / C - xhat * sgx / C);
    }
  }
  return { dx, dgamma, dbeta };
}

Deno.test("layernorm forward and backward on odd shapes; column sums deterministic", async () => {
  const gpu = await getGpu();
  for (const [N, C] of [[1, 1], [7, 33], [33, 7], [130, 130], [3, 300]]) {
    const x = randoms(N * C, N + C);
    for (let i = 0; i < x.length; i++) x[i] += 0.7 * ((i % C) / C); // a non-zero row mean
    const gOff = 5, bOff = 5 + C + 3;
    const flat = randoms(bOff + C + 4, 3 * C);
    const gamma = flat.slice(gOff, gOff + C), beta = flat.slice(bOff, bOff + C);
    const params = placed(gpu, flat, "params");
    const xT = placed(gpu, x, "x"), yT = placed(gpu, new Float32Array(N * C), "y");
    const meanT = placed(gpu, new Float32Array(N), "mean"), rstdT = placed(gpu, new Float32Array(N), "rstd");
    await run(
      gpu,
      planLayernormForward(gpu, {
        x: xT,
        params,
        gammaOffset: gOff,
        betaOffset: bOff,
        y: yT,
        mean: meanT,
        rstd: rstdT,
        N,
        C,
        label: "ln",
      }),
    );
    const ref = layernormRef(x, gamma, beta, N, C);
    const shape = `N=${N} C=${C}`;
    assertClose(await readTensor(gpu, yT), ref.y, `layernorm forward y ${shape}`, 1e-5, 1e-4);
    assertClose(await readTensor(gpu, meanT), ref.mean, `layernorm forward mean ${shape}`, 1e-6, 1e-5);
    assertClose(await readTensor(gpu, rstdT), ref.rstd, `layernorm forward rstd ${shape}`, 1e-5, 1e-4);

    // Fused residual: x = stream + branch is written (the f32 sum, exactly) and normalized.
    const stream = randoms(N * C, 2 * N + C), branch = x.map((v, i) => v - stream[i]);
    const sum = stream.map((v, i) => Math.fround(v + branch[i]));
    for (const version of ["v1", "v2"] as const) {
      const xOut = placed(gpu, new Float32Array(N * C), "x out");
      const yFused = placed(gpu, new Float32Array(N * C), "y fused");
      await run(
        gpu,
        planLayernormForward(gpu, {
          x: xOut,
          residual: { stream: placed(gpu, stream, "stream"), branch: placed(gpu, branch, "branch") },
          params,
          gammaOffset: gOff,
          betaOffset: bOff,
          // Its own outputs: the backward below needs the plain run's mean and rstd.
          y: yFused,
          mean: placed(gpu, new Float32Array(N), "mean fused"),
          rstd: placed(gpu, new Float32Array(N), "rstd fused"),
          N,
          C,
          label: "ln fused",
          version,
        }),
      );
      assert.deepEqual(
        await readTensor(gpu, xOut),
        sum,
        `fused residual x = stream + branch ${version} ${shape}`,
      );
      const fusedRef = layernormRef(sum, gamma, beta, N, C);
      assertClose(
        await readTensor(gpu, yFused),
        fusedRef.y,
        `fused layernorm y ${version} ${shape}`,
        1e-5,
        1e-4,
      );
    }

    const dy = randoms(N * C, 11 * N);
    const dxInit = randoms(N * C, 12);
    const gradsInit = randoms(2 * C + 20, 13);
    const dgOff = 2, dbOff = C + 9;
    const back = layernormBackwardRef(dy, x, gamma, N, C);
    for (const accumulateDx of [false, true]) {
      const dyT = placed(gpu, dy, "dy"),
        dxT = placed(gpu, dxInit, "dx"),
        grads = placed(gpu, gradsInit, "grads");
      const dispatches = planLayernormBackward(gpu, {
        dy: dyT,
        x: xT,
        mean: meanT,
        rstd: rstdT,
        params,
        gammaOffset: gOff,
        dx: dxT,
        accumulateDx,
        grads,
        dgammaOffset: dgOff,
        dbetaOffset: dbOff,
        N,
        C,
        label: "ln backward",
      });
      await run(gpu, dispatches);
      const wantDx = back.dx.map((d, i) => accumulateDx ? d + dxInit[i] : d);
      // dx cancels large terms (g − mean(g) − xhat·mean(g·xhat)): compare on the scale of rstd·|g|.
      assertClose(
        await readTensor(gpu, dxT),
        wantDx,
        `layernorm backward dx acc=${accumulateDx} ${shape}`,
        2e-5,
        1e-4,
      );
      const wantGrads = toF64(gradsInit);
      for (let c = 0; c < C; c++) {
        wantGrads[dgOff + c] += back.dgamma[c];
        wantGrads[dbOff + c] += back.dbeta[c];
      }
      const got = await readTensor(gpu, grads);
      assertClose(got, wantGrads, `layernorm backward dgamma/dbeta ${shape}`, 1e-5, 1e-4);
      if (accumulateDx) {
        await run(gpu, planFill(gpu, grads, 0, "zero"));
        await run(gpu, dispatches);
        const first = await readTensor(gpu, grads);
        await run(gpu, planFill(gpu, grads, 0, "zero"));
        await run(gpu, dispatches);
        assertBitIdentical(first, await readTensor(gpu, grads), `layernorm dgamma/dbeta ${shape}`);
      }
    }
  }
});

/** Forward (plain and fused), dx (plain and accumulated) and the column sums of one version, on aligned tensors. */
async function runVersion(version: LayernormVersion, N: number, C: number, fused = true) {
  const gpu = await getGpu();
  const at = (data: Float32Array, label: string) => placed(gpu, data, label, 40);
  const x = randoms(N * C, N + C);
  for (let i = 0; i < x.length; i++) x[i] += 0.7 * ((i % C) / C);
  const gOff = 8, bOff = 8 + C + 4;
  const flat = randoms(bOff + C + 4, 3 * C);
  const params = at(flat, "params");
  const stream = randoms(N * C, 2 * N + C), branch = x.map((v, i) => v - stream[i]);
  const xOut = at(new Float32Array(N * C), "x out"), y = at(new Float32Array(N * C), "y");
  const mean = at(new Float32Array(N), "mean"), rstd = at(new Float32Array(N), "rstd");
  // Unfused, x is the input: the values the fused kernel writes.
  if (!fused) writeTensor(gpu, xOut, x.map((_, i) => Math.fround(stream[i] + branch[i])));
  const forward = planLayernormForward(gpu, {
    x: xOut,
    residual: fused ? { stream: at(stream, "stream"), branch: at(branch, "branch") } : undefined,
    params,
    gammaOffset: gOff,
    betaOffset: bOff,
    y,
    mean,
    rstd,
    N,
    C,
    label: "ln",
    version,
  });
  await run(gpu, forward);
  const dy = randoms(N * C, 11 * N), dxInit = randoms(N * C, 12), gradsInit = randoms(2 * C + 24, 13);
  const dx = at(dxInit, "dx"), grads = at(gradsInit, "grads");
  const back = (accumulateDx: boolean) =>
    planLayernormBackward(gpu, {
      dy: at(dy, "dy"),
      x: xOut,
      mean,
      rstd,
      params,
      gammaOffset: gOff,
      dx,
      accumulateDx,
      grads,
      dgammaOffset: 4,
      dbetaOffset: C + 8,
      N,
      C,
      label: "ln backward",
      version,
    });
  await run(gpu, back(false));
  const dxPlain = await readTensor(gpu, dx);
  await run(gpu, back(true));
  // Which steps are copies: v4 packs its texture operands first.
  const copies = [forward, back(false)].map((steps) => steps.map((d) => "copy" in d));
  return {
    copies,
    x: await readTensor(gpu, xOut),
    y: await readTensor(gpu, y),
    mean: await readTensor(gpu, mean),
    rstd: await readTensor(gpu, rstd),
    dxPlain,
    dxAcc: await readTensor(gpu, dx),
    grads: await readTensor(gpu, grads),
    inputs: {
      x: Float32Array.from(x.map((_, i) => Math.fround(stream[i] + branch[i]))),
      flat,
      dy,
      gradsInit,
    },
    offsets: { gOff, bOff },
  };
}

Deno.test("layernorm v3 (vec4 rows) against float64, and bit for bit v2's on this adapter", async () => {
  for (const [N, C] of [[1, 4], [7, 36], [65, 128], [3, 300]]) {
    const shape = `N=${N} C=${C}`;
    const got = await runVersion("v3", N, C);
    const { x, flat, dy, gradsInit } = got.inputs;
    const gamma = flat.slice(got.offsets.gOff, got.offsets.gOff + C);
    const beta = flat.slice(got.offsets.bOff, got.offsets.bOff + C);
    const ref = layernormRef(x, gamma, beta, N, C);
    assert.deepEqual(got.x, x, `v3 fused residual x ${shape}`);
    assertClose(got.y, ref.y, `v3 y ${shape}`, 1e-5, 1e-4);
    assertClose(got.mean, ref.mean, `v3 mean ${shape}`, 1e-6, 1e-5);
    assertClose(got.rstd, ref.rstd, `v3 rstd ${shape}`, 1e-5, 1e-4);
    const b = layernormBackwardRef(dy, x, gamma, N, C);
    assertClose(got.dxPlain, b.dx, `v3 dx ${shape}`, 2e-5, 1e-4);
    assertClose(got.dxAcc, b.dx.map((d, i) => d + got.dxPlain[i]), `v3 dx accumulated ${shape}`, 4e-5, 1e-4);
    // The column sums ran twice (both backward passes added to the grads).
    const wantGrads = toF64(gradsInit);
    for (let c = 0; c < C; c++) {
      wantGrads[4 + c] += 2 * b.dgamma[c];
      wantGrads[C + 8 + c] += 2 * b.dbeta[c];
    }
    assertClose(got.grads, wantGrads, `v3 dgamma/dbeta ${shape}`, 1e-5, 1e-4);
    // v3 adds each vec4's lanes in v2's order, so the pretraining ladder keeps its bits.
    const v2 = await runVersion("v2", N, C);
    for (const key of ["y", "mean", "rstd", "dxPlain", "dxAcc", "grads"] as const) {
      assertBitIdentical(got[key], v2[key], `v3 ${key} against v2 ${shape}`);
    }
  }
});

Deno.test("layernorm v4 (texture operands) gives v3's bits and float64's values, fused or not, copied or packed", async () => {
  for (const [N, C] of [[7, 36], [65, 128]]) {
    for (const fused of [true, false]) {
      const shape = `N=${N} C=${C}${fused ? " fused" : ""}`;
      const got = await runVersion("v4", N, C, fused);
      const { x, flat } = got.inputs;
      const ref = layernormRef(
        x,
        flat.slice(got.offsets.gOff, got.offsets.gOff + C),
        flat.slice(got.offsets.bOff),
        N,
        C,
      );
      assertClose(got.y, ref.y, `v4 y ${shape}`, 1e-5, 1e-4);
      const v3 = await runVersion("v3", N, C, fused);
      for (const key of ["x", "y", "mean", "rstd", "dxPlain", "dxAcc", "grads"] as const) {
        assertBitIdentical(got[key], v3[key], `v4 ${key} against v3 ${shape}`);
      }
      // Packs first (stream and branch fused, else x; dy and x backward), copies where rows are 256 bytes apart.
      const copy = C % 64 === 0;
      assert.deepEqual(got.copies, [
        [...(fused ? [copy, copy] : [copy]), false],
        [copy, copy, false, false],
      ], `v4 steps ${shape}`);
      assert.deepEqual(v3.copies, [[false], [false, false]], `v3 steps ${shape}`);
    }
  }
});

Deno.test("layernorm v3 or v4 asked for where a row or offset is not 4-aligned is refused with the reason", async () => {
  const gpu = await getGpu();
  const t = (n: number, label: string, pad = 40) => placed(gpu, new Float32Array(n), label, pad);
  const spec = (C: number, x = t(2 * C, "x")) => ({
    x,
    params: t(2 * C + 8, "params"),
    gammaOffset: 0,
    betaOffset: C,
    y: t(2 * C, "y"),
    mean: t(2, "mean"),
    rstd: t(2, "rstd"),
    N: 2,
    C,
    label: "ln",
    version: "v3" as const,
  });
  assert.throws(() => planLayernormForward(gpu, spec(6)), /layernorm v3 \(vec4\) does not apply: C = 6/);
  assert.throws(
    () => planLayernormForward(gpu, { ...spec(6), version: "v4" }),
    /layernorm v4 \(texture operands\) does not apply: C = 6 is not a multiple of 4/,
  );
  assert.throws(
    () => planLayernormForward(gpu, spec(8, t(16, "x", 37))),
    /layernorm v3 \(vec4\) does not apply: x starts at element 37, not a multiple of 4/,
  );
  // Unasked, the unaligned x falls back to v2 and runs.
  await run(gpu, planLayernormForward(gpu, { ...spec(8, t(16, "x", 37)), version: undefined }));
});
