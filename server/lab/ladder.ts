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
 * The default ladder, measured once (all five in 541 s wall, machine shared, load ≈ 2; world of 400
 * entities, paraphrase augmentation, validation = restatements of trained facts, see pretrain.ts):
 *   size    params  tokens  wall   tok/s   val loss  region recall (all 400 entities)
 *   nano    19,010  200 k    20 s  10,142  1.901      9.5 % (chance 8.3 %)
 *   micro   44,162  300 k    31 s   9,985  1.678     21.8 %
 *   mini   103,730  400 k    68 s   5,968  1.448     84.0 %
 *   small  162,882  500 k    91 s   5,540  1.386    100.0 %
 *   medium 720,642  750 k   329 s   2,292  1.339    100.0 %
 * Budgets grow with size so that recall rises and validation loss falls at every step up. Knowledge
 * arrives as a jump, recorded along the curve (status.json): medium recalls 11 % at 30 % of its run,
 * 46 % at 35 %, 99 % at 55 %; small 11 % at 35 %, 58 % at 55 %, 100 % at 90 %.
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
    tokens: 200_000,
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
    tokens: 300_000,
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
    tokens: 400_000,
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
    tokens: 500_000,
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
    tokens: 750_000,
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
