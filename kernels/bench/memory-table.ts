/**
 * The memory table of `deno task bench`: adapter bytes each model size needs for its training step
 * (kernels/memory.ts: parameters, gradients, AdamW, activations) and the limits of this adapter it
 * breaks. Nothing is allocated: the GPT-2 ladder up to XL is listed on any adapter.
 */
import { type GptConfig, paramLayout } from "../config.ts";
import { bindingWindows, flatShards, type MemoryLimits, memoryProblems, modelMemory } from "../memory.ts";
import type { MemoryRow } from "./report.ts";
import { GPT2_CONFIG, TRAINING_CONFIGS, type TrainingConfig } from "./training.ts";

/** The paper's GPT-2 ladder beyond 124M, at the --gpt2 step's batch (4 × 1024). */
export const GPT2_LADDER: TrainingConfig[] = [
  { ...GPT2_CONFIG, name: "gpt2-medium", width: 1024, layers: 24, heads: 16 },
  { ...GPT2_CONFIG, name: "gpt2-large", width: 1280, layers: 36, heads: 20 },
  { ...GPT2_CONFIG, name: "gpt2-xl", width: 1600, layers: 48, heads: 25 },
];

/** The model config and batch shape of a benchmark size (defaults: batch 32 × 64, vocabulary 256). */
export function trainingShape(c: TrainingConfig): { cfg: GptConfig; batchSize: number; seqLen: number } {
  const batchSize = c.batch ?? 32, seqLen = c.context ?? 64, vocabSize = c.vocab ?? 256;
  const cfg = { vocabSize, contextLength: seqLen, width: c.width, layers: c.layers, heads: c.heads };
  return { cfg, batchSize, seqLen };
}

/** One row per size: the bench's training sizes, then GPT-2 124M to XL. */
export function memoryTable(
  limits: MemoryLimits,
  // The operand rows (128/4 on buffers, on textures) are 128/4's shape again.
  configs: TrainingConfig[] = [...TRAINING_CONFIGS.filter((c) => !c.operands), GPT2_CONFIG, ...GPT2_LADDER],
): MemoryRow[] {
  return configs.map((c) => {
    const { cfg, batchSize, seqLen } = trainingShape(c);
    const need = modelMemory(cfg, { batchSize, seqLen, fuse: c.fuse, maxBufferSize: limits.maxBufferSize });
    return {
      name: c.name,
      width: c.width,
      layers: c.layers,
      batchSize,
      contextLength: seqLen,
      vocabSize: cfg.vocabSize,
      parameters: need.parameters,
      gradients: need.gradients,
      adamw: need.adamw,
      activations: need.activations,
      total: need.total,
      largestTensor: need.largest.label,
      largestBytes: need.largest.bytes,
      bindingWindows: bindingWindows(need, limits),
      flatShards: flatShards(paramLayout(cfg), limits.maxBufferSize).length,
      problems: memoryProblems(need, limits),
    };
  });
}
