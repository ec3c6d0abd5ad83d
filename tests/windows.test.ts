/**
 * Storage-binding windows: with the binding limit forced to a few KiB, a tiny GPT whose token embedding,
 * flat parameter/gradient/optimizer buffers and logits all exceed one binding is planned in windows;
 * its loss, every gradient and three AdamW steps must match the float64 reference and the same model
 * planned under the adapter's own limit (one window each).
 */
import assert from "node:assert/strict";
import type { GptConfig } from "../kernels/config.ts";
import { getGpu, withBindingLimit } from "../kernels/device.ts";
import { GptModel, nextTokenTargets } from "../kernels/gpt.ts";
import {
  DEFAULT_ADAMW,
  newAdamWState,
  paramsFromFlat,
  refAdamWStep,
  refBackward,
  type RefBatch,
  refForward,
} from "../kernels/reference.ts";
import { bindTensor, createTensor, slice, windowsOf } from "../kernels/runtime.ts";
import { gradientReport, parameterReport, relError, testParameters } from "./helpers/tiny-gpt.ts";

// wte 301×8 floats (9.6 KB), logits 28 rows of 301 padded to 304 (34 KB), flat buffers ~18 KB: all
// over LIMIT; the largest activation (28 × 32 floats, 3.5 KB) fits. A vocabulary that is not a multiple
// of 4 puts a ragged edge in the last vocabulary window of every LM-head product.
const cfg: GptConfig = { vocabSize: 301, contextLength: 9, width: 8, layers: 2, heads: 2 };
const B = 4, T = 7;
const LIMIT = 4096;
const lengths = Int32Array.from([7, 4, 1, 0]);

function batch(seed: number): { tokens: Int32Array; classTargets: Float32Array } {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const tokens = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    // Ids from every vocabulary window, the first and last rows included.
    for (let t = 0; t < lengths[b]; t++) tokens[b * T + t] = Math.floor(next() * cfg.vocabSize);
  }
  tokens[0] = 0;
  tokens[1] = cfg.vocabSize - 1;
  const classTargets = Float32Array.from({ length: B * 2 }, (_, i) => (i % 2 === 0 ? 0.3 : 0.7));
  return { tokens, classTargets };
}

const parameters = (seed: number) => testParameters(seed, cfg);

function refBatch(tokens: Int32Array, classTargets: Float32Array): RefBatch {
  const targets = nextTokenTargets(tokens, lengths, T);
  return { B, T, tokens, lengths, targets, classTargets: Float64Array.from(classTargets) };
}

async function models(flat: Float32Array): Promise<{ windowed: GptModel; whole: GptModel }> {
  const gpu = await getGpu();
  const shape = { batchSize: B, seqLen: T };
  return {
    windowed: new GptModel(withBindingLimit(gpu, LIMIT), cfg, flat, shape),
    whole: new GptModel(gpu, cfg, flat, shape),
  };
}

Deno.test("windows: every window of a tensor binds within the limit, aligned, covering it exactly", async () => {
  const gpu = withBindingLimit(await getGpu(), LIMIT);
  const buffer = createTensor(gpu, 5000, "buffer");
  // An unaligned start (offset 3) and rows of 7 elements.
  const t = slice(buffer, 3, 7 * 600, "rows");
  const windows = windowsOf(gpu, t, 7);
  assert.ok(windows.length > 1, `${windows.length} window(s)`);
  let next = t.offset;
  for (const w of windows) {
    assert.equal(w.offset, next);
    assert.equal(w.length % 7, 0);
    next += w.length;
    const { binding } = bindTensor(gpu, w);
    assert.ok(binding.size! <= LIMIT, `window binds ${binding.size} bytes`);
    assert.equal(binding.offset! % gpu.limits.minStorageBufferOffsetAlignment, 0);
  }
  assert.equal(next, t.offset + t.length);
  assert.throws(() => windowsOf(gpu, slice(buffer, 0, 4000), 4000), /raise the binding limit/);
  assert.throws(() => withBindingLimit(gpu, 100), /maxBindingBytes must be/);
  buffer.buffer.destroy();
});

