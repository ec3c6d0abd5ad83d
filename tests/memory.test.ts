/**
 * kernels/memory.ts: the need it counts against the bytes a GptModel really allocates (runtime.ts's
 * tensorAllocations), the parameter bytes against hand-counted layouts and GPT-2's published sizes,
 * and the one error the bench's training step raises before allocating a size the adapter cannot hold.
 */
import assert from "node:assert/strict";
import { type GptConfig, initParameters } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { GptModel, type ModelShape } from "../kernels/gpt.ts";
import {
  checkModelMemory,
  EVAL_TOKENS,
  modelBuffers,
  modelMemory,
  ModelMemoryError,
  planEvalRows,
} from "../kernels/memory.ts";
import { tensorAllocations } from "../kernels/runtime.ts";
import { benchTraining } from "../kernels/bench/training.ts";
import { memoryTable } from "../kernels/bench/memory-table.ts";
import type { Timer } from "../kernels/bench/timer.ts";

function includes(text: string, part: string): void {
  assert.ok(text.includes(part), `expected "${part}" in: ${text}`);
}

/** The ModelMemoryError `fn` throws (or rejects with). */
async function memoryError(fn: () => unknown): Promise<ModelMemoryError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ModelMemoryError, `expected a ModelMemoryError, got ${err}`);
    return err;
  }
  throw new Error("expected a ModelMemoryError, none was thrown");
}

const tiny: GptConfig = { vocabSize: 32, contextLength: 8, width: 16, layers: 2, heads: 2 };

/** Bytes and tensors one LM training step of a fresh model creates, the model's own parameters included. */
async function allocatedByTrainStep(shape: ModelShape): Promise<{ bytes: number; tensors: number }> {
  const gpu = await getGpu();
  const before = { ...tensorAllocations };
  const model = new GptModel(gpu, tiny, initParameters(tiny, 1), shape);
  model.setBatch({
    tokens: Int32Array.from({ length: shape.batchSize * shape.seqLen }, (_, i) => i % tiny.vocabSize),
    lengths: new Int32Array(shape.batchSize).fill(shape.seqLen),
  });
  model.trainStep("lm");
  await model.readStats();
  model.destroy();
  return {
    bytes: tensorAllocations.bytes - before.bytes,
    tensors: tensorAllocations.tensors - before.tensors,
  };
}

for (
  const shape of [
    { batchSize: 4, seqLen: 8 },
    { batchSize: 3, seqLen: 5, attention: "v2", fuse: false },
    { batchSize: 2, seqLen: 8, attention: "v1" },
    // 1,024 rows: the weight gradients split K (matmul v5) and share one scratch.
    { batchSize: 128, seqLen: 8 },
    { batchSize: 128, seqLen: 8, splitK: false },
  ] as ModelShape[]
) {
  Deno.test(`memory: the estimate equals what a training step allocates (${JSON.stringify(shape)})`, async () => {
    await allocatedByTrainStep({ batchSize: 1, seqLen: 1 }); // once-per-device buffers (matmul's dummy)
    const real = await allocatedByTrainStep(shape);
    assert.deepEqual(modelBuffers(tiny, shape).length, real.tensors);
    assert.deepEqual(modelMemory(tiny, shape).total, real.bytes);
  });
}

Deno.test("memory: parameter bytes match the hand-counted layout of a one-layer model", () => {
  // Matrices (each padded to 64 floats): wte 512, wpe 128, c_attn 768, c_proj 256, c_fc 1024,
  // mlp c_proj 1024, cls 32→64, reward 16→64 = 3840; 11 vectors of ≤ 64 floats → 704. 4544 floats.
  const need = modelMemory({ ...tiny, layers: 1 }, { batchSize: 1, seqLen: 1 });
  assert.deepEqual(need.parameters, 4544 * 4);
  assert.deepEqual(need.gradients, 4544 * 4 + 16); // + the gradient norm's one partial
  assert.deepEqual(need.adamw, 2 * 4544 * 4);
});

Deno.test("memory: GPT-2 124M and XL parameters match their published counts (plus heads, padding)", () => {
  const limits = { maxBufferSize: 2 ** 31 - 1, maxStorageBufferBindingSize: 2 ** 27 };
  const rows = memoryTable(limits);
  for (const [name, published] of [["gpt2-124m", 124_439_808], ["gpt2-xl", 1_557_611_200]] as const) {
    const row = rows.find((r) => r.name === name)!;
    const floats = row.parameters / 4;
    assert(floats >= published && floats < published * 1.001, `${name}: ${floats} floats`);
    assert.deepEqual(row.adamw, 2 * row.parameters);
  }
  const gpt2 = rows.find((r) => r.name === "gpt2-124m")!;
  // Logits, 4·1024 rows of 50257 floats padded to 50304 (a multiple of 64), are its largest tensor:
  // 7 windows of 128 MiB.
  assert.deepEqual([gpt2.largestTensor, gpt2.largestBytes], ["logits", 4 * 1024 * 50304 * 4]);
  assert.deepEqual(gpt2.bindingWindows, Math.ceil((4 * 1024 * 50304 * 4) / 2 ** 27));
  assert.deepEqual(gpt2.problems, []);
  // XL's flat buffers (6.2 GB each) are sharded under maxBufferSize: no longer refused for them.
  const xl = rows.find((r) => r.name === "gpt2-xl")!;
  assert.deepEqual(xl.problems, []);
  assert.ok(xl.largestBytes <= 2 ** 31 - 1, `${xl.largestTensor} ${xl.largestBytes}`);
  assert.match(xl.largestTensor, /^(params|grads|adam [mv]) \[shard \d+\]$|^logits$/);
});

