/**
 * The float64 CPU reference: its gradients against central finite differences of its own loss (for
 * every element of every parameter, all three heads), hand-computed layer values, its batch validation, and
 * the PyTorch cross-check: every value of tests/fixtures (scripts/torch-fixtures.py) reproduced from the
 * HF-layout checkpoint loaded through loadCheckpoint.
 */
import assert from "node:assert/strict";
import { type GptConfig, paramLayout } from "../kernels/config.ts";
import { mulberry32 } from "../kernels/random.ts";
import {
  attentionForward,
  DEFAULT_ADAMW,
  geluForward,
  type Head,
  layernormForward,
  newAdamWState,
  type Params,
  paramsFromFlat,
  paramsToFlat,
  refAdamWStep,
  refBackward,
  type RefBatch,
  refForward,
} from "../kernels/reference.ts";
import { loadTorchFixtures } from "./fixtures/torch-reference.ts";

const tinyConfig: GptConfig = { vocabSize: 11, contextLength: 7, width: 8, layers: 2, heads: 2 };

/** Random parameters of a visible scale everywhere (gains ≈ 1, non-zero biases and head). */
function randomParams(cfg: GptConfig, seed: number): Params {
  const rand = mulberry32(seed);
  const params: Params = new Map();
  for (const spec of paramLayout(cfg).specs) {
    const gain = spec.name.endsWith("ln_1.weight") || spec.name.endsWith("ln_2.weight") ||
      spec.name === "ln_f.weight";
    const t = new Float64Array(spec.size);
    for (let i = 0; i < t.length; i++) t[i] = (gain ? 1 : 0) + (rand() - 0.5) * 0.8;
    params.set(spec.name, t);
  }
  return params;
}

/** B = 4 rows: full, shorter, a single token, and an empty row; padding id 0. */
function tinyBatch(): RefBatch {
  const B = 4, T = 7;
  const lengths = Int32Array.from([7, 5, 1, 0]);
  const rand = mulberry32(99);
  const tokens = new Int32Array(B * T);
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < lengths[b]; t++) tokens[b * T + t] = 1 + Math.floor(rand() * 10);
    for (let t = 0; t + 1 < lengths[b]; t++) targets[b * T + t] = tokens[b * T + t + 1];
  }
  targets[3] = -1; // an ignored position inside a sequence
  targets[6] = 4; // the last token of the full row predicts something too
  const classTargets = Float64Array.from([0.9, 0.1, 0.25, 0.75, 0, 1, 0.5, 0.5]);
  // Reward head: pair 0 (rows 0, 1) is compared; pair 1 holds the empty row and is left out.
  const pairTargets = Float64Array.from([0.2, 0.8, 0.6, 0.4]);
  return { B, T, tokens, lengths, targets, classTargets, pairTargets };
}

function checkGradientsByFiniteDifferences(head: Head) {
  const params = randomParams(tinyConfig, 7);
  const batch = tinyBatch();
  const grads = refBackward(tinyConfig, params, batch, head);
  const h = 1e-5;
  let worst = { rel: 0, name: "" };
  for (const spec of paramLayout(tinyConfig).specs) {
    const p = params.get(spec.name)!;
    const g = grads.get(spec.name)!;
    const numeric = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const saved = p[i];
      p[i] = saved + h;
      const plus = refForward(tinyConfig, params, batch, head).loss;
      p[i] = saved - h;
      const minus = refForward(tinyConfig, params, batch, head).loss;
      p[i] = saved;
      numeric[i] = (plus - minus) / (2 * h);
    }
    // Error relative to the tensor's largest gradient: elementwise ratios blow up near zero.
    let maxDiff = 0, maxGrad = 0;
    for (let i = 0; i < p.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(g[i] - numeric[i]));
      maxGrad = Math.max(maxGrad, Math.abs(numeric[i]));
    }
    const rel = maxGrad > 1e-9 ? maxDiff / maxGrad : maxDiff;
    assert.ok(
      rel < 1e-6,
      `${head} head: ${spec.name} max diff ${maxDiff} (rel ${rel}) vs finite differences`,
    );
    if (rel > worst.rel) worst = { rel, name: spec.name };
  }
  return worst;
}

