/**
 * The ladder: named GPT sizes pretrained on the same corpus, smallest first. The default ladder
 * (`cpu: true`) pretrains on a 2-core machine; the larger sizes are for GPUs. The vocabulary size
 * comes from the corpus's tokenizer, so a size here is width, depth, heads and a token budget.
 *
 * Measured on this 2-core machine (llvmpipe, batch 16×32, world vocabulary 830), tokens/s of one
 * training step: width/layers 32/1 ≈ 5,400–6,700 unloaded, 1,700 with the machine shared (load 5–8);
 * 64/2 ≈ 3,500 unloaded; 128/3 ≈ 1,350 unloaded, ≈ 500 shared; 192/4 ≈ 450–540 unloaded. A vocabulary
 * of 4,880 instead of ~1,000 makes 32/1 2.6× slower (the LM head dominates small models), hence the
 * 256-merge tokenizer of the lab corpus (server/lab/pretrain.ts). Heads are 16 wide: in an isolated
 * memorization probe (300 one-token entities → 12 regions) 32/1 with 16-wide heads learned every fact
 * within ~130 exposures per fact, 64/1 with 32-wide heads had not started after 130.
 *
 * The default ladder, measured once (all five in 795 s wall, machine shared, load ≈ 5):
 *   size    params  tokens  wall   tok/s  val loss  region recall
 *   nano    17,410  250 k    77 s  3,305  1.903     11.7 %
 *   micro   40,962  250 k    77 s  3,272  1.931     26.6 %
 *   mini    98,930  250 k   126 s  2,007  1.798     22.3 %
 *   small  156,482  250 k   130 s  1,944  1.819     38.7 %
 *   medium 707,842  350 k   385 s    912  2.229     76.2 %
 * Open: the world's validation split is 345 tokens, and the larger sizes grow overconfident on the
 * facts only stated there, so validation loss does not yet fall with size; medium misses the 95 %.
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
    heads: 1,
    contextLength: 32,
    tokens: 250_000,
    batchSize: 16,
    lr: 1e-2,
    cpu: true,
  },
  {
    name: "micro",
    width: 32,
    layers: 1,
    heads: 2,
    contextLength: 32,
    tokens: 250_000,
    batchSize: 16,
    lr: 1e-2,
    cpu: true,
  },
  {
    name: "mini",
    width: 48,
    layers: 2,
    heads: 3,
    contextLength: 32,
    tokens: 250_000,
    batchSize: 16,
    lr: 1e-2,
    cpu: true,
  },
  {
    name: "small",
    width: 64,
    layers: 2,
    heads: 4,
    contextLength: 32,
    tokens: 250_000,
    batchSize: 16,
    lr: 1e-2,
    cpu: true,
  },
  {
    name: "medium",
    width: 128,
    layers: 3,
    heads: 8,
    contextLength: 32,
    tokens: 350_000,
    batchSize: 16,
    lr: 1e-2,
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
