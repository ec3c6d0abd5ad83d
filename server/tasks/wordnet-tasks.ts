/**
 * The four WordNet 3.1 tasks. Each item is built from plain lowercase single-word lemmas so the texts
 * stay simple, and each is grouped by its key word so a word never spans two splits. Exclusions are
 * the key words' lemmas: the corpus builder drops the gloss lines of those lemmas.
 *
 * - hypernymy: "Is a X a kind of Y?" X is a monosemous noun. Positive Y: a lemma of an ancestor at
 *   hypernym distance ≥ 2 (shortest path over @ and @i) and depth ≥ 4 below `entity` (no "entity",
 *   "object", "whole"…). Hard negative Y: a sibling category of that ancestor (another hyponym of its
 *   parent) that is not an ancestor of X. Neither Y appears as a word in X's definition, Y ≠ X. One
 *   positive and one negative per X (balanced by construction). Up to 3,000 X, sampled with the seed.
 * - concrete: "the noun: X", 1 = concrete. X has all its noun senses in concrete lexicographer files
 *   (animal, artifact, body, food, object, plant, substance) or all in abstract ones (act, attribute,
 *   cognition, feeling, motive, state, time); ambiguous nouns are dropped. Up to 3,000 per class.
 * - antonym: "the words: X, Y", 1 = antonyms (WordNet "!" lexical pointers between adjectives),
 *   0 = synonyms (two words of one adjective synset). Pairs where one word is the other with a
 *   negating prefix (un, in, im, ir, il, dis, non, a, an, ab, mis, anti, counter, de) or that differ only
 *   by -ful/-less are dropped from both classes. Grouped by the alphabetically first word; both words
 *   are excluded. Synonym pairs are sampled down to the number of antonym pairs.
 * - gloss: "X means: D", 1 = D is X's own definition, 0 = D is the definition of another synset of
 *   the same lexicographer file. X is a monosemous noun; neither D mentions X. Up to 3,000 X.
 */

import { pick, seededRandom, shuffled } from "../../kernels/random.ts";
import type { SourceExample, TaskSource } from "./source.ts";
import {
  display,
  isPlainWord,
  LEX_FILES,
  loadWordnet,
  mentionsWord,
  type Synset,
  type Wordnet,
} from "./wordnet.ts";

const MAX_WORDS = 3000;

function article(word: string): string {
  return /^[aeiou]/.test(word) ? "an" : "a";
}

/** Plain single-word lemmas that have exactly one noun sense, with that synset. */
function monosemousNouns(wn: Wordnet): { lemma: string; synset: Synset }[] {
  const out: { lemma: string; synset: Synset }[] = [];
  for (const [lemma, keys] of wn.sensesOf.noun) {
    if (keys.length !== 1 || !isPlainWord(lemma) || lemma.length < 3) continue;
    const synset = wn.synsets.get(keys[0])!;
    // The lemma must be spelled lowercase in the synset (drops proper nouns such as "Paris").
    if (!synset.words.includes(lemma)) continue;
    out.push({ lemma, synset });
  }
  return out.sort((a, b) => (a.lemma < b.lemma ? -1 : 1));
}

function hypernymsOf(synset: Synset): string[] {
  return synset.pointers.filter((p) => p.symbol === "@" || p.symbol === "@i").map((p) => p.target);
}

/** Shortest hypernym distance from `start` to each of its ancestors. */
function ancestorDistances(wn: Wordnet, start: Synset): Map<string, number> {
  const dist = new Map<string, number>();
  let frontier = [start.key];
  for (let d = 1; frontier.length > 0; d++) {
    const next: string[] = [];
    for (const key of frontier) {
      for (const parent of hypernymsOf(wn.synsets.get(key)!)) {
        if (!dist.has(parent)) {
          dist.set(parent, d);
          next.push(parent);
        }
      }
    }
    frontier = next;
  }
  return dist;
}