Deno.test("memory: checkModelMemory throws one error naming the size, the need and each limit", async () => {
  const cfg: GptConfig = { vocabSize: 50257, contextLength: 1024, width: 768, layers: 12, heads: 12 };
  const shape = { batchSize: 4, seqLen: 1024 };
  const limits = { maxBufferSize: 2 ** 28, maxStorageBufferBindingSize: 2 ** 27, deviceMemory: 1e9 };
  const err = await memoryError(() => checkModelMemory(cfg, shape, limits));
  for (
    const part of [
      "GPT 768/12",
      "batch 4 × 1024",
      "logits (824 MB)",
      "maxBufferSize (268 MB)",
      "memory (1.0 GB)",
    ]
  ) {
    includes(err.message, part);
  }
  assert.deepEqual(err.problems.length, 2);
  const fits = checkModelMemory(cfg, shape, { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 27 });
  assert.deepEqual(fits.total, modelMemory(cfg, shape).total);
});

Deno.test("memory: the bench's training step refuses a size too large before allocating anything", async () => {
  const gpu = await getGpu();
  const small = { ...gpu, limits: { ...gpu.limits, maxBufferSize: 64 * 1024 } };
  const before = tensorAllocations.tensors;
  const config = { name: "too big", width: 64, layers: 1, heads: 2, batch: 8, context: 64, vocab: 256 };
  const err = await memoryError(() => benchTraining(small, undefined as unknown as Timer, true, [config]));
  includes(err.message, "GPT 64/1");
  assert.deepEqual(tensorAllocations.tensors, before);
});

Deno.test("memory: a forward-only model's estimate equals what it allocates; an evaluator's leaves out the parameters", async () => {
  const gpu = await getGpu();
  await allocatedByTrainStep({ batchSize: 1, seqLen: 1 }); // once-per-device buffers (matmul's dummy)
  const rows = 16, T = 8;
  const batch = {
    tokens: Int32Array.from({ length: rows * T }, (_, i) => (i * 3) % tiny.vocabSize),
    lengths: new Int32Array(rows).fill(T),
  };
  const allocated = async (build: () => GptModel) => {
    const before = tensorAllocations.bytes;
    const model = build();
    model.setBatch(batch);
    model.evalStep("lm"); // the LM head's logits are the largest buffer an evaluation creates
    model.evalStep("cls"); // the final block on the last rows
    model.featuresStep();
    await model.readStats();
    const bytes = tensorAllocations.bytes - before;
    model.destroy();
    return bytes;
  };
  const own = await allocated(() =>
    new GptModel(gpu, tiny, initParameters(tiny, 1), { batchSize: rows, seqLen: T, forwardOnly: true })
  );
  const forwardOnly = modelMemory(tiny, { batchSize: rows, seqLen: T, forwardOnly: true });
  assert.equal(own, forwardOnly.total);
  assert.equal(forwardOnly.gradients + forwardOnly.adamw, 0);
  const training = modelMemory(tiny, { batchSize: rows, seqLen: T });
  assert.ok(forwardOnly.activations < training.activations, "no backward buffers");

  const trainer = new GptModel(gpu, tiny, initParameters(tiny, 1), { batchSize: 2, seqLen: T });
  try {
    const shared = await allocated(() => trainer.evaluator(rows));
    const need = modelMemory(tiny, { batchSize: rows, seqLen: T, forwardOnly: true, sharedParams: true });
    assert.equal(shared, need.total);
    assert.equal(need.total, forwardOnly.total - forwardOnly.parameters);
  } finally {
    trainer.destroy();
  }
});

Deno.test("memory: planEvalRows — EVAL_TOKENS over the example's tokens, capped by the set and by memory", () => {
  const limits = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 };
  const trainingNeed = modelMemory(tiny, { batchSize: 32, seqLen: 6 });
  const rows = (seqLen: number, examples: number, rowsPerExample = 1, deviceMemory?: number) =>
    planEvalRows(
      tiny,
      { seqLen, rowsPerExample, trainRows: 32 * rowsPerExample, examples },
      { ...limits, deviceMemory },
      trainingNeed,
    );
  assert.equal(EVAL_TOKENS, 4096);
  assert.equal(rows(6, 300), 300); // the whole set: 300 rows of 6 tokens
  assert.equal(rows(6, 5000), 682); // ⌊4096 / 6⌋
  assert.equal(rows(6, 300, 2), 2 * 300); // pairs: whole pairs, both rows each
  assert.equal(rows(6, 5000, 2), 2 * 341); // ⌊4096 / 12⌋ pairs
  assert.equal(rows(512, 5000), 32); // 8 rows of 512 tokens are fewer than the training batch's 32
  // Memory for the trainer and barely more: the evaluator halves until it fits, never below the trainer.
  const at = (r: number) =>
    trainingNeed.total +
    modelMemory(tiny, { batchSize: r, seqLen: 6, forwardOnly: true, sharedParams: true }).total;
  assert.equal(rows(6, 5000, 1, at(200)), 170); // 682 → 341 → 170 (⌊341 / 2⌋ fits, 341 does not)
  assert.equal(rows(6, 5000, 1, at(40)), 32); // nothing above the training rows fits
});
