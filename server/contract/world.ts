/** What the API and the CLI show of a world (its definition's schema is server/corpus/world-schema.ts). */

import type { WorldSpec } from "../corpus/world-schema.ts";
import type { Interval } from "./results.ts";

export type { WorldSpec };

/** What `lab world` and GET /api/world show of the lab's world. */
export interface WorldSummary {
  key: string;
  spec: WorldSpec;
  entities: number;
  /** Statements in the pretraining rendering (entity facts + derived facts). */
  statements: number;
  attributes: { name: string; values: string[]; invented: boolean; meanStated: number }[];
  derived: { name: string; of: string; map: Record<string, string> }[];
  tasks: WorldTaskSummary[];
}

export interface WorldTaskSummary {
  name: string;
  description: string;
  difficulty: "easy" | "medium" | "hard";
  type: "attribute" | "derived" | "relation" | "preference";
  /** Examples per split with split seed 0 (balanced). */
  splits: { train1: number; train2: number; validation: number; test: number };
  /** A lookup on name pieces and template words, fitted on the finetuning splits, scored on test. */
  surfaceCue: { accuracy: number; low: number; high: number; atChance: boolean };
}

/** GET /api/world: the summary, and what each pretrained size of this world knows at each snapshot. */
export interface WorldOverview extends WorldSummary {
  /** Ladder sizes with snapshots on disk for this world, smallest first. */
  models: WorldModelKnowledge[];
}

export interface WorldModelKnowledge {
  size: string;
  /** Earliest first; 100 is the final model. */
  snapshots: { pct: number; tokens: number; attributes: AttributeRecall[] }[];
}

/** Recall of one attribute's values (the knowledge report without its per-entity predictions). */
export interface AttributeRecall {
  attribute: string;
  /** Entities asked about. */
  n: number;
  accuracy: number;
  /** 95 % Wilson interval of the accuracy over the n entities. */
  ci: Interval;
  /** Accuracy of always answering the most frequent value. */
  majority: number;
  candidates: number;
  /**
   * By times the fact was stated in pretraining ("0", "1", "2-3", "4-8", "9+"); accuracy and its Wilson
   * interval null when n = 0.
   */
  buckets: { label: string; n: number; accuracy: number | null; ci: Interval | null }[];
}
