/**
 * The lab corpus: what the ladder pretrains on. It is the knowledge world (server/corpus/world.ts),
 * optionally mixed with the real corpus: `realShare` of the training windows then come from WordNet /
 * SOTU / Moby-Dick and the users' files. One tokenizer serves both (the world's: the real corpus's ids
 * are a prefix of its vocabulary). The real corpus leaves out the test items of the built-in text tasks
 * for the split seeds the ladder serves, unless `leakage` lets them in.
 */

import { createHash } from "node:crypto";
import { buildCorpus, type BuiltinSource, type Corpus, type TokenArray } from "../corpus/corpus.ts";
import { builtinExclusionsForSeeds } from "../tasks/registry.ts";
import type { PretrainCorpus } from "../contract/models.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import { type LeaveOut, type World, worldStatementVariants } from "../corpus/world.ts";
import { activeWorldSpec, type WorldKnobs } from "../corpus/world-spec.ts";
import type { WorldSpec } from "../corpus/world-schema.ts";

export interface LabCorpusOptions {
  /** The knowledge world (default: the lab's world for the data directory, world-spec.ts; knobs turn
   * the classic world's, for small test worlds). */
  world?: WorldSpec | Partial<WorldKnobs>;
  worldLeaveOut?: LeaveOut;
  /** Share of training windows drawn from the real corpus (0: the world alone). */
  realShare?: number;
  realSources?: BuiltinSource[];
  /** Users' plain-text or JSONL files, part of the real corpus. */
  realFiles?: string[];
  /** Character budget of the real corpus (all sources together). */
  realMaxChars?: number;
  /** Tokenizer: GPT-2's first K merges. */
  merges?: number;
  /** Seed of the train/validation split. */
  seed?: number;
  /** World windows re-draw each statement's wording from its templates on every use (default true). */
  paraphrase?: boolean;
  /** Let the built-in tasks' test items into the real corpus (the leakage ablation; needs realShare > 0). */
  leakage?: boolean;
  /** Task split seeds whose test items the real corpus leaves out (see DEFAULT_LAB_CORPUS). */
  splitSeeds?: number[];
}

/**
 * What the default ladder pretrains on: the lab's world (server/corpus/world-spec.ts: a world file; the
 * default is server/corpus/worlds/default.json), alone. The default world is small so that every size
 * sees each fact the tens of times memorizing it takes within a CPU pretraining budget.
 *
 * Validation on the world is NOT a held-out share of documents: a held-out document's facts are stated
 * nowhere in training, so no model can learn them and larger models grew overconfident on them
 * (validation loss rose with size). Training gets every statement; validation is one fresh restatement
 * (template drawn with another seed) of every fact training states, plus one statement of each derived
 * fact per value (renderWorldValidation) — it measures what pretraining can learn. The real corpus
 * keeps its split by document.
 *
 * Split seeds 0, 1, 2: an experiment's split seed is its `seed` (default 0) and a three-seed sweep uses
 * 0, 1, 2, so these are the seeds whose test items a real-text ladder keeps out by default; an experiment
 * with another seed needs a ladder pretrained with it (model-source.ts, leakageError).
 */
export const DEFAULT_LAB_CORPUS: Required<Omit<LabCorpusOptions, "worldLeaveOut" | "world">> = {
  realShare: 0,
  realSources: ["wordnet", "sotu", "moby-dick"],
  realFiles: [],
  realMaxChars: 4_000_000,
  merges: 256,
  seed: 1,
  paraphrase: true,
  leakage: false,
  splitSeeds: [0, 1, 2],
};

export interface LabCorpus {
  world: Corpus;
  real?: Corpus;
  realShare: number;
  tokenizer: Tokenizer;
  /** Identifies the training data: both corpora's hashes, the mix and what was kept out. */
  hash: string;
  /** What the ladder pretrained on as far as tasks' test items go (written into each size's status). */
  facts: PretrainCorpus;
  /** Start offsets of the world's training sentences (each opens with its "." token), plus the end. */
  worldSentenceStarts: Int32Array;
  /** Paraphrase augmentation: every wording of each training statement, as tokens opening with ".". */
  worldVariants?: Int32Array[][];
}

/** Offsets where the world's sentences start: at every "." token (the rendering opens each with ". "). */
export function sentenceStarts(tokens: TokenArray, periodId: number): Int32Array {
  const starts: number[] = [];
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === periodId || i === 0) starts.push(i);
  starts.push(tokens.length);
  return Int32Array.from(starts);
}

type ResolvedLabCorpus = typeof DEFAULT_LAB_CORPUS;

/** The split seeds, checked, without repeats and in order (they are part of the corpus's identity). */
function checkedSplitSeeds(seeds: number[]): number[] {
  if (!Array.isArray(seeds) || seeds.length === 0) {
    throw new Error("splitSeeds must name at least one task split seed");
  }
  for (const seed of seeds) {
    if (!Number.isInteger(seed) || seed < 0) {
      throw new Error(`splitSeeds must be non-negative integers, got ${JSON.stringify(seed)}`);
    }
  }
  return [...new Set(seeds)].sort((a, b) => a - b);
}

