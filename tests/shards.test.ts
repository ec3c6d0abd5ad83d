/**
 * Flat buffers in shards: with maxBufferSize forced to 10 kB, a tiny GPT's parameter, gradient and
 * AdamW buffers (18 KB each) are split in buffers of whole parameters, the first boundary between wte
 * and wpe (as GPT-2 XL's 6.2 GB are on a real adapter). Its loss, every gradient and three AdamW steps must match the float64 reference
 * and the same model in one buffer; decay toward an anchor, frozen embeddings across the boundary and
 * the optimizer state's round trip must work across shards too.
 */
import assert from "node:assert/strict";
import { EMBEDDING_PARAMS, type GptConfig, paramLayout } from "../kernels/config.ts";
import { getGpu, withBufferLimit } from "../kernels/device.ts";
import { GptModel, nextTokenTargets } from "../kernels/gpt.ts";
import { flatShards, modelBuffers } from "../kernels/memory.ts";
import {
  DEFAULT_ADAMW,
  newAdamWState,
  paramsFromFlat,
  refAdamWStep,
  refBackward,
  refForward,
} from "../kernels/reference.ts";
import { gradientReport, parameterReport, testParameters } from "./helpers/tiny-gpt.ts";

const cfg: GptConfig = { vocabSize: 301, contextLength: 9, width: 8, layers: 2, heads: 2 };
// One row of 7 tokens: the logits (7 × 304 floats, 8.5 KB) fit the limit; wte (9.6 KB) alone fills a shard.
const B = 1, T = 7;
const LIMIT = 10000;
const lengths = Int32Array.from([7]);
const tokens = Int32Array.from([5, 300, 17, 42, 0, 299, 128]);
const classTargets = Float32Array.from([0.3, 0.7]);
const shape = { batchSize: B, seqLen: T };

const parameters = (seed: number) => testParameters(seed, cfg);

async function models(flat: Float32Array): Promise<{ sharded: GptModel; whole: GptModel }> {
  const gpu = await getGpu();
  return {
    sharded: new GptModel(withBufferLimit(gpu, LIMIT), cfg, flat, shape),
    whole: new GptModel(gpu, cfg, flat, shape),
  };
}

const refBatch = () => ({
  B,
  T,
  tokens,
  lengths,
  targets: nextTokenTargets(tokens, lengths, T),
  classTargets: Float64Array.from(classTargets),
});

