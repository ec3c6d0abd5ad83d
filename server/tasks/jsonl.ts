/**
 * Import of user tasks from JSONL: one JSON object per line, blank lines allowed, in one of two formats.
 * The first non-blank line decides the file's format; a later line in the other format is an error.
 *
 * - classification (openai/weak-to-strong): `{"txt": string, "hard_label": 0 | 1, "soft_label"?: p}`; both
 *   labels must occur. `soft_label` is P(label 1) in [0, 1], or openai's pair [P(0), P(1)]; without
 *   `hard_label` the label is derived from it (p ≥ 0.5 → 1), with one they must agree. openai's weak-label
 *   files (a weak model's predictions, train_simple.py's `weak_labels`) add `gt_label`: then `gt_label` is
 *   the ground truth and `hard_label`/`soft_label` are the supervisor's labels, kept as `weak_label` (its
 *   P(label 1)) beside the example, which an experiment with supervisor "given" trains the student on.
 * - comparison (Anthropic HH / TRL preference style), a pairwise task:
 *   `{"prompt"?: string, "chosen": string, "rejected": string}`. Each member's text is prompt + completion,
 *   concatenated as is (TRL's convention: the prompt carries its own trailing space or newline; HH lines
 *   have no prompt and each member carries the whole dialogue). A seeded coin on the line's content puts
 *   the chosen text in `txt` (hard_label 0) or in `other` (hard_label 1), so position never predicts the
 *   label and the same file always imports the same way.
 *
 * - either format: `"split": "train" | "val" | "test"` on every line keeps the file's own split (train is
 *   halved into the weak model's and the student's halves; splitExamples), or on none (a seeded split).
 * The reader records which fields it used and which it ignored (`ImportFields`), for the import's answer.
 *
 * Parsing is all-or-nothing: the first bad line throws a TaskFormatError naming its line number, so nothing
 * is half-imported (a streamed import runs in one transaction for the same reason). A task needs at least
 * MIN_IMPORT_EXAMPLES examples (comparisons).
 */

import { seededRandom } from "../../kernels/random.ts";
import { unstorableText } from "./storable.ts";
import { splitByGroup } from "./splits.ts";
import { type TaskExample, taskExample, type TaskFormat, taskFormat, type TaskSplits } from "./types.ts";

export const MIN_IMPORT_EXAMPLES = 20;

/** Each format's fields and what one line of it is called. */
export const IMPORT_FORMATS: Record<TaskFormat, { name: string; fields: string; unit: string }> = {
  classification: { name: "classification", fields: "txt, hard_label", unit: "examples" },
  pairwise: { name: "comparison", fields: "prompt, chosen, rejected", unit: "comparisons" },
};

/** The `split` values a file may give, and the task splits each one feeds. */
export const GIVEN_SPLITS = ["train", "val", "test"] as const;
export type GivenSplit = typeof GIVEN_SPLITS[number];

/**
 * An imported example; a comparison keeps its prompt so that splitting keeps a prompt's comparisons together,
 * and a line's `soft_label` and `split` are kept as given.
 */
export interface ImportedExample extends TaskExample {
  prompt?: string;
  soft_label?: number;
  split?: GivenSplit;
}

/** Which fields of the file the import used, and which it ignored (in the order first seen). */
export interface ImportFields {
  used: string[];
  ignored: string[];
}

