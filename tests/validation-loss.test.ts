/**
 * validationLoss (server/lab/windows.ts): every batch is evaluated before any read-back is awaited
 * (one read-back wait per evaluation, not one per batch), and the count-weighted mean it returns
 * matches the float64 reference on the tiny GPT, a partial last batch included.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { GptModel, type StepStats } from "../kernels/gpt.ts";
import { paramsFromFlat, refForward } from "../kernels/reference.ts";
import { validationBatches, validationLoss, type WindowBatch } from "../server/lab/windows.ts";
import { B, cfg, T, testParameters } from "./helpers/tiny-gpt.ts";

const stats = (loss: number, count: number): StepStats => ({
  loss,
  count,
  gradNorm: 0,
  correct: 0,
  steps: 0,
});

Deno.test("validationLoss: runs every batch before awaiting any read-back, then weights by count", async () => {
  const events: string[] = [];
  const pending: ((s: StepStats) => void)[] = [];
  const model = {
    setBatch: (batch: WindowBatch) => events.push(`batch ${batch.tokens[0]}`),
    evalStep: () => events.push("eval"),
    readStats: () => new Promise<StepStats>((resolve) => pending.push(resolve)),
  };
  const batches = [1, 2, 3].map((id) => ({
    tokens: Int32Array.of(id),
    lengths: Int32Array.of(1),
    targets: Int32Array.of(0),
  }));
  const result = validationLoss(model, batches);
  // A loop that awaited each read-back would stop here after the first batch.
  assert.deepEqual(events, ["batch 1", "eval", "batch 2", "eval", "batch 3", "eval"]);
  assert.equal(pending.length, 3);
  pending[2](stats(4, 1));
  pending[0](stats(1, 2));
  pending[1](stats(2.5, 4));
  // (1·2 + 2.5·4 + 4·1) / 7, by hand.
  assert.equal(await result, 16 / 7);
});

Deno.test("validationLoss: the pipelined read-backs match the float64 reference loss per batch", async () => {
  const gpu = await getGpu();
  const params = testParameters(5);
  const model = new GptModel(gpu, cfg, params, { batchSize: B, seqLen: T });
  try {
    let s = 11;
    const tokens = Uint16Array.from(
      { length: 10 * T + 1 },
      () => (s = (s * 1103515245 + 12345) % 2 ** 31) % 37,
    );
    const batches = validationBatches(tokens, B, T, 10);
    assert.deepEqual(batches.map((b) => b.lengths.length), [4, 4, 2], "a partial last batch");
    const ref = paramsFromFlat(cfg, params);
    let sum = 0, count = 0;
    for (const batch of batches) {
      const rows = batch.lengths.length;
      const loss = refForward(cfg, ref, { B: rows, T, ...batch }, "lm").loss;
      const targets = batch.targets.filter((t) => t >= 0).length;
      sum += loss * targets;
      count += targets;
    }
    const got = await validationLoss(model, batches);
    assert.ok(
      Math.abs(got - sum / count) < 1e-5 * (sum / count),
      `got ${got}, float64 reference ${sum / count}`,
    );
  } finally {
    model.destroy();
  }
});
