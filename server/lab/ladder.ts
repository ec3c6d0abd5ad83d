/**
 * The ladder: named GPT sizes pretrained on the same corpus, smallest first. The default ladder
 * (`cpu: true`) pretrains on a 2-core machine; the larger sizes are for GPUs. The vocabulary size
 * comes from the corpus's tokenizer, so a size here is width, depth, heads and a token budget.
 *
 * The LM head dominates small models, hence the lab corpus's small 256-merge tokenizer (lab-corpus.ts);
 * heads are 16 wide because narrow heads memorized facts sooner than wide ones in a probe.
 * Budgets grow with size so that recall rises and validation loss falls at every step up.
 */

import { refSize } from "../contract/model-ref.ts";
import type { LadderShape } from "../contract/models.ts";
import type { FinetuneRecipe } from "../contract/results.ts";
import type { TaskFormat } from "../tasks/types.ts";
import { didYouMean } from "../tasks/did-you-mean.ts";

export interface LadderSize extends LadderShape {
  /** Rows per optimizer step (each row is contextLength tokens). */
  batchSize: number;
  /** Peak AdamW learning rate (linear warmup, cosine decay to a tenth). */
  lr: number;
}

export const LADDER: readonly LadderSize[] = [
  {
    name: "nano",
    width: 16,
    layers: 1,
    heads: 1,
    contextLength: 32,
    tokens: 300_000,
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
    tokens: 600_000,
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
    tokens: 1_000_000,
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
    tokens: 1_500_000,
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
    tokens: 2_000_000,
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
    const known = LADDER.map((s) => s.name);
    throw new Error(
      `unknown ladder size "${name}"; known sizes: ${known.join(", ")}${didYouMean(name, known)}`,
    );
  }
  return size;
}

/** Index of a size in the ladder (its rank by capacity). */
export function ladderRank(name: string): number {
  return LADDER.indexOf(ladderSize(name));
}

/**
 * How a size is finetuned, whatever its role (weak, ceiling, student or bootstrap step), with the recipe
 * options (FINETUNE_RECIPE).
 */
export interface SizeHyper extends FinetuneRecipe {
  epochs: number;
  lr: number;
  batchSize: number;
  /** α_max of the aux confidence loss when this size is the student. */
  alphaMax: number;
  /** Share of the steps with a linear learning-rate warmup. */
  warmupFraction: number;
  weightDecay: number;
}

/**
 * The default finetuning recipe, chosen on validation only (`lab recipes`, README "Choosing the finetuning
 * recipe"): the class head starts as a logistic probe fitted on the pretrained features (LP-FT), the token
 * and position embeddings are frozen, and every size finetunes at lr 1e-4 — plain full finetuning at 1e-3
 * lowered the ceilings and gave no PGR.
 */
export const BASE_HYPER: SizeHyper = {
  epochs: 4,
  lr: 1e-4,
  batchSize: 32,
  alphaMax: 0.5,
  warmupFraction: 0.1,
  weightDecay: 0.01,
  embeddings: "frozen",
  headInit: "probe",
};

/** Per-size departures from the base: the largest students use α_max = 0.75 as in the paper. */
export const FINETUNE_BY_SIZE: Record<string, Partial<SizeHyper>> = {
  medium: { alphaMax: 0.75 },
  large: { alphaMax: 0.75 },
  xl: { alphaMax: 0.75 },
};

/**
 * Pairwise (reward-model) tasks depart from the base, chosen on validation the same way (README, "Reward
 * modeling"): at lr 1e-4 for 4 epochs the reward head barely leaves its probe; lr 1e-3 for 8 epochs raises
 * every reward model to about what its size knows (world-prefer-region: micro 72 → 92 %, small 82 → 92 %).
 */
export const PAIRWISE_HYPER: Partial<SizeHyper> = { lr: 1e-3, epochs: 8 };

/**
 * A size's finetune settings (a snapshot SIZE@PCT takes its size's): the base, the task format's, the
 * size's own, the overrides.
 */
export function sizeHyper(
  size: string,
  overrides: Partial<SizeHyper> = {},
  format: TaskFormat = "classification",
): SizeHyper {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const byFormat = format === "pairwise" ? PAIRWISE_HYPER : {};
  return { ...BASE_HYPER, ...byFormat, ...FINETUNE_BY_SIZE[refSize(size)], ...defined };
}
