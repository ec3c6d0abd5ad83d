/** The model ladder as the API lists it and the dashboard and the CLI read it; imported models beside it. */
import { z } from "zod";
import { text } from "./fields.ts";
import type { Interval } from "./results.ts";

/** Built-in tasks' test items a real corpus left out (within its character budget). */
export interface ExcludedItems {
  /** WordNet synsets dropped because one of their lemmas is a test item. */
  wordnetSynsets: number;
  /** Distinct test-item lemmas among the dropped synsets. */
  wordnetLemmas: number;
  /** Paragraphs dropped per source because they quote a test passage. */
  paragraphsBySource: Record<string, number>;
}

/** What a size was pretrained on, as far as tasks' test items go (the `corpus` of its status.json). */
export interface PretrainCorpus {
  /** Share of training windows from the real corpus (0: the knowledge world alone, no text task's items). */
  realShare: number;
  /** True: the built-in tasks' test items were let into the real corpus (the leakage ablation). */
  leakage: boolean;
  /** Task split seeds whose test items were kept out ([] when nothing was: world only, or leakage on). */
  splitSeeds: number[];
  excluded: ExcludedItems;
}

/** A snapshot kept along a size's pretraining: a strong model for experiments, named by `ref`. */
export interface SnapshotEntry {
  /** "medium@30" (model-ref.ts): what an experiment's strong model or a sweep's sizes name. */
  ref: string;
  /** Percent of the size's token budget; 100 is the final model. */
  pct: number;
  step: number;
  /** Tokens seen when it was taken. */
  tokens: number;
  /** Recall of the knowledge world's first attribute (region) then; null when the corpus has no world. */
  recall: number | null;
  /** Entities asked; null when the snapshot's report has no counts. */
  n: number | null;
  /** The recall's 95 % Wilson interval over those entities; null without n. */
  ci: Interval | null;
}

/** One size's pretraining on disk, as the model store reads `<dataDir>/models/<size>/`. */
export interface LadderEntry {
  name: string;
  params: number;
  /** Pretraining budget in tokens (of the finished or partial run when there is one). */
  tokens: number;
  status: "pretrained" | "partial" | "missing" | "broken";
  /** Why its status.json or checkpoint cannot be used (status "broken"). */
  brokenReason?: string;
  val_loss: number | null;
  /** Recall of the knowledge attribute (region) at the last evaluation. */
  knowledge?: number | null;
  /** Its 95 % Wilson interval over the entities asked (knowledgeInterval); null where none is known. */
  knowledgeCi?: Interval | null;
  wallSeconds?: number;
  step?: number;
  totalSteps?: number;
  /** Its corpus's leakage facts; null when its status predates them (a cached `lab pretrain` records them). */
  corpus?: PretrainCorpus | null;
  /** Snapshots along its pretraining, earliest first. */
  snapshots?: SnapshotEntry[];
  cpu: boolean;
}

/** The shape and budget of one ladder size (the lab's ladder.ts adds its training settings). */
export interface LadderShape {
  name: string;
  width: number;
  layers: number;
  heads: number;
  contextLength: number;
  /** Pretraining budget in tokens. */
  tokens: number;
  /** Part of the default ladder that runs on a CPU adapter. */
  cpu: boolean;
}

/** What registering a Hugging Face GPT-2 folder found (server/lab/own-models.ts). */
export interface OwnModelInfo {
  /** sha-256 of model.safetensors: checked on every load, part of every cache key. */
  sha256: string;
  /** The tokenizer's id; a ladder's models share one. */
  tokenizer: string;
  /** Where it came from: "vocab.json + merges.txt", or "GPT-2's own BPE" when the folder has neither. */
  tokenizerFiles: string;
  /** Adapter memory to finetune at the full context: the least (batch 1) and at the default batch. */
  memory: {
    seqLen: number;
    leastBytes: number;
    defaultBatch: number;
    defaultBatchBytes: number;
    /** Limits of this adapter the least need breaks (registration refuses any). */
    problems: string[];
    /** Examples per micro-batch that run the default batch on this adapter (gradient accumulation below it). */
    microBatch?: number;
    /** The default batch's plan in words: micro-batches and the need, AdamW state named (planMicroBatch). */
    plan?: string;
  };
  addedAt: string;
}

/** One size of the ladder: its shape, the checkpoint on disk and what the database knows (a live job). */
export interface ModelListing extends LadderShape {
  params: number;
  /** queued | pretraining (a live job) | pretrained | partial (resumable) | missing | broken | failed */
  status: string;
  /** Why its files on disk cannot be used (status "broken"); null otherwise. */
  brokenReason: string | null;
  valLoss: number | null;
  /** Region recall of the knowledge world at the last evaluation. */
  knowledge: number | null;
  /** Its 95 % Wilson interval over the entities asked; null where none is known. */
  knowledgeCi: Interval | null;
  step: number | null;
  totalSteps: number | null;
  checkpointPath: string | null;
  /** What its corpus held of the tasks' test items; null when not pretrained or not recorded. */
  corpus: PretrainCorpus | null;
  /** Snapshots along its pretraining (usable as strong models), earliest first; [] when none. */
  snapshots: SnapshotEntry[];
  pretrainInfo: unknown;
  jobId: number | null;
  /**
   * "ladder": a size of the lab's ladder; "imported": a registered Hugging Face GPT-2 folder (status
   * "imported" or "broken", tokens 0: its pretraining is not the lab's). Absent reads as "ladder".
   */
  source?: "ladder" | "imported";
  /** What registering an imported model found; null for the ladder's sizes. */
  imported?: OwnModelInfo | null;
}

/** "wordnet: 5,120 synsets (4,010 lemmas); sotu: 61 paragraphs" — what the exclusions took, per source. */
export function describeExcluded(excluded: ExcludedItems): string {
  const count = (n: number) => n.toLocaleString("en-US");
  const parts: string[] = [];
  for (const [source, paragraphs] of Object.entries(excluded.paragraphsBySource)) {
    if (source === "world") continue; // the world holds no text task's items
    const synsets = source === "wordnet"
      ? `${count(excluded.wordnetSynsets)} synsets (${count(excluded.wordnetLemmas)} lemmas)`
      : "";
    const text = source !== "wordnet" || paragraphs > 0 ? `${count(paragraphs)} paragraphs` : "";
    parts.push(`${source}: ${[synsets, text].filter(Boolean).join(", ")}`);
  }
  return parts.length > 0 ? parts.join("; ") : "nothing";
}

/** One word or two for a size's leakage setting: what a listing shows. */
export function leakageLabel(corpus: PretrainCorpus | null | undefined): string {
  if (!corpus) return "not recorded";
  if (corpus.realShare === 0) return "world only";
  return corpus.leakage ? "leakage on" : `kept out (seeds ${corpus.splitSeeds.join(",")})`;
}

/** POST /models/import: register the Hugging Face GPT-2 folder `dir` (on the server's disk) as `name`. */
export const OwnModelImport = z.object({
  name: text("name").max(64),
  dir: text("dir").max(4096),
  /** Replace a model registered under the same name. */
  force: z.boolean().default(false),
}).strict().meta({ id: "OwnModelImport" });
export type OwnModelImport = z.infer<typeof OwnModelImport>;