/** The fields each format reads; any other field is reported as ignored. */
const FORMAT_FIELDS: Record<TaskFormat, readonly string[]> = {
  classification: ["txt", "hard_label", "soft_label", "gt_label", "split"],
  pairwise: ["prompt", "chosen", "rejected", "split"],
};

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
  #seen = new Set<string>();
  /** Whether the first example gave a `split` (then every example must). */
  #givenSplits: boolean | undefined;
  #splitCounts: Record<GivenSplit, number> = { train: 0, val: 0, test: 0 };

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
    for (const key of Object.keys(record)) this.#seen.add(key);
    this.#takeSplit(record, example, lineNo);
    this.#count++;
    if (example.hard_label === 1) this.#positives++;
    return example;
  }

  #takeSplit(record: Record<string, unknown>, example: ImportedExample, lineNo: number): void {
    const given = "split" in record;
    if (this.#givenSplits === undefined) this.#givenSplits = given;
    if (given !== this.#givenSplits) {
      throw new TaskFormatError(
        lineNo,
        this.#givenSplits
          ? "missing field `split`: the first example gave one, so every example must (train, val or test)"
          : "`split` is given here but not on the first example: give it on every line or on none",
      );
    }
    if (!given) return;
    const split = record.split;
    if (!GIVEN_SPLITS.includes(split as GivenSplit)) {
      throw new TaskFormatError(
        lineNo,
        `\`split\` must be one of ${GIVEN_SPLITS.join(", ")}, got ${describe(split)}`,
      );
    }
    example.split = split as GivenSplit;
    this.#splitCounts[example.split]++;
  }

  /** The fields used and ignored so far (complete after the last line). */
  fields(): ImportFields {
    const known = FORMAT_FIELDS[this.#format ?? "classification"];
    const seen = [...this.#seen];
    return { used: known.filter((f) => this.#seen.has(f)), ignored: seen.filter((f) => !known.includes(f)) };
  }

  /** The file's format and example count once every line is read; throws when the file is not a task. */
  finish(): { format: TaskFormat; count: number; fields: ImportFields } {
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
    if (this.#givenSplits) {
      const empty = GIVEN_SPLITS.filter((split) => this.#splitCounts[split] === 0);
      if (empty.length > 0) {
        throw new TaskFormatError(
          0,
          `no example has split ${
            empty.join(", ")
          }: a file that gives its splits needs train, val and test ` +
            `(or leave \`split\` out for a seeded split)`,
        );
      }
    }
    return { format, count, fields: this.fields() };
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
  if ("gt_label" in record) return weakLabelled(record, lineNo);
  const txt = text(record, "txt", lineNo);
  const soft = softLabel(record, lineNo);
  if (!("hard_label" in record)) {
    if (soft === undefined) {
      throw new TaskFormatError(
        lineNo,
        "missing field `hard_label` (0 or 1; or give `soft_label`, a probability)",
      );
    }
    return { txt, hard_label: soft >= 0.5 ? 1 : 0, soft_label: soft };
  }
  const label = record.hard_label;
  if (label !== 0 && label !== 1) {
    throw new TaskFormatError(lineNo, `\`hard_label\` must be 0 or 1, got ${describe(label)}`);
  }
  if (soft === undefined) return { txt, hard_label: label };
  if ((soft > 0.5 && label === 0) || (soft < 0.5 && label === 1)) {
    throw new TaskFormatError(
      lineNo,
      `\`hard_label\` ${label} disagrees with \`soft_label\` ${soft} (P(label 1)): fix one, or leave ` +
        `\`hard_label\` out to derive it`,
    );
  }
  return { txt, hard_label: label, soft_label: soft };
}

/** A line of a weak-label file: `gt_label` is the truth, `hard_label`/`soft_label` the supervisor's. */
function weakLabelled(record: Record<string, unknown>, lineNo: number): ImportedExample {
  const truth = record.gt_label;
  if (truth !== 0 && truth !== 1) {
    throw new TaskFormatError(lineNo, `\`gt_label\` must be 0 or 1, got ${describe(truth)}`);
  }
  const { gt_label: _, ...supervisor } = record;
  const weak = classification(supervisor, lineNo);
  return { txt: weak.txt, hard_label: truth, weak_label: weak.soft_label ?? weak.hard_label };
}

/** The probabilities in openai's [P(0), P(1)] pairs may be off by float32 rounding. */
const PAIR_SUM_TOLERANCE = 1e-3;

/** `soft_label` as P(label 1) — given as p in [0, 1] or as [P(0), P(1)] — or undefined when absent. */
function softLabel(record: Record<string, unknown>, lineNo: number): number | undefined {
  if (!("soft_label" in record)) return undefined;
  const soft = record.soft_label;
  const probability = (x: unknown): x is number => typeof x === "number" && x >= 0 && x <= 1;
  if (probability(soft)) return soft;
  if (
    Array.isArray(soft) && soft.length === 2 && soft.every(probability) &&
    Math.abs(soft[0] + soft[1] - 1) <= PAIR_SUM_TOLERANCE
  ) {
    return soft[1];
  }
  throw new TaskFormatError(
    lineNo,
    `\`soft_label\` must be P(label 1) in [0, 1] or a pair [P(0), P(1)] summing to 1, got ${describe(soft)}`,
  );
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
 * Examples that carry their `split` keep it: val and test as given, train halved (seeded, by the same
 * groups, stratified) into train1 for the weak model and train2 for the student.
 */
export function splitExamples(examples: readonly ImportedExample[], seed: number): TaskSplits {
  const pairwise = taskFormat(examples) === "pairwise";
  const group = (e: ImportedExample) =>
    !pairwise ? e.txt : e.prompt ? `prompt:${e.prompt}` : `pair:${[e.txt, e.other!].sort().join("\u0000")}`;
  const grouped = examples.map((e) => ({ ...e, group: group(e) }));
  if (examples.every((e) => e.split === undefined)) {
    return splitByGroup(grouped, { seed, salt: "import" }).splits;
  }
  const given = (split: GivenSplit) => grouped.filter((e) => e.split === split);
  const halves = splitByGroup(given("train"), {
    seed,
    salt: "import",
    fractions: { train1: 0.5, train2: 0.5, validation: 0, test: 0 },
    required: ["train1", "train2"],
  }).splits;
  return {
    train1: halves.train1,
    train2: halves.train2,
    validation: given("val").map(taskExample),
    test: given("test").map(taskExample),
  };
}
