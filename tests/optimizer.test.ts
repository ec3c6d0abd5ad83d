/**
 * The optimizer kernels (kernels/ops/optimizer.ts): the two-pass gradient norm (bit-identical reruns,
 * the non-finite flag) and AdamW against a float64 torch-semantics reference over three clipped steps,
 * skipped when a gradient is non-finite.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { createTensor, readTensor, slice, writeTensor } from "../kernels/runtime.ts";
import { adamwStepParams, gradNormPartials, planAdamW, planGradNorm } from "../kernels/ops/optimizer.ts";
import { type AdamWSettings, DEFAULT_ADAMW } from "../kernels/config.ts";
import { STAT_COUNT, STAT_GRAD_NORM_SQ, STAT_LOSS, STAT_NONFINITE } from "../kernels/stats.ts";
import { assertBitIdentical, assertClose, placed, randoms, run, toF64 } from "./helpers/kernel-check.ts";

Deno.test("gradient norm: two-pass sum of squares on odd sizes, bit-identical reruns, non-finite flag", async () => {
  const gpu = await getGpu();
  for (const n of [1, 7, 33, 130, 4097, 9001]) {
    const g = randoms(n, n, 2);
    const grads = placed(gpu, g, "grads");
    const partials = placed(gpu, new Float32Array(gradNormPartials(n)), "partials");
    const stats = placed(gpu, Float32Array.from([1.5, 2, 0, 0, 0, 0, 0, 0]), "stats");
    const d = planGradNorm(gpu, { grads, n, stats, partials, label: "grad norm" });
    await run(gpu, d);
    const first = await readTensor(gpu, stats);
    const want = g.reduce((acc, x) => acc + x * x, 0);
    assertClose([first[STAT_GRAD_NORM_SQ]], [want], `grad norm² n=${n}`, 0, 1e-5);
    assert.deepEqual(
      [first[STAT_LOSS], first[STAT_COUNT], first[STAT_NONFINITE]],
      [1.5, 2, 0],
      `other stats n=${n}`,
    );
    await run(gpu, d);
    assertBitIdentical(first, await readTensor(gpu, stats), `grad norm n=${n}`);
  }
  for (const bad of [NaN, Infinity, -Infinity]) {
    const g = randoms(5000, 3);
    g[4321] = bad;
    const stats = placed(gpu, new Float32Array(8), "stats");
    const partials = placed(gpu, new Float32Array(gradNormPartials(g.length)), "partials");
    await run(
      gpu,
      planGradNorm(gpu, { grads: placed(gpu, g, "grads"), n: g.length, stats, partials, label: "gn" }),
    );
    assert.equal((await readTensor(gpu, stats))[STAT_NONFINITE], 1, `a gradient of ${bad} must set the flag`);
  }
});

Deno.test("gradient norm v2 (vec4) equals v1 bit for bit and float64, frozen ranges included; misaligned v2 is refused", async () => {
  const gpu = await getGpu();
  // v2 reduces its 64 sums with v1's fallback tree. On an adapter with subgroups (a GPU) v1 and both totals
  // reduce with those instead, so the identity is checked on plans made without them ("tree"), and each
  // version as this adapter plans it against float64.
  const treeGpu = { ...gpu, features: { ...gpu.features, subgroups: false } };
  for (
    const [n, frozen] of [[4, undefined], [132, { start: 6, end: 70 }], [4100, undefined], [9004, {
      start: 4099,
      end: 8191,
    }]] as const
  ) {
    const g = randoms(n, n + 1, 2);
    const grads = placed(gpu, g, "grads", 8);
    const totals = [];
    for (const [version, planner] of [["v1", treeGpu], ["v2", treeGpu], ["v1", gpu], ["v2", gpu]] as const) {
      const stats = placed(gpu, new Float32Array(8), "stats");
      const partials = placed(gpu, new Float32Array(gradNormPartials(n)), "partials");
      await run(gpu, planGradNorm(planner, { grads, n, stats, partials, frozen, label: "gn", version }));
      totals.push({ stats: await readTensor(gpu, stats), partials: await readTensor(gpu, partials) });
    }
    const tag = `n=${n} frozen=${frozen ? `[${frozen.start}, ${frozen.end})` : "none"}`;
    const want = g.reduce(
      (acc, x, i) => (frozen && i >= frozen.start && i < frozen.end ? acc : acc + x * x),
      0,
    );
    for (const [i, name] of ["v1 tree", "v2 tree", "v1", "v2"].entries()) {
      assertClose([totals[i].stats[STAT_GRAD_NORM_SQ]], [want], `${name} grad norm² ${tag}`, 0, 1e-5);
    }
    // v2 sums each of v1's strided subsets in v1's order and reduces them with v1's tree.
    assertBitIdentical(totals[1].partials, totals[0].partials, `v2 = v1 partials ${tag}`);
    assertBitIdentical(totals[1].stats, totals[0].stats, `v2 = v1 total ${tag}`);
  }
  for (const version of ["v1", "v2"] as const) {
    const g = randoms(5000, 3);
    g[4321] = NaN;
    const stats = placed(gpu, new Float32Array(8), "stats");
    const partials = placed(gpu, new Float32Array(gradNormPartials(g.length)), "partials");
    const grads = placed(gpu, g, "grads", 8);
    await run(gpu, planGradNorm(gpu, { grads, n: g.length, stats, partials, label: "gn", version }));
    assert.equal(
      (await readTensor(gpu, stats))[STAT_NONFINITE],
      1,
      `${version}: a NaN gradient must set the flag`,
    );
  }
  const spec = (grads: ReturnType<typeof placed>, n: number) => ({
    grads,
    n,
    stats: placed(gpu, new Float32Array(8), "stats"),
    partials: placed(gpu, new Float32Array(1), "partials"),
    label: "gn",
  });
  assert.throws(
    () => planGradNorm(gpu, { ...spec(placed(gpu, new Float32Array(8), "odd grads", 37), 8), version: "v2" }),
    /gn: gradient norm v2 \(vec4\) does not apply: odd grads starts at element 37, not a multiple of 4/,
  );
  assert.throws(
    () => planGradNorm(gpu, { ...spec(placed(gpu, new Float32Array(7), "grads", 8), 7), version: "v2" }),
    /gradient norm v2 \(vec4\) does not apply: window \[0, 7\) is not 4-aligned/,
  );
});

interface AdamState {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/** torch.nn.utils.clip_grad_norm_ followed by one torch.optim.AdamW step, in float64. */
function adamwRef(s: AdamState, g: Float32Array, step: number, h: AdamWSettings, decayEnd: number) {
  const { beta1, beta2, eps } = h;
  const norm = Math.sqrt(g.reduce((acc, x) => acc + x * x, 0));
  const coef = h.maxGradNorm > 0 ? Math.min(1, h.maxGradNorm / (norm + 1e-6)) : 1;
  const bc1 = 1 - beta1 ** step, bc2 = 1 - beta2 ** step;
  for (let i = 0; i < s.p.length; i++) {
    const gi = g[i] * coef;
    s.m[i] = beta1 * s.m[i] + (1 - beta1) * gi;
    s.v[i] = beta2 * s.v[i] + (1 - beta2) * gi * gi;
    if (i < decayEnd) s.p[i] -= h.lr * h.weightDecay * s.p[i];
    s.p[i] -= h.lr * (s.m[i] / bc1) / (Math.sqrt(s.v[i] / bc2) + eps);
  }
}

