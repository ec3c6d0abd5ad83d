/**
 * The registry of built-in real-text tasks: metadata (cheap, synchronous) and seeded loaders. Every task
 * is a builder (a TaskSource: grouped examples and the items that must stay out of pretraining) followed
 * by the shared group-disjoint, balanced split (splits.ts). The derivation of each task is documented in
 * its builder module: wordnet-tasks.ts, text-tasks.ts. World tasks come from the world file
 * (world-tasks.ts): their names start with "world-".
 */

import { splitByGroup } from "./splits.ts";
import { plain, type TaskSource } from "./source.ts";
import { polaritySource, sotuSource, spamSource } from "./text-tasks.ts";
import type { TaskInfo, TaskSplits } from "./types.ts";
import { antonymSource, concreteSource, glossSource, hypernymySource } from "./wordnet-tasks.ts";

export const BUILTIN_TASKS: TaskInfo[] = [
  {
    name: "polarity",
    description: "Opinion-word polarity from the Liu lexicon; AFINN words unseen in Liu as a transfer set",
    kind: "text",
    format: "classification",
  },
  {
    name: "hypernymy",
    description: "WordNet: is a X a kind of Y? (ancestors at distance ≥ 2, sibling-category negatives)",
    kind: "text",
    format: "classification",
  },
  {
    name: "concrete",
    description: "WordNet: concrete vs abstract noun (lexicographer files)",
    kind: "text",
    format: "classification",
  },
  {
    name: "antonym",
    description: "WordNet: antonym vs synonym adjective pairs (no prefix pairs)",
    kind: "text",
    format: "classification",
  },
  {
    name: "gloss",
    description: "WordNet: a noun with its own definition vs one from the same category",
    kind: "text",
    format: "classification",
  },
  {
    name: "sotu-era",
    description: "State of the Union: 5-sentence chunk from 1790–1900 vs 1901–2021 (presidents held out)",
    kind: "text",
    format: "classification",
  },
  {
    name: "spam",
    description: "SpamAssassin spam vs ham, subject and body only (easy control)",
    kind: "control",
    format: "classification",
  },
];

const BUILDERS: Record<string, (seed: number) => Promise<TaskSource>> = {
  polarity: polaritySource,
  hypernymy: hypernymySource,
  concrete: concreteSource,
  antonym: antonymSource,
  gloss: glossSource,
  "sotu-era": sotuSource,
  spam: spamSource,
};

interface BuiltTask {
  splits: TaskSplits;
  /** Exclusion items of the test split and of the extra sets. */
  testExclusions: string[];
  exclusionKind: TaskSource["exclusionKind"];
}

const built = new Map<string, Promise<BuiltTask>>();

/** Forgets built tasks (tests use it to check that a rebuild gives the same splits). */
export function clearBuiltinTaskCache(): void {
  built.clear();
}

function build(name: string, seed: number): Promise<BuiltTask> {
  const builder = BUILDERS[name];
  if (!builder) {
    throw new Error(
      `unknown task "${name}"; built-in tasks are: ${BUILTIN_TASKS.map((t) => t.name).join(", ")}`,
    );
  }
  if (!Number.isInteger(seed)) throw new Error(`task seed must be an integer, got ${seed}`);
  const key = `${name}:${seed}`;
  let task = built.get(key);
  if (!task) {
    task = builder(seed).then((source) => splitSource(name, seed, source));
    // A failed build is not cached, so a later call can retry (e.g. after `deno install`).
    task.catch(() => built.delete(key));
    built.set(key, task);
  }
  return task;
}

function splitSource(name: string, seed: number, source: TaskSource): BuiltTask {
  const { splits, groupsOf } = splitByGroup(source.examples, {
    seed,
    salt: name,
    fractions: source.fractions,
    balance: true,
  });
  const testExclusions = new Set<string>();
  for (const ex of source.examples) {
    if (groupsOf.test.has(ex.group)) ex.exclude?.forEach((item) => testExclusions.add(item));
  }
  if (source.extra) {
    splits.extra = {};
    for (const [setName, examples] of Object.entries(source.extra)) {
      splits.extra[setName] = plain(examples);
      examples.forEach((ex) => ex.exclude?.forEach((item) => testExclusions.add(item)));
    }
  }
  return { splits, testExclusions: [...testExclusions].sort(), exclusionKind: source.exclusionKind };
}

/** Seeded, balanced train1/train2/validation/test splits of a built-in task (cached per name and seed). */
export async function loadBuiltinTask(name: string, opts: { seed: number }): Promise<TaskSplits> {
  const { splits } = await build(name, opts.seed);
  // Copies, so a caller that mutates its splits cannot corrupt the cache.
  const copy = (list: TaskSplits["test"]) => list.map((e) => ({ ...e }));
  return {
    train1: copy(splits.train1),
    train2: copy(splits.train2),
    validation: copy(splits.validation),
    test: copy(splits.test),
    ...(splits.extra
      ? { extra: Object.fromEntries(Object.entries(splits.extra).map(([k, v]) => [k, copy(v)])) }
      : {}),
  };
}

/**
 * What the pretraining corpus must leave out so that no built-in real-text task's test answers are
 * stated in pretraining: `wordnetLemmas` — lemmas in WordNet spelling (lowercase, underscores for
 * spaces) whose gloss lines must go; `texts` — passages quoted verbatim from their source (whitespace
 * collapsed to single spaces) to cut out of other sources. World tasks exclude nothing: their test
 * entities must be seen in pretraining. Spam is not in the corpus and excludes nothing.
 */
export async function builtinExclusions(seed: number): Promise<{ wordnetLemmas: string[]; texts: string[] }> {
  const lemmas = new Set<string>();
  const texts = new Set<string>();
  for (const info of BUILTIN_TASKS) {
    if (info.kind !== "text") continue;
    const task = await build(info.name, seed);
    const into = task.exclusionKind === "wordnet"
      ? lemmas
      : task.exclusionKind === "text"
      ? texts
      : undefined;
    task.testExclusions.forEach((item) => into?.add(item));
  }
  return { wordnetLemmas: [...lemmas].sort(), texts: [...texts].sort() };
}

/**
 * The union of builtinExclusions over split seeds: a pretraining corpus serves every experiment whose
 * split seed is among them, so it must leave out each of those seeds' test items.
 */
export async function builtinExclusionsForSeeds(
  splitSeeds: readonly number[],
): Promise<{ wordnetLemmas: string[]; texts: string[] }> {
  const lemmas = new Set<string>();
  const texts = new Set<string>();
  for (const seed of new Set(splitSeeds)) {
    const exclusions = await builtinExclusions(seed);
    exclusions.wordnetLemmas.forEach((lemma) => lemmas.add(lemma));
    exclusions.texts.forEach((text) => texts.add(text));
  }
  return { wordnetLemmas: [...lemmas].sort(), texts: [...texts].sort() };
}
