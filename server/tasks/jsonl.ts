/**
 * Import of user tasks in the openai/weak-to-strong JSONL format: one JSON object per line with a
 * string `txt` and a `hard_label` of 0 or 1; blank lines are allowed. Parsing is all-or-nothing: the
 * first bad line throws a TaskFormatError naming its line number, so nothing is half-imported.
 */

import { splitByGroup } from "./splits.ts";
import type { TaskExample, TaskSplits } from "./types.ts";

export const MIN_IMPORT_EXAMPLES = 20;

export class TaskFormatError extends Error {
  /** 1-based line number of the offending line (0 when the problem is the file as a whole). */
  line: number;
  constructor(line: number, problem: string) {
    super(line > 0 ? `line ${line}: ${problem}` : problem);
    this.name = "TaskFormatError";
    this.line = line;
  }
}

/** Parses and validates a whole file; throws TaskFormatError on the first bad line. */
export function parseTaskJsonl(text: string): TaskExample[] {
  const examples: TaskExample[] = [];
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].trim();
    if (line === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new TaskFormatError(lineNo, `not valid JSON (${(err as Error).message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TaskFormatError(lineNo, "expected a JSON object with `txt` and `hard_label`");
    }
    const record = value as Record<string, unknown>;
    if (!("txt" in record)) throw new TaskFormatError(lineNo, "missing field `txt`");
    if (typeof record.txt !== "string") {
      throw new TaskFormatError(lineNo, `\`txt\` must be a string, got ${describe(record.txt)}`);
    }
    if (record.txt.trim() === "") throw new TaskFormatError(lineNo, "`txt` is empty");
    if (!("hard_label" in record)) throw new TaskFormatError(lineNo, "missing field `hard_label`");
    const label = record.hard_label;
    if (label !== 0 && label !== 1) {
      throw new TaskFormatError(lineNo, `\`hard_label\` must be 0 or 1, got ${describe(label)}`);
    }
    examples.push({ txt: record.txt, hard_label: label });
  }
  if (examples.length < MIN_IMPORT_EXAMPLES) {
    throw new TaskFormatError(
      0,
      `a task needs at least ${MIN_IMPORT_EXAMPLES} examples, the file has ${examples.length}`,
    );
  }
  const positives = examples.filter((e) => e.hard_label === 1).length;
  if (positives === 0 || positives === examples.length) {
    throw new TaskFormatError(
      0,
      `a task needs both labels, every example has hard_label ${examples[0].hard_label}`,
    );
  }
  return examples;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  return `${typeof value} ${String(value)}`;
}

/**
 * Seeded 30/30/15/25 % split of imported examples, stratified by label (each split keeps the file's
 * label rate; nothing is dropped). Identical texts stay together so a duplicate cannot leak into test.
 */
export function splitExamples(examples: TaskExample[], seed: number): TaskSplits {
  return splitByGroup(examples.map((e) => ({ ...e, group: e.txt })), { seed, salt: "import" }).splits;
}