Deno.test("AdamW: three clipped steps with decay on a prefix match torch semantics; skipped when non-finite", async () => {
  const gpu = await getGpu();
  for (const [n, decayEnd, maxNorm] of [[1, 1, 0], [33, 20, 0.5], [130, 0, 1e9], [4099, 4000, 2]]) {
    const p0 = randoms(n, n, 1);
    const state: AdamState = { p: toF64(p0), m: new Float64Array(n), v: new Float64Array(n) };
    // One flat optimizer-state buffer holding m and v (a single read_write binding, two offsets).
    const params = placed(gpu, p0, "params");
    const moments = createTensor(gpu, 2 * n + 70, "moments");
    const m = slice(moments, 3, n, "m"), v = slice(moments, n + 67, n, "v");
    const grads = placed(gpu, new Float32Array(n), "grads");
    const stats = placed(gpu, new Float32Array(8), "stats");
    const partials = placed(gpu, new Float32Array(gradNormPartials(n)), "partials");
    const norm = planGradNorm(gpu, { grads, n, stats, partials, label: "gn" });
    const hyper: AdamWSettings = { ...DEFAULT_ADAMW, lr: 0.01, weightDecay: 0.1, maxGradNorm: maxNorm };
    const adam = planAdamW(gpu, { params, grads, m, v, n, decayEnd, stats, label: "adamw" }, hyper);
    for (let step = 1; step <= 3; step++) {
      const g = randoms(n, 100 * step + n, 3);
      writeTensor(gpu, grads, g);
      for (const d of adam) d.setParams(adamwStepParams(hyper, step));
      await run(gpu, [...norm, ...adam]);
      adamwRef(state, g, step, hyper, decayEnd);
    }
    const tag = `n=${n} decayEnd=${decayEnd} maxNorm=${maxNorm}`;
    assertClose(await readTensor(gpu, params), state.p, `AdamW params ${tag}`, 1e-6, 1e-5);
    assertClose(await readTensor(gpu, m), state.m, `AdamW m ${tag}`, 1e-7, 1e-5);
    assertClose(await readTensor(gpu, v), state.v, `AdamW v ${tag}`, 1e-8, 1e-5);

    // A non-finite gradient: the flag is set and params, m, v stay bit-identical.
    const before = [await readTensor(gpu, params), await readTensor(gpu, m), await readTensor(gpu, v)];
    const bad = randoms(n, 7);
    bad[n - 1] = NaN;
    writeTensor(gpu, grads, bad);
    await run(gpu, [...norm, ...adam]);
    const after = [await readTensor(gpu, params), await readTensor(gpu, m), await readTensor(gpu, v)];
    before.forEach((b, i) =>
      assertBitIdentical(b, after[i], `AdamW skipped step ${["params", "m", "v"][i]} ${tag}`)
    );
  }
});