Deno.test("windows: the tiny model's wte, flat buffers and logits really are planned in windows", async () => {
  const { windowed, whole } = await models(parameters(1));
  const labels = windowed.dispatches("lm").map((d) => d.label);
  const count = (re: RegExp) => labels.filter((l) => re.test(l)).length;
  assert.ok(count(/^zero grads$/) > 1, "zero grads per window");
  assert.ok(count(/^adamw \[window/) > 1, "AdamW per window");
  assert.ok(count(/^grad norm partials \[window/) > 1, "grad norm per window");
  assert.ok(count(/^embedding \[window/) > 1, "embedding forward per vocabulary window");
  assert.ok(count(/^embedding backward dwte \[window/) > 1, "dwte per vocabulary window");
  assert.ok(count(/^lm loss rows \[block/) > 1, "cross-entropy per block of rows");
  assert.ok(count(/^lm head$/) > count(/^lm loss rows/), "lm head per tile");
  const wholeLabels = whole.dispatches("lm").map((d) => d.label);
  assert.equal(wholeLabels.filter((l) => /window|block/.test(l)).length, 0);
  assert.equal(wholeLabels.filter((l) => l === "lm head").length, 1);
  windowed.destroy();
  whole.destroy();
});

Deno.test("windows: loss and every gradient match the float64 reference and the unwindowed model", async () => {
  const flat = parameters(11);
  const { tokens, classTargets } = batch(5);
  const { windowed, whole } = await models(flat);
  const run = async (model: GptModel) => {
    model.setBatch({ tokens, lengths, classTargets });
    model.setOptimizer({ lr: 0 });
    model.trainStep("lm");
    const stats = await model.readStats();
    return {
      loss: stats.loss,
      gradNorm: stats.gradNorm,
      grads: paramsFromFlat(cfg, await model.readGrads()),
    };
  };
  const got = await run(windowed);
  const base = await run(whole);
  const params = paramsFromFlat(cfg, flat);
  const rb = refBatch(tokens, classTargets);
  const fwd = refForward(cfg, params, rb, "lm");
  const want = refBackward(cfg, params, rb, "lm", fwd);
  assert.ok(Math.abs(got.loss - fwd.loss) <= 1e-4 * Math.abs(fwd.loss), `loss ${got.loss} vs ${fwd.loss}`);
  assert.ok(Math.abs(got.loss - base.loss) <= 1e-5 * Math.abs(base.loss), `loss ${got.loss} vs ${base.loss}`);
  // The gradient norm sums partials that windows split mid-chunk (the limit is under one chunk).
  const norm = Math.sqrt([...want.values()].reduce((sum, g) => sum + g.reduce((t, x) => t + x * x, 0), 0));
  assert.ok(Math.abs(got.gradNorm - norm) <= 1e-4 * norm, `grad norm ${got.gradNorm} vs ${norm}`);
  assert.ok(
    Math.abs(got.gradNorm - base.gradNorm) <= 1e-5 * norm,
    `grad norm ${got.gradNorm} vs ${base.gradNorm}`,
  );
  const report = gradientReport(got.grads, want, base.grads, "one window");
  assert.deepEqual(report, [], `gradients off:\n${report.join("\n")}`);

  // The logits program (tiles, no loss) against the unwindowed model's.
  windowed.logitsStep();
  whole.logitsStep();
  const err = relError(await windowed.readLogits(), await whole.readLogits());
  assert.ok(err <= 1e-5, `logits rel error ${err}`);
  windowed.destroy();
  whole.destroy();
});

Deno.test("windows: three AdamW steps match the float64 reference and the unwindowed model", async () => {
  const flat = parameters(3);
  const { tokens, classTargets } = batch(9);
  const { windowed, whole } = await models(flat);
  const params = paramsFromFlat(cfg, flat);
  const state = newAdamWState(cfg);
  const rb = refBatch(tokens, classTargets);
  for (let step = 0; step < 3; step++) {
    for (const model of [windowed, whole]) {
      model.setBatch({ tokens, lengths, classTargets });
      model.trainStep("lm");
    }
    refAdamWStep(cfg, params, refBackward(cfg, params, rb, "lm"), state, DEFAULT_ADAMW);
  }
  await windowed.readStats();
  const got = paramsFromFlat(cfg, await windowed.readParams());
  const base = paramsFromFlat(cfg, await whole.readParams());
  // Three steps of lr 1e-3 move a weight by ≤ 3e-3.
  const report = parameterReport(got, params, base, cfg.width, "one window");
  assert.deepEqual(report, [], `parameters after 3 steps differ:\n${report.join("\n")}`);
  windowed.destroy();
  whole.destroy();
});
