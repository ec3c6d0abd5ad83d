/**
 * Training throughput: tokens/s of a full GptModel step (forward, backward, gradient norm and AdamW in
 * one command encoder, no read-back inside) for a few GPT sizes, with the share of GPU time spent in
 * matmul, dispatches per step and CPU encoding time per step.
 */
import type { Gpu } from "../device.ts";
import { type GptConfig, initParameters, parameterCount } from "../config.ts";
import { GptModel } from "../gpt.ts";
import { type KernelOperands, kernelOperands, setKernelOperands } from "../ops/texture-operand.ts";
import { adapterMemoryLimits, checkModelMemory } from "../memory.ts";
import type { TrainingResult } from "./report.ts";
import type { Timer } from "./timer.ts";

export interface TrainingConfig {
  name: string;
  width: number;
  layers: number;
  heads: number;
  fuse?: boolean;
  /** Where the products read their operands; default the engine's (the autotune's) choice. */
  operands?: KernelOperands;
  /** Batch rows × tokens and vocabulary; default 32 × 64 and bytes (256). */
  batch?: number;
  context?: number;
  vocab?: number;
}

// "unfused" runs the residual adds and GELU as separate dispatches: the fusions' before/after. "buffers"
// and "textures" put every product's operands in storage buffers (v4) or textures (v6) whatever the
// autotune chose for plain "128/4": the same bits, so only the speed differs.
export const TRAINING_CONFIGS: TrainingConfig[] = [
  { name: "64/2", width: 64, layers: 2, heads: 2 },
  { name: "128/4 unfused", width: 128, layers: 4, heads: 4, fuse: false },
  { name: "128/4 buffers", width: 128, layers: 4, heads: 4, operands: "buffers" },
  { name: "128/4 textures", width: 128, layers: 4, heads: 4, operands: "textures" },
  { name: "128/4", width: 128, layers: 4, heads: 4 },
  { name: "192/4", width: 192, layers: 4, heads: 6 },
];

/** The GPT-2-124M-sized step (`--gpt2`), compared with PyTorch on a GPU by scripts/gpu/check.sh. */
export const GPT2_CONFIG: TrainingConfig = {
  name: "gpt2-124m",
  width: 768,
  layers: 12,
  heads: 12,
  batch: 4,
  context: 1024,
  vocab: 50257,
};

/** The benchmarks' batch: every row full, token ids a fixed pattern over the vocabulary. */
export function benchBatch(B: number, T: number, V: number): { tokens: Int32Array; lengths: Int32Array } {
  return {
    tokens: Int32Array.from({ length: B * T }, (_, i) => (i * 31 + 7) % V),
    lengths: new Int32Array(B).fill(T),
  };
}

async function benchOne(gpu: Gpu, timer: Timer, quick: boolean, c: TrainingConfig): Promise<TrainingResult> {
  const chosen = kernelOperands();
  setKernelOperands(c.operands ?? chosen);
  try {
    return await benchSteps(gpu, timer, quick, c);
  } finally {
    setKernelOperands(chosen);
  }
}

async function benchSteps(
  gpu: Gpu,
  timer: Timer,
  quick: boolean,
  c: TrainingConfig,
): Promise<TrainingResult> {
  const B = c.batch ?? 32, T = c.context ?? 64, V = c.vocab ?? 256;
  const cfg: GptConfig = { vocabSize: V, contextLength: T, width: c.width, layers: c.layers, heads: c.heads };
  // A size this adapter cannot hold is refused with one named error before anything is allocated.
  checkModelMemory(cfg, { batchSize: B, seqLen: T, fuse: c.fuse }, adapterMemoryLimits(gpu));
  const model = new GptModel(gpu, cfg, initParameters(cfg, 1), { batchSize: B, seqLen: T, fuse: c.fuse });
  model.setBatch(benchBatch(B, T, V));
  model.trainStep("lm");
  await model.readStats();
  const steps = quick ? 2 : 5;
  let encodeMs = 0;
  const start = performance.now();
  for (let i = 0; i < steps; i++) {
    model.trainStep("lm");
    encodeMs += model.lastEncodeMs;
  }
  await model.readStats();
  const msPerStep = (performance.now() - start) / steps;
  const dispatches = model.dispatches("lm");
  const each = await timer.each(dispatches);
  const total = each.reduce((s, x) => s + x, 0);
  const matmul = each.reduce((s, x, i) => s + (dispatches[i].family === "matmul" ? x : 0), 0);
  model.destroy();
  return {
    name: c.name,
    width: c.width,
    layers: c.layers,
    contextLength: T,
    batchSize: B,
    vocabSize: V,
    params: parameterCount(cfg),
    tokensPerSecond: (B * T) / (msPerStep / 1000),
    msPerStep,
    matmulShare: matmul / total,
    dispatchesPerStep: dispatches.length,
    encodeMsPerStep: encodeMs / steps,
  };
}

/** Each configuration in turn (default TRAINING_CONFIGS), one model at a time. */
export async function benchTraining(
  gpu: Gpu,
  timer: Timer,
  quick: boolean,
  configs = TRAINING_CONFIGS,
): Promise<TrainingResult[]> {
  const results: TrainingResult[] = [];
  for (const c of configs) results.push(await benchOne(gpu, timer, quick, c));
  return results;
}
