// Byte-level BPE tokenizer over GPT-2's merge list, written in the project.
//
// Vocabulary: the 256 byte tokens (GPT-2 ids 0..255) plus the first K merges of GPT-2's merge list
// (merge i makes token 256 + i, so ids agree with GPT-2's), then optional "added tokens": whole
// pre-tokens that map to one id each (the knowledge world uses them to give each invented name one id).
// With all 50,000 merges and no added tokens this is GPT-2's tokenizer (50,257 ids with <|endoftext|>).
// GPT-2's ranks come from gpt-tokenizer's r50k_base table (token bytes by rank); the merge pairs are
// recovered from it the way tiktoken→HF converters do: BPE the token's bytes with lower ranks only.

import { createHash } from "node:crypto";
import r50kRanks from "gpt-tokenizer/bpeRanks/r50k_base";

export const GPT2_MERGE_COUNT = 50000;
export const GPT2_END_OF_TEXT_ID = 50256;
export const DEFAULT_MERGES = 4096;

// GPT-2's pre-tokenization: contractions, letters, numbers, other symbols, each with an optional space.
const GPT2_SPLIT_REGEX = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface TokenizerOptions {
  merges?: number;
  addedTokens?: string[];
  // Names the added-token set in the tokenizer id, e.g. "world" → "gpt2-bpe-4096+world-<hash>".
  addedTokensLabel?: string;
}

export interface Tokenizer {
  id: string;
  vocabSize: number;
  merges: number;
  addedTokens: readonly string[];
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
}

// GPT-2's byte→unicode map: printable bytes map to themselves, the rest to code points from 256 up.
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + next++);
  }
  return table;
}

export const BYTE_TO_UNICODE: readonly string[] = bytesToUnicode();
const UNICODE_TO_BYTE = new Map<string, number>(BYTE_TO_UNICODE.map((ch, b) => [ch, b]));

export interface Gpt2Tables {
  // Token text in byte→unicode form, indexed by GPT-2 id (0..50255).
  tokenText: string[];
  // Merge pairs in rank order ("left right" in byte→unicode form).
  mergePairs: [string, string][];
}

let gpt2Tables: Gpt2Tables | undefined;

// Loads GPT-2's ranks once and recovers the ordered merge list (cached for the process).
export function loadGpt2Tables(): Gpt2Tables {
  if (gpt2Tables) return gpt2Tables;
  const utf8 = new TextEncoder();
  const ranks = r50kRanks as (string | number[])[];
  const tokenText = ranks.map((entry) => {
    const bytes = typeof entry === "string" ? utf8.encode(entry) : Uint8Array.from(entry);
    let text = "";
    for (const b of bytes) text += BYTE_TO_UNICODE[b];
    return text;
  });
  if (tokenText.length !== 256 + GPT2_MERGE_COUNT) {
    throw new Error(
      `gpt-tokenizer r50k_base has ${tokenText.length} ranks, expected ${256 + GPT2_MERGE_COUNT}`,
    );
  }
  const rankOf = new Map<string, number>(tokenText.map((t, i) => [t, i]));
  const mergePairs: [string, string][] = [];
  for (let rank = 256; rank < tokenText.length; rank++) {
    const parts = bpeByRank([...tokenText[rank]], rankOf, rank);
    if (parts.length !== 2) throw new Error(`cannot recover the GPT-2 merge for rank ${rank}`);
    mergePairs.push([parts[0], parts[1]]);
  }
  gpt2Tables = { tokenText, mergePairs };
  return gpt2Tables;
}

// Merges adjacent parts whose concatenation has the lowest rank below maxRank, until none is left.
function bpeByRank(parts: string[], rankOf: Map<string, number>, maxRank: number): string[] {
  while (parts.length > 1) {
    let best = -1;
    let bestRank = maxRank;
    for (let i = 0; i < parts.length - 1; i++) {
      const r = rankOf.get(parts[i] + parts[i + 1]);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    parts.splice(best, 2, parts[best] + parts[best + 1]);
  }
  return parts;
}

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}