function depthOf(wn: Wordnet, key: string, memo: Map<string, number>): number {
  const known = memo.get(key);
  if (known !== undefined) return known;
  const parents = hypernymsOf(wn.synsets.get(key)!);
  const depth = parents.length === 0 ? 0 : 1 + Math.min(...parents.map((p) => depthOf(wn, p, memo)));
  memo.set(key, depth);
  return depth;
}

/** A plain-word lemma of the synset that does not occur in `definition`, if any. */
function nameFor(synset: Synset, definition: string, not: string): string | undefined {
  return synset.words.find((w) => isPlainWord(w) && w !== not && !mentionsWord(definition, w));
}

export async function hypernymySource(seed: number): Promise<TaskSource> {
  const wn = await loadWordnet();
  const random = seededRandom(seed, "hypernymy");
  const depthMemo = new Map<string, number>();
  const examples: SourceExample[] = [];
  let words = 0;
  for (const { lemma, synset } of shuffled(monosemousNouns(wn), random)) {
    if (words >= MAX_WORDS) break;
    const distances = ancestorDistances(wn, synset);
    const candidates = shuffled(
      [...distances].filter(([key, d]) => d >= 2 && depthOf(wn, key, depthMemo) >= 4).map(([key]) => key),
      random,
    );
    for (const ancestorKey of candidates) {
      const ancestor = wn.synsets.get(ancestorKey)!;
      const positive = nameFor(ancestor, synset.definition, lemma);
      if (!positive) continue;
      const siblings = hypernymsOf(ancestor).flatMap((parent) =>
        wn.synsets.get(parent)!.pointers.filter((p) => p.symbol === "~" || p.symbol === "~i").map((p) =>
          p.target
        )
      ).filter((key) => key !== ancestorKey && key !== synset.key && !distances.has(key));
      const negatives = shuffled(siblings, random)
        .map((key) => nameFor(wn.synsets.get(key)!, synset.definition, lemma))
        .filter((name): name is string =>
          name !== undefined && name !== positive &&
          // no other sense of the negative may be an ancestor of X either
          !(wn.sensesOf.noun.get(name) ?? []).some((key) => distances.has(key))
        );
      if (negatives.length === 0) continue;
      const question = (y: string) => `Is ${article(lemma)} ${lemma} a kind of ${display(y)}?`;
      examples.push({ txt: question(positive), hard_label: 1, group: lemma, exclude: [lemma] });
      examples.push({ txt: question(negatives[0]), hard_label: 0, group: lemma, exclude: [lemma] });
      words++;
      break;
    }
  }
  return { examples, exclusionKind: "wordnet" };
}

const CONCRETE_FILES = ["animal", "artifact", "body", "food", "object", "plant", "substance"].map((n) =>
  LEX_FILES[`noun.${n}`]
);
const ABSTRACT_FILES = ["act", "attribute", "cognition", "feeling", "motive", "state", "time"].map((n) =>
  LEX_FILES[`noun.${n}`]
);

export async function concreteSource(seed: number): Promise<TaskSource> {
  const wn = await loadWordnet();
  const random = seededRandom(seed, "concrete");
  const byClass: [string[], string[]] = [[], []];
  for (const [lemma, keys] of wn.sensesOf.noun) {
    if (!isPlainWord(lemma) || lemma.length < 3) continue;
    const files = keys.map((k) => wn.synsets.get(k)!).filter((s) => s.words.includes(lemma)).map((s) =>
      s.lexFile
    );
    if (files.length !== keys.length) continue; // some sense spells it capitalized: a proper noun
    if (files.every((f) => CONCRETE_FILES.includes(f))) byClass[1].push(lemma);
    else if (files.every((f) => ABSTRACT_FILES.includes(f))) byClass[0].push(lemma);
  }
  const keep = Math.min(MAX_WORDS, byClass[0].length, byClass[1].length);
  const examples: SourceExample[] = [];
  for (const label of [0, 1] as const) {
    for (const lemma of shuffled(byClass[label].sort(), random).slice(0, keep)) {
      examples.push({ txt: `the noun: ${lemma}`, hard_label: label, group: lemma, exclude: [lemma] });
    }
  }
  return { examples, exclusionKind: "wordnet" };
}