Deno.test("AdamW v2 (vec4) equals v1 bit for bit and the float64 reference; misaligned v2 is refused", async () => {
  const gpu = await getGpu();
  for (const [n, decayEnd, maxNorm] of [[4, 4, 0], [132, 64, 1e9], [4100, 4000, 2]]) {
    const p0 = randoms(n, n, 1);
    const state: AdamState = { p: toF64(p0), m: new Float64Array(n), v: new Float64Array(n) };
    const hyper: AdamWSettings = { ...DEFAULT_ADAMW, lr: 0.01, weightDecay: 0.1, maxGradNorm: maxNorm };
    const grads = placed(gpu, new Float32Array(n), "grads", 8);
    const stats = placed(gpu, new Float32Array(8), "stats");
    const partials = placed(gpu, new Float32Array(gradNormPartials(n)), "partials");
    const norm = planGradNorm(gpu, { grads, n, stats, partials, label: "gn" });
    // Each version on its own parameters and moments, 4-aligned at different offsets.
    const runs = (["v1", "v2"] as const).map((version, k) => {
      const params = placed(gpu, p0, `params ${version}`, 4 + 4 * k);
      const m = placed(gpu, new Float32Array(n), `m ${version}`, 12);
      const v = placed(gpu, new Float32Array(n), `v ${version}`, 16 + 4 * k);
      const adam = planAdamW(
        gpu,
        { params, grads, m, v, n, decayEnd, stats, label: "adamw", version },
        hyper,
      );
      return { params, m, v, adam };
    });
    for (let step = 1; step <= 3; step++) {
      const g = randoms(n, 100 * step + n, 3);
      writeTensor(gpu, grads, g);
      for (const r of runs) for (const d of r.adam) d.setParams(adamwStepParams(hyper, step));
      await run(gpu, [...norm, ...runs[0].adam, ...runs[1].adam]);
      adamwRef(state, g, step, hyper, decayEnd);
    }
    const tag = `n=${n} decayEnd=${decayEnd} maxNorm=${maxNorm}`;
    const [v1, v2] = runs;
    assertClose(await readTensor(gpu, v2.params), state.p, `AdamW v2 params ${tag}`, 1e-6, 1e-5);
    assertClose(await readTensor(gpu, v2.v), state.v, `AdamW v2 v ${tag}`, 1e-8, 1e-5);
    for (const what of ["params", "m", "v"] as const) {
      assertBitIdentical(
        await readTensor(gpu, v2[what]),
        await readTensor(gpu, v1[what]),
        `v2 = v1 ${what} ${tag}`,
      );
    }
  }
  const t = (label: string) => createTensor(gpu, 8, label);
  const odd = {
    params: placed(gpu, new Float32Array(8), "odd params", 37),
    grads: t("g"),
    m: t("m"),
    v: t("v"),
    n: 8,
    decayEnd: 8,
    stats: t("stats"),
    label: "adamw",
  };
  assert.throws(
    () => planAdamW(gpu, { ...odd, version: "v2" }),
    /adamw: AdamW v2 \(vec4\) does not apply: odd params starts at element 37, not a multiple of 4/,
  );
  // The default falls back to v1 there instead of refusing.
  assert.equal(planAdamW(gpu, odd).length, 1);
});