Deno.test("shards: the flat buffers split between whole parameters under maxBufferSize, as memory.ts counts them", async () => {
  const layout = paramLayout(cfg);
  const wpe = layout.byName.get("wpe.weight")!.offset;
  const shards = flatShards(layout, LIMIT);
  assert.deepEqual(shards.slice(0, 2), [0, wpe]);
  assert.deepEqual(flatShards(layout), [0]);
  // Every start is a matrix's offset or the vectors' block (never inside a parameter).
  const starts = flatShards(layout, 1024);
  const allowed = new Set([...layout.specs.filter((s) => s.decay).map((s) => s.offset), layout.decayEnd]);
  assert.ok(starts.length > 3 && starts.every((s) => allowed.has(s)), `${starts}`);

  const { sharded, whole } = await models(parameters(1));
  for (const flat of [sharded.params, sharded.grads, sharded.m, sharded.v]) {
    assert.deepEqual(flat.shards.map((s) => s.start), shards, flat.label);
    for (const { tensor } of flat.shards) assert.ok(tensor.buffer.size <= LIMIT, tensor.label);
  }
  assert.equal(whole.params.shards.length, 1);
  const labels = sharded.dispatches("lm").map((d) => d.label);
  assert.equal(labels.filter((l) => /^adamw \[window/.test(l)).length, shards.length, "AdamW per shard");
  assert.equal(labels.filter((l) => l === "zero grads").length, shards.length, "zero grads per shard");
  // memory.ts names the same shards.
  const names = modelBuffers(cfg, { ...shape, maxBufferSize: LIMIT }).map((b) => b.label);
  for (const flat of ["params", "grads", "adam m", "adam v"]) {
    const want = shards.map((_, i) => `${flat} [shard ${i}]`);
    assert.deepEqual(names.filter((n) => n.startsWith(flat + " ")), want);
  }
  sharded.destroy();
  whole.destroy();
});

Deno.test("shards: loss, every gradient and three AdamW steps match float64 and the one-buffer model", async () => {
  const flat = parameters(11);
  const { sharded, whole } = await models(flat);
  const params = paramsFromFlat(cfg, flat);
  const fwd = refForward(cfg, params, refBatch(), "lm");
  const want = refBackward(cfg, params, refBatch(), "lm", fwd);
  const report: string[] = [];
  const first: Record<string, { loss: number; gradNorm: number; grads: ReturnType<typeof paramsFromFlat> }> =
    {};
  for (const [what, model] of [["sharded", sharded], ["one buffer", whole]] as const) {
    model.setBatch({ tokens, lengths, classTargets });
    model.trainStep("lm");
    const stats = await model.readStats();
    first[what] = {
      loss: stats.loss,
      gradNorm: stats.gradNorm,
      grads: paramsFromFlat(cfg, await model.readGrads()),
    };
  }
  const got = first["sharded"], base = first["one buffer"];
  const norm = Math.sqrt([...want.values()].reduce((sum, g) => sum + g.reduce((t, x) => t + x * x, 0), 0));
  if (!(Math.abs(got.loss - fwd.loss) <= 1e-4 * fwd.loss)) report.push(`loss ${got.loss} vs ${fwd.loss}`);
  if (!(Math.abs(got.gradNorm - norm) <= 1e-4 * norm)) report.push(`grad norm ${got.gradNorm} vs ${norm}`);
  if (!(Math.abs(got.gradNorm - base.gradNorm) <= 1e-5 * norm)) report.push(`grad norm vs one buffer`);
  report.push(...gradientReport(got.grads, want, base.grads, "one buffer"));

  // Two more steps (three in all), then the parameters against the reference's AdamW.
  for (let step = 0; step < 2; step++) {
    for (const model of [sharded, whole]) {
      model.setBatch({ tokens, lengths, classTargets });
      model.trainStep("lm");
    }
  }
  const state = newAdamWState(cfg);
  for (let step = 0; step < 3; step++) {
    refAdamWStep(cfg, params, refBackward(cfg, params, refBatch(), "lm"), state, DEFAULT_ADAMW);
  }
  const after = paramsFromFlat(cfg, await sharded.readParams());
  const afterBase = paramsFromFlat(cfg, await whole.readParams());
  report.push(...parameterReport(after, params, afterBase, cfg.width, "one buffer after 3 steps"));
  assert.deepEqual(report, [], report.join("\n"));
  sharded.destroy();
  whole.destroy();
});

Deno.test("shards: decay toward an anchor sharded like the matrices, embeddings frozen across the boundary, optimizer state round trip", async () => {
  const flat = parameters(5);
  const { sharded, whole } = await models(flat);
  for (const model of [sharded, whole]) {
    model.setOptimizer({ lr: 1e-2, weightDecay: 0.5 });
    model.anchorDecay(true);
    model.freeze(EMBEDDING_PARAMS);
    for (let step = 0; step < 2; step++) {
      model.setBatch({ tokens, lengths, classTargets });
      model.trainStep("cls");
    }
  }
  const got = paramsFromFlat(cfg, await sharded.readParams());
  const want = paramsFromFlat(cfg, await whole.readParams());
  const start = paramsFromFlat(cfg, flat);
  const report: string[] = [];
  let movedMatrices = 0;
  for (const [name, p] of want) {
    const diff = Math.max(...p.map((x, i) => Math.abs(x - got.get(name)![i])));
    if (!(diff <= 1e-6)) report.push(`${name}: max abs diff ${diff.toExponential(2)} vs one buffer`);
    const moved = got.get(name)!.some((x, i) => x !== start.get(name)![i]);
    if ((EMBEDDING_PARAMS as readonly string[]).includes(name) && moved) {
      report.push(`${name} moved while frozen`);
    }
    if (name.endsWith("c_fc.weight") && moved) movedMatrices++;
  }
  assert.deepEqual(report, [], report.join("\n"));
  assert.equal(movedMatrices, cfg.layers, "the unfrozen matrices were updated");

  const state = await sharded.readOptimizerState();
  assert.ok(state.m.some((x) => x !== 0) && state.m.length === paramLayout(cfg).total);
  const again = new GptModel(withBufferLimit(await getGpu(), LIMIT), cfg, await sharded.readParams(), shape);
  again.loadOptimizerState(state);
  const back = await again.readOptimizerState();
  assert.deepEqual([back.m, back.v], [state.m, state.v]);
  for (const m of [sharded, whole, again]) m.destroy();
});