/** The real corpus, without the split seeds' test items of the built-in text tasks unless leakage is on. */
async function loadRealCorpus(dataDir: string, o: ResolvedLabCorpus, splitSeeds: number[]): Promise<Corpus> {
  return await buildCorpus({
    dataDir,
    sources: o.realSources,
    files: o.realFiles,
    maxChars: o.realMaxChars,
    merges: o.merges,
    seed: o.seed,
    exclude: o.leakage ? undefined : await builtinExclusionsForSeeds(splitSeeds),
    leakage: o.leakage,
  });
}

const sha16 = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

/** The training data's identity; the world-only corpus keeps the hash it has always had. */
function labCorpusHash(o: ResolvedLabCorpus, world: Corpus, real: Corpus | undefined, splitSeeds: number[]) {
  // The augmentation changes what is trained on, so it is part of the training data's identity.
  const worldId = o.paraphrase ? `${world.manifest.hash}+paraphrase` : world.manifest.hash;
  if (!real) return o.paraphrase ? sha16(worldId) : world.manifest.hash;
  // Leakage on keeps the id real-text ladders had before test items were kept out (none were then).
  const keptOut = o.leakage ? "" : `+kept-out:${splitSeeds.join(",")}`;
  return sha16(`${worldId}+${real.manifest.hash}@${o.realShare}${keptOut}`);
}

/** What a size's status records of its corpus: the mix, the leakage setting and what was kept out. */
function corpusFacts(o: ResolvedLabCorpus, real: Corpus | undefined, splitSeeds: number[]): PretrainCorpus {
  const excluded = real?.manifest.excluded;
  return {
    realShare: o.realShare,
    leakage: o.leakage,
    splitSeeds: real && !o.leakage ? splitSeeds : [],
    excluded: {
      wordnetSynsets: excluded?.wordnetSynsets ?? 0,
      wordnetLemmas: excluded?.wordnetLemmas ?? 0,
      paragraphsBySource: excluded?.paragraphsBySource ?? {},
    },
  };
}

export async function loadLabCorpus(dataDir: string, opts: LabCorpusOptions = {}): Promise<LabCorpus> {
  // An option given as undefined takes the default (callers pass flags through as they are).
  const given = Object.fromEntries(Object.entries(opts).filter(([, value]) => value !== undefined));
  const o: ResolvedLabCorpus = { ...DEFAULT_LAB_CORPUS, ...given };
  if (!(o.realShare >= 0 && o.realShare < 1)) {
    throw new Error(`realShare must be in [0, 1), got ${o.realShare}`);
  }
  if (o.realFiles.length > 0 && o.realShare === 0) {
    throw new Error("corpus files join the real corpus: give realShare > 0 (--real-share) to train on them");
  }
  if (o.leakage && o.realShare === 0) {
    throw new Error(
      "leakage lets the text tasks' test items into the real corpus, and the world alone holds none: " +
        "give realShare > 0 (--real-share) with it",
    );
  }
  const splitSeeds = checkedSplitSeeds(o.splitSeeds);
  const world = await buildCorpus({
    dataDir,
    sources: [],
    world: opts.world ?? activeWorldSpec(dataDir),
    worldLeaveOut: opts.worldLeaveOut,
    merges: o.merges,
    seed: o.seed,
  });
  const real = o.realShare > 0 ? await loadRealCorpus(dataDir, o, splitSeeds) : undefined;
  // Same merges, no added tokens: its ids are a prefix of the world tokenizer's vocabulary.
  if (real && real.tokenizer.vocabSize > world.tokenizer.vocabSize) {
    throw new Error("the real corpus's vocabulary is larger than the world's; use the same merges");
  }
  const [periodId] = world.tokenizer.encode(".");
  const worldSentenceStarts = sentenceStarts(world.train, periodId);
  const worldVariants = o.paraphrase && world.world
    ? worldStatementVariants(world.world, { leaveOut: opts.worldLeaveOut }).map((wordings) =>
      wordings.map((w) => Int32Array.from(world.tokenizer.encode(". " + w)))
    )
    : undefined;
  return {
    world,
    real,
    realShare: o.realShare,
    tokenizer: world.tokenizer,
    hash: labCorpusHash(o, world, real, splitSeeds),
    facts: corpusFacts(o, real, splitSeeds),
    worldSentenceStarts,
    worldVariants,
  };
}

/** The knowledge world a lab corpus renders. */
export function corpusWorld(corpus: LabCorpus): World {
  if (!corpus.world.world) throw new Error("the lab corpus has no knowledge world");
  return corpus.world.world;
}

/** The world the lab corpus of these options renders (for knowledge reports). */
export async function labWorld(
  dataDir: string,
  opts?: LabCorpusOptions,
): Promise<{ world: World; tokenizer: Tokenizer }> {
  const corpus = await loadLabCorpus(dataDir, opts);
  return { world: corpusWorld(corpus), tokenizer: corpus.tokenizer };
}
