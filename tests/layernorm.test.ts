/**
 * LayerNorm (kernels/ops/layernorm.ts): forward (plain and with the fused residual add, both row
 * versions) and backward against float64 references on odd shapes; column sums bit-identical on reruns.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { readTensor } from "../kernels/runtime.ts";
import { planFill } from "../kernels/ops/elementwise.ts";
import { planLayernormBackward, planLayernormForward } from "../kernels/ops/layernorm.ts";
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
