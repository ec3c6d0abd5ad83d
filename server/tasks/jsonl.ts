/**
 * Import of user tasks from JSONL: one JSON object per line, blank lines allowed, in one of two formats.
 * The first non-blank line decides the file's format; a later line in the other format is an error.
 *
 * - classification (openai/weak-to-strong): `{"txt": string, "hard_label": 0 | 1}`; both labels must occur.
 * - comparison (Anthropic HH / TRL preference style), a pairwise task:
 *   `{"prompt"?: string, "chosen": string, "rejected": string}`. Each member's text is prompt + completion,
 *   concatenated as is (TRL's convention: the prompt carries its own trailing space or newline; HH lines
 *   have no prompt and each member carries the whole dialogue). A seeded coin on the line's content puts
 *   the chosen text in `txt` (hard_label 0) or in `other` (hard_label 1), so position never predicts the
 *   label and the same file always imports the same way.
 *
 * Parsing is all-or-nothing: the first bad line throws a TaskFormatError naming its line number, so nothing
 * is half-imported (a streamed import runs in one transaction for the same reason). A task needs at least
 * MIN_IMPORT_EXAMPLES examples (comparisons).
 */

import { seededRandom } from "../../kernels/random.ts";
import { unstorableText } from "./storable.ts";
import { splitByGroup } from "./splits.ts";
import { type TaskExample, type TaskFormat, taskFormat, type TaskSplits } from "./types.ts";

export const MIN_IMPORT_EXAMPLES = 20;

/** Each format's fields and what one line of it is called. */
export const IMPORT_FORMATS: Record<TaskFormat, { name: string; fields: string; unit: string }> = {
  classification: { name: "classification", fields: "txt, hard_label", unit: "examples" },
  pairwise: { name: "comparison", fields: "prompt, chosen, rejected", unit: "comparisons" },
};

/** An imported example; a comparison keeps its prompt so that splitting keeps a prompt's comparisons together. */
export interface ImportedExample extends TaskExample {
  prompt?: string;
}

export class TaskFormatError extends Error {
  /** 1-based line number of the offending line (0 when the problem is the file as a whole). */
  line: number;
  constructor(line: number, problem: string) {
    super(line > 0 ? `line ${line}: ${problem}` : problem);
    this.name = "TaskFormatError";
    this.line = line;
  }
}

const formatFields = (format: TaskFormat) =>
  `${IMPORT_FORMATS[format].name} (${IMPORT_FORMATS[format].fields})`;

/** Which format a line's fields say it is in; undefined when it has the fields of neither. */
function lineFormat(record: Record<string, unknown>, lineNo: number): TaskFormat | undefined {
  const pairwise = "chosen" in record || "rejected" in record;
  const classification = "txt" in record || "hard_label" in record;
  if (pairwise && classification) {
    throw new TaskFormatError(
      lineNo,
      `mixes the two formats: give ${formatFields("classification")} or ${formatFields("pairwise")}`,
    );
  }
  return pairwise ? "pairwise" : classification ? "classification" : undefined;
}

/**
 * Validates a file one line at a time, in order: `line` returns the line's example (undefined for a blank
 * line) or throws its TaskFormatError; `finish` checks the file as a whole. The one definition of a valid
 * file, whether it arrives as a string or as a stream.
 */
export class TaskJsonlReader {
  #lineNo = 0;
  #format: TaskFormat | undefined;
  #count = 0;
  #positives = 0;