export function createTokenizer(opts: TokenizerOptions = {}): Tokenizer {
  const merges = opts.merges ?? DEFAULT_MERGES;
  if (!Number.isInteger(merges) || merges < 0 || merges > GPT2_MERGE_COUNT) {
    throw new Error(`tokenizer merges must be an integer in 0..${GPT2_MERGE_COUNT}, got ${merges}`);
  }
  const addedTokens = [...(opts.addedTokens ?? [])];
  const { tokenText, mergePairs } = loadGpt2Tables();

  // Classic GPT-2 BPE: the rank of a pair is its position in the merge list.
  const pairRank = new Map<string, number>();
  for (let i = 0; i < merges; i++) pairRank.set(mergePairs[i][0] + "\u0000" + mergePairs[i][1], i);
  const baseVocab = 256 + merges;
  const idOfText = new Map<string, number>();
  for (let id = 0; id < baseVocab; id++) idOfText.set(tokenText[id], id);
  const textOfId: string[] = tokenText.slice(0, baseVocab);
  const fullGpt2 = merges === GPT2_MERGE_COUNT;
  // The full vocabulary keeps GPT-2's <|endoftext|> id so imported checkpoints line up; encode never emits it.
  let nextId = fullGpt2 ? GPT2_END_OF_TEXT_ID + 1 : baseVocab;

  const addedIdOf = new Map<string, number>();
  const addedTextOf = new Map<number, string>();
  for (const token of addedTokens) {
    if (token.length === 0) throw new Error("tokenizer added token must be a non-empty string");
    if (addedIdOf.has(token)) {
      throw new Error(`tokenizer added token ${JSON.stringify(token)} is listed twice`);
    }
    addedIdOf.set(token, nextId);
    addedTextOf.set(nextId, token);
    nextId++;
  }
  const vocabSize = nextId;

  const utf8 = new TextEncoder();
  const wordCache = new Map<string, number[]>();
  const MAX_CACHE = 200_000;

  function bpeWord(word: string): number[] {
    const bytes = utf8.encode(word);
    let parts: string[] = new Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) parts[i] = BYTE_TO_UNICODE[bytes[i]];
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = pairRank.get(parts[i] + "\u0000" + parts[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      // Merge every occurrence of the best pair in one pass, left to right, as GPT-2 does.
      const left = parts[best];
      const right = parts[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === left && parts[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else merged.push(parts[i]);
      }
      parts = merged;
    }
    return parts.map((p) => idOfText.get(p)!);
  }

  function encode(text: string): number[] {
    const out: number[] = [];
    for (const match of text.matchAll(GPT2_SPLIT_REGEX)) {
      const word = match[0];
      const added = addedIdOf.get(word);
      if (added !== undefined) {
        out.push(added);
        continue;
      }
      let ids = wordCache.get(word);
      if (!ids) {
        ids = bpeWord(word);
        if (wordCache.size >= MAX_CACHE) wordCache.clear();
        wordCache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  const utf8Decoder = new TextDecoder();
  function decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (id >= 0 && id < textOfId.length) {
        for (const ch of textOfId[id]) bytes.push(UNICODE_TO_BYTE.get(ch)!);
        continue;
      }
      const special = fullGpt2 && id === GPT2_END_OF_TEXT_ID ? "<|endoftext|>" : addedTextOf.get(id);
      if (special === undefined) {
        throw new Error(`token id ${id} is outside the vocabulary (size ${vocabSize})`);
      }
      for (const b of utf8.encode(special)) bytes.push(b);
    }
    return utf8Decoder.decode(Uint8Array.from(bytes));
  }

  const id = `gpt2-bpe-${merges}` +
    (addedTokens.length ? `+${opts.addedTokensLabel ?? "added"}-${shortHash(addedTokens.join("\n"))}` : "");
  return { id, vocabSize, merges, addedTokens, encode, decode };
}