const NEGATING_PREFIXES = [
  "un",
  "in",
  "im",
  "ir",
  "il",
  "dis",
  "non",
  "a",
  "an",
  "ab",
  "mis",
  "anti",
  "counter",
  "de",
];

/** True for pairs such as able/unable, legal/illegal, careful/careless: too easy, dropped. */
export function isPrefixPair(a: string, b: string): boolean {
  for (const prefix of NEGATING_PREFIXES) {
    if (a === prefix + b || b === prefix + a) return true;
  }
  const stem = (w: string) => w.replace(/(ful|less)$/, "");
  return a !== b && stem(a) === stem(b) && /(ful|less)$/.test(a) && /(ful|less)$/.test(b);
}

export async function antonymSource(seed: number): Promise<TaskSource> {
  const wn = await loadWordnet();
  const random = seededRandom(seed, "antonym");
  const antonyms = new Map<string, [string, string]>();
  const synonyms = new Map<string, [string, string]>();
  const add = (into: Map<string, [string, string]>, a: string, b: string) => {
    if (a === b || !isPlainWord(a) || !isPlainWord(b) || isPrefixPair(a, b)) return;
    const pair: [string, string] = a < b ? [a, b] : [b, a];
    into.set(pair.join(" "), pair);
  };
  for (const synset of wn.synsets.values()) {
    if (synset.pos !== "adj") continue;
    for (const p of synset.pointers) {
      if (p.symbol !== "!" || p.sourceWord === 0) continue;
      const target = wn.synsets.get(p.target);
      if (target) add(antonyms, synset.words[p.sourceWord - 1], target.words[p.targetWord - 1]);
    }
    for (let i = 0; i < synset.words.length; i++) {
      for (let j = i + 1; j < synset.words.length; j++) add(synonyms, synset.words[i], synset.words[j]);
    }
  }
  // A pair listed as both (rare sense clashes) is ambiguous: drop it from both.
  for (const key of [...antonyms.keys()]) {
    if (synonyms.delete(key)) antonyms.delete(key);
  }
  const antonymPairs = [...antonyms.values()].sort();
  const synonymPairs = shuffled([...synonyms.values()].sort(), random).slice(0, antonymPairs.length);
  const examples: SourceExample[] = [];
  for (const [label, pairs] of [[1, antonymPairs], [0, synonymPairs]] as const) {
    for (const [a, b] of pairs) {
      const [first, second] = random() < 0.5 ? [a, b] : [b, a];
      examples.push({ txt: `the words: ${first}, ${second}`, hard_label: label, group: a, exclude: [a, b] });
    }
  }
  return { examples, exclusionKind: "wordnet" };
}

export async function glossSource(seed: number): Promise<TaskSource> {
  const wn = await loadWordnet();
  const random = seededRandom(seed, "gloss");
  const byFile = new Map<number, Synset[]>();
  for (const synset of wn.synsets.values()) {
    if (synset.pos !== "noun") continue;
    const list = byFile.get(synset.lexFile);
    if (list) list.push(synset);
    else byFile.set(synset.lexFile, [synset]);
  }
  const examples: SourceExample[] = [];
  let words = 0;
  for (const { lemma, synset } of shuffled(monosemousNouns(wn), random)) {
    if (words >= MAX_WORDS) break;
    if (synset.words.some((w) => mentionsWord(synset.definition, w))) continue;
    const category = byFile.get(synset.lexFile)!;
    let distractor: Synset | undefined;
    for (let tries = 0; tries < 10 && !distractor; tries++) {
      const other = pick(category, random);
      if (
        other.key !== synset.key && other.definition !== synset.definition &&
        !mentionsWord(other.definition, lemma)
      ) distractor = other;
    }
    if (!distractor) continue;
    examples.push({
      txt: `${lemma} means: ${synset.definition}`,
      hard_label: 1,
      group: lemma,
      exclude: [lemma],
    });
    examples.push({
      txt: `${lemma} means: ${distractor.definition}`,
      hard_label: 0,
      group: lemma,
      exclude: [lemma],
    });
    words++;
  }
  return { examples, exclusionKind: "wordnet" };
}