Deno.test("reference LM-head gradients match central finite differences for every parameter", () => {
  const worst = checkGradientsByFiniteDifferences("lm");
  console.log(`lm head: worst tensor-relative error ${worst.rel.toExponential(2)} (${worst.name})`);
});

Deno.test("reference cls-head gradients match central finite differences for every parameter", () => {
  const worst = checkGradientsByFiniteDifferences("cls");
  console.log(`cls head: worst tensor-relative error ${worst.rel.toExponential(2)} (${worst.name})`);
});

Deno.test("reference reward-head gradients match central finite differences for every parameter", () => {
  const worst = checkGradientsByFiniteDifferences("reward");
  console.log(`reward head: worst tensor-relative error ${worst.rel.toExponential(2)} (${worst.name})`);
});

Deno.test("gradients are non-trivial where the loss depends on a parameter and zero where it cannot", () => {
  const params = randomParams(tinyConfig, 7);
  const batch = tinyBatch();
  const lm = refBackward(tinyConfig, params, batch, "lm");
  const cls = refBackward(tinyConfig, params, batch, "cls");
  const maxAbs = (a: Float64Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  assert.equal(maxAbs(lm.get("cls.weight")!), 0);
  assert.equal(maxAbs(lm.get("cls.bias")!), 0);
  assert.ok(maxAbs(cls.get("cls.weight")!) > 1e-3);
  assert.equal(maxAbs(lm.get("reward.weight")!), 0);
  assert.equal(maxAbs(cls.get("reward.weight")!), 0);
  const reward = refBackward(tinyConfig, params, batch, "reward");
  assert.equal(maxAbs(reward.get("cls.weight")!), 0);
  assert.equal(maxAbs(reward.get("cls.bias")!), 0);
  assert.ok(maxAbs(reward.get("reward.weight")!) > 1e-3);
  assert.ok(maxAbs(lm.get("h.0.attn.c_attn.weight")!) > 1e-4);
  // wpe rows past the longest sequence (none here: T = 7 = context) and the empty row's tokens carry nothing.
  const wpe = cls.get("wpe.weight")!;
  assert.ok(maxAbs(wpe) > 1e-4);
});

Deno.test("layernorm, GELU and attention give hand-computed values", () => {
  const out = new Float64Array(4), mean = new Float64Array(1), rstd = new Float64Array(1);
  layernormForward(
    out,
    mean,
    rstd,
    Float64Array.from([1, 2, 3, 4]),
    Float64Array.from([1, 1, 2, 1]),
    Float64Array.from([0, 0, 0, 1]),
    1,
    4,
  );
  // mean 2.5, biased variance 1.25
  const s = 1 / Math.sqrt(1.25 + 1e-5);
  assert.deepEqual(
    Array.from(out).map((x) => +x.toFixed(12)),
    [-1.5 * s, -0.5 * s, 1 * s, 1.5 * s + 1].map((x) => +x.toFixed(12)),
  );

  const g = new Float64Array(3);
  geluForward(g, Float64Array.from([0, 1, -2]));
  assert.ok(Math.abs(g[1] - 0.8411919906082768) < 1e-12, `gelu(1) = ${g[1]}`);
  assert.ok(Math.abs(g[2] - -0.04540230591222602) < 1e-12, `gelu(-2) = ${g[2]}`);

  // One head of width 1, T = 3, length 2: query 0 sees key 0 only; queries 1 and 2 (padding) see keys 0..1.
  const qkv = Float64Array.from([/* t0 */ 1, 0, 10, /* t1 */ 2, Math.log(3), 20, /* t2 */ 5, 100, 1000]);
  const att = new Float64Array(9), y = new Float64Array(3);
  attentionForward(y, att, qkv, Int32Array.from([2]), 1, 3, 1, 1);
  assert.equal(y[0], 10);
  // query 1: scores 0 and 2·ln3 → weights 1/10, 9/10
  assert.ok(Math.abs(y[1] - (0.1 * 10 + 0.9 * 20)) < 1e-12, `y1 = ${y[1]}`);
  // query 2 (padding): scores 0 and 5·ln3 → weights 1/(1+243), 243/244; key 2 is masked
  assert.ok(Math.abs(y[2] - (10 + 243 * 20) / 244) < 1e-12, `y2 = ${y[2]}`);
  const empty = new Float64Array(3);
  attentionForward(empty, att, qkv, Int32Array.from([0]), 1, 3, 1, 1);
  assert.deepEqual(Array.from(empty), [0, 0, 0]);
});

Deno.test("AdamW step: clipping, bias correction and decay only on matrices, by hand", () => {
  const cfg: GptConfig = { vocabSize: 2, contextLength: 1, width: 1, layers: 0 + 1, heads: 1 };
  const params: Params = new Map();
  const grads: Params = new Map();
  for (const spec of paramLayout(cfg).specs) {
    params.set(spec.name, new Float64Array(spec.size).fill(0.5));
    grads.set(spec.name, new Float64Array(spec.size));
  }
  grads.get("wte.weight")![0] = 3;
  grads.get("ln_f.bias")![0] = 4; // global norm 5 → clip coefficient 1/(5 + 1e-6)
  const state = newAdamWState(cfg);
  const { gradNorm, clipCoef } = refAdamWStep(cfg, params, grads, state, DEFAULT_ADAMW);
  assert.equal(gradNorm, 5);
  assert.ok(Math.abs(clipCoef - 1 / (5 + 1e-6)) < 1e-15);
  const lr = 1e-3, wd = 0.1;
  // First step: m̂ = g, v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g).
  const g0 = 3 * clipCoef;
  const expectedWte = 0.5 * (1 - lr * wd) - lr * g0 / (g0 + 1e-8);
  assert.ok(
    Math.abs(params.get("wte.weight")![0] - expectedWte) < 1e-15,
    `wte ${params.get("wte.weight")![0]}`,
  );
  assert.ok(
    Math.abs(params.get("wte.weight")![1] - 0.5 * (1 - lr * wd)) < 1e-15,
    "zero-grad matrix still decays",
  );
  const g1 = 4 * clipCoef;
  assert.ok(Math.abs(params.get("ln_f.bias")![0] - (0.5 - lr * g1 / (g1 + 1e-8))) < 1e-15);
  assert.equal(params.get("ln_f.weight")![0], 0.5, "vectors do not decay");
  assert.equal(state.step, 1);
});

Deno.test("flat layout round-trips through named float64 tensors", () => {
  const flat = new Float32Array(paramLayout(tinyConfig).total);
  for (const spec of paramLayout(tinyConfig).specs) {
    for (let i = 0; i < spec.size; i++) flat[spec.offset + i] = spec.offset + i * 0.5;
  }
  const params = paramsFromFlat(tinyConfig, flat);
  assert.equal(params.get("h.1.mlp.c_fc.weight")!.length, 8 * 32);
  assert.deepEqual(paramsToFlat(tinyConfig, params), flat);
});

Deno.test("bad batches give named errors", () => {
  const params = randomParams(tinyConfig, 1);
  const batch = tinyBatch();
  const badToken = { ...batch, tokens: batch.tokens.slice() };
  badToken.tokens[9] = 11;
  assert.throws(() => refForward(tinyConfig, params, badToken, "lm"), /token id 11 at row 1, position 2/);
  const badTarget = { ...batch, targets: batch.targets!.slice() };
  badTarget.targets[2] = -2;
  assert.throws(() => refForward(tinyConfig, params, badTarget, "lm"), /target id -2 at row 0, position 2/);
  assert.throws(
    () => refForward(tinyConfig, params, { ...batch, lengths: Int32Array.from([8, 1, 1, 1]) }, "lm"),
    /lengths\[0\] = 8/,
  );
  assert.throws(
    () => refForward(tinyConfig, params, { ...batch, classTargets: undefined }, "cls"),
    /classTargets is required/,
  );
  assert.throws(
    () => refForward(tinyConfig, params, { ...batch, pairTargets: undefined }, "reward"),
    /pairTargets is required for the reward head/,
  );
  assert.throws(
    () => refForward(tinyConfig, params, { ...batch, pairTargets: new Float64Array(2) }, "reward"),
    /pairTargets has 2 values, expected \(B\/2\)·2 = 4/,
  );
  const odd = { ...batch, B: 3, tokens: batch.tokens.slice(0, 21), lengths: batch.lengths.slice(0, 3) };
  assert.throws(
    () => refForward(tinyConfig, params, odd, "reward"),
    /batch\.B must be even for the reward head/,
  );
});

/** max |a − b| / max(max |b|, 1e-30): error relative to the reference tensor's scale. */
function relativeError(actual: Float64Array, expected: Float64Array, what: string): number {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxDiff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale > 0 ? maxDiff / scale : maxDiff;
}

const TORCH_TOLERANCE = 1e-9;

for (const head of ["lm", "cls", "reward"] as const) {
  Deno.test(`${head} head: loss, logits, features and every gradient match PyTorch (HF checkpoint import)`, async () => {
    const fixtures = await loadTorchFixtures();
    const params = paramsFromFlat(fixtures.config, fixtures.params);
    const forward = refForward(fixtures.config, params, fixtures.batch, head);
    const expected = fixtures[head];
    const lossError = Math.abs(forward.loss - expected.loss) / Math.abs(expected.loss);
    assert.ok(
      lossError < TORCH_TOLERANCE,
      `${head} loss ${forward.loss} vs torch ${expected.loss} (rel ${lossError})`,
    );
    const logitsError = relativeError(forward.logits, expected.logits, `${head} logits`);
    assert.ok(logitsError < TORCH_TOLERANCE, `${head} logits rel error ${logitsError}`);
    let featuresError = 0;
    fixtures.features.forEach((f, l) => {
      featuresError = Math.max(featuresError, relativeError(forward.features[l], f, `features ${l}`));
    });
    assert.ok(featuresError < TORCH_TOLERANCE, `features rel error ${featuresError}`);
    const grads = refBackward(fixtures.config, params, fixtures.batch, head, forward);
    let worst = { error: 0, name: "" };
    for (const [name, torchGrad] of expected.grads) {
      const error = relativeError(grads.get(name)!, torchGrad, `${head} grad ${name}`);
      assert.ok(error < TORCH_TOLERANCE, `${head} gradient of ${name}: rel error ${error} vs torch`);
      if (error > worst.error) worst = { error, name };
    }
    console.log(
      `${head}: loss rel ${lossError.toExponential(1)}, logits ${logitsError.toExponential(1)}, ` +
        `features ${featuresError.toExponential(1)}, worst gradient ${
          worst.error.toExponential(1)
        } (${worst.name})`,
    );
  });

  Deno.test(`${head} head: parameters after 3 AdamW steps match PyTorch`, async () => {
    const fixtures = await loadTorchFixtures();
    const { config, batch, adamw } = fixtures;
    const params = paramsFromFlat(config, fixtures.params);
    const state = newAdamWState(config);
    for (let step = 0; step < adamw.steps; step++) {
      const forward = refForward(config, params, batch, head);
      const grads = refBackward(config, params, batch, head, forward);
      const { gradNorm, clipCoef } = refAdamWStep(config, params, grads, state, adamw);
      const torchStep = fixtures[head].adamwSteps[step];
      assert.ok(
        Math.abs(forward.loss - torchStep.loss) < TORCH_TOLERANCE,
        `step ${step} loss ${forward.loss} vs ${torchStep.loss}`,
      );
      assert.ok(
        Math.abs(gradNorm - torchStep.gradNorm) < TORCH_TOLERANCE,
        `step ${step} norm ${gradNorm} vs ${torchStep.gradNorm}`,
      );
      assert.ok(clipCoef < 1, "the fixture exercises clipping");
    }
    let worst = { error: 0, name: "" };
    for (const [name, torchParam] of fixtures[head].afterAdamW) {
      const error = relativeError(params.get(name)!, torchParam, `${head} param ${name}`);
      assert.ok(
        error < TORCH_TOLERANCE,
        `${head} ${name} after ${adamw.steps} AdamW steps: rel error ${error}`,
      );
      if (error > worst.error) worst = { error, name };
    }
    console.log(`${head}: worst parameter after AdamW ${worst.error.toExponential(1)} (${worst.name})`);
  });
}