  line(raw: string): ImportedExample | undefined {
    const lineNo = ++this.#lineNo;
    const line = (lineNo === 1 ? raw.replace(/^\uFEFF/, "") : raw).trim();
    if (line === "") return undefined;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new TaskFormatError(lineNo, `not valid JSON (${(err as Error).message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TaskFormatError(
        lineNo,
        `expected a JSON object: ${formatFields("classification")} or ${formatFields("pairwise")}`,
      );
    }
    const record = value as Record<string, unknown>;
    const found = lineFormat(record, lineNo);
    if (this.#format === undefined) {
      if (found === undefined) {
        throw new TaskFormatError(
          lineNo,
          `missing fields: give ${formatFields("classification")} or ${formatFields("pairwise")}`,
        );
      }
      this.#format = found;
    } else if (found !== undefined && found !== this.#format) {
      throw new TaskFormatError(
        lineNo,
        `a ${formatFields(found)} line in a ${formatFields(this.#format)} file; the first line decides ` +
          `the file's format: keep to one`,
      );
    }
    const example = this.#format === "pairwise" ? comparison(record, lineNo) : classification(record, lineNo);
    this.#count++;
    if (example.hard_label === 1) this.#positives++;
    return example;
  }

  /** The file's format and example count once every line is read; throws when the file is not a task. */
  finish(): { format: TaskFormat; count: number } {
    const format = this.#format ?? "classification";
    const count = this.#count;
    if (count < MIN_IMPORT_EXAMPLES) {
      throw new TaskFormatError(
        0,
        `a task needs at least ${MIN_IMPORT_EXAMPLES} ${IMPORT_FORMATS[format].unit}, the file has ${count}`,
      );
    }
    if (format === "classification" && (this.#positives === 0 || this.#positives === count)) {
      throw new TaskFormatError(
        0,
        `a task needs both labels, every example has hard_label ${this.#positives === 0 ? 0 : 1}`,
      );
    }
    return { format, count };
  }
}

/** Parses and validates a whole file; throws TaskFormatError on the first bad line. */
export function parseTaskJsonl(text: string): ImportedExample[] {
  const reader = new TaskJsonlReader();
  const examples: ImportedExample[] = [];
  for (const line of textLines(text)) {
    const example = reader.line(line);
    if (example) examples.push(example);
  }
  reader.finish();
  return examples;
}

/**
 * Splits a stream of UTF-8 bytes into lines ("\n" or "\r\n"), holding one line at a time: how a large
 * file or upload is read without its whole text in memory.
 */
export async function* jsonlLines(bytes: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of bytes) {
    pending += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n", start)) {
      yield pending.slice(start, end).replace(/\r$/, "");
      start = end + 1;
    }
    pending = pending.slice(start);
  }
  yield pending + decoder.decode();
}

/** The lines of a file already in memory, as the reader takes them. */
export function* textLines(text: string): Generator<string> {
  yield* text.split(/\r?\n/);
}

/** A string field that must be there and hold text. */
function text(record: Record<string, unknown>, field: string, lineNo: number): string {
  if (!(field in record)) throw new TaskFormatError(lineNo, `missing field \`${field}\``);
  const value = record[field];
  if (typeof value !== "string") {
    throw new TaskFormatError(lineNo, `\`${field}\` must be a string, got ${describe(value)}`);
  }
  if (value.trim() === "") throw new TaskFormatError(lineNo, `\`${field}\` is empty`);
  return storable(value, field, lineNo);
}

/** The text as stored, or the line's error when the database cannot hold it. */
function storable(value: string, field: string, lineNo: number): string {
  const problem = unstorableText(value);
  if (problem) throw new TaskFormatError(lineNo, `\`${field}\` ${problem}`);
  return value;
}

function classification(record: Record<string, unknown>, lineNo: number): ImportedExample {
  const txt = text(record, "txt", lineNo);
  if (!("hard_label" in record)) throw new TaskFormatError(lineNo, "missing field `hard_label`");
  const label = record.hard_label;
  if (label !== 0 && label !== 1) {
    throw new TaskFormatError(lineNo, `\`hard_label\` must be 0 or 1, got ${describe(label)}`);
  }
  return { txt, hard_label: label };
}

function comparison(record: Record<string, unknown>, lineNo: number): ImportedExample {
  const prompt = record.prompt ?? "";
  if (typeof prompt !== "string") {
    throw new TaskFormatError(lineNo, `\`prompt\` must be a string, got ${describe(record.prompt)}`);
  }
  storable(prompt, "prompt", lineNo);
  const chosen = text(record, "chosen", lineNo);
  const rejected = text(record, "rejected", lineNo);
  if (chosen === rejected) throw new TaskFormatError(lineNo, "chosen and rejected are the same text");
  // The coin hashes the line's content: the same comparison always lands the same way round.
  const otherIsChosen = seededRandom(0, `pair\u0000${prompt}\u0000${chosen}\u0000${rejected}`)() < 0.5;
  const [txt, other] = otherIsChosen
    ? [prompt + rejected, prompt + chosen]
    : [prompt + chosen, prompt + rejected];
  return { txt, other, hard_label: otherIsChosen ? 1 : 0, ...(prompt === "" ? {} : { prompt }) };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  return `${typeof value} ${String(value)}`;
}

/**
 * Seeded 30/30/15/25 % split of imported examples, stratified by label (each split keeps the file's
 * label rate; nothing is dropped). Identical texts stay together so a duplicate cannot leak into test;
 * comparisons stay together by prompt (without one, by the pair's two texts, whichever way round).
 */
export function splitExamples(examples: readonly ImportedExample[], seed: number): TaskSplits {
  const pairwise = taskFormat(examples) === "pairwise";
  const group = (e: ImportedExample) =>
    !pairwise ? e.txt : e.prompt ? `prompt:${e.prompt}` : `pair:${[e.txt, e.other!].sort().join("\u0000")}`;
  return splitByGroup(examples.map((e) => ({ ...e, group: group(e) })), { seed, salt: "import" }).splits;
}
