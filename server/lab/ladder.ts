/**
 * The ladder: named GPT sizes pretrained on the same corpus, smallest first. The default ladder
 * (`cpu: true`) pretrains on a 2-core machine; the larger sizes are for GPUs. The vocabulary size
 * comes from the corpus's tokenizer, so a size here is width, depth, heads and a token budget.
 */

export interface LadderSize {
  name: string;
  width: number;
  layers: number;
  heads: number;
  contextLength: number;
  /** Pretraining budget in tokens. */
  tokens: number;
  /** Rows per optimizer step (each row is contextLength tokens). */
  batchSize: number;
  /** Peak AdamW learning rate (linear warmup, cosine decay to a tenth). */
  lr: number;
  /** Part of the default ladder that runs on a CPU adapter. */
  cpu: boolean;
}

export const LADDER: readonly LadderSize[] = [
  {
    name: "nano",
    width: 16,
    layers: 1,
    heads: 2,
    contextLength: 32,
    tokens: 300_000,
    batchSize: 32,
    lr: 1e-2,
    cpu: true,
  },
  {
    name: "micro",
    width: 32,
    layers: 1,
    heads: 2,
    contextLength: 32,
    tokens: 300_000,
    batchSize: 32,
    lr: 8e-3,
    cpu: true,
  },
  {
    name: "mini",
    width: 48,
    layers: 2,
    heads: 3,
    contextLength: 32,
    tokens: 300_000,
    batchSize: 32,
    lr: 6e-3,
    cpu: true,
  },
  {
    name: "small",
    width: 64,
    layers: 2,
    heads: 4,
    contextLength: 32,
    tokens: 300_000,
    batchSize: 32,
    lr: 5e-3,
    cpu: true,
  },
  {
    name: "medium",
    width: 128,
    layers: 3,
    heads: 4,
    contextLength: 32,
    tokens: 300_000,
    batchSize: 32,
    lr: 3e-3,
    cpu: true,
  },
  {
    name: "large",
    width: 384,
    layers: 6,
    heads: 6,
    contextLength: 128,
    tokens: 50_000_000,
    batchSize: 32,
    lr: 1e-3,
    cpu: false,
  },
  {
    name: "xl",
    width: 768,
    layers: 12,
    heads: 12,
    contextLength: 256,
    tokens: 300_000_000,
    batchSize: 32,
    lr: 6e-4,
    cpu: false,
  },
];

export function ladderSize(name: string): LadderSize {
  const size = LADDER.find((s) => s.name === name);
  if (!size) {
    throw new Error(`unknown ladder size "${name}"; known sizes: ${LADDER.map((s) => s.name).join(", ")}`);
  }
  return size;
}

/** Index of a size in the ladder (its rank by capacity). */
export function ladderRank(name: string): number {
  return LADDER.indexOf(ladderSize(name));
}
