/**
 * The one flat shape of an experiment result for export: the same snake_case columns, in the same order,
 * from the API (GET /api/results/export.csv and export.json) and the CLI (`lab sweep --csv`). Agreement
 * is flattened into three columns; a reading that does not exist (no PGR, a stored row without oracle) is
 * null in JSON and an empty cell in CSV.
 */
import type { Agreement } from "./results.ts";
import type { TaskFormat } from "./tasks.ts";

export const RESULT_COLUMNS = [
  "task",
  "weak",
  "strong",
  "method",
  "seed",
  "weak_acc",
  "ceiling_acc",
  "student_acc",
  "pgr",
  "gap_too_small",
  "selected_student_acc",
  "selected_pgr",
  "selected_step",
  "oracle_student_acc",
  "oracle_pgr",
  "oracle_step",
  "agreement_all",
  "agreement_supervisor_correct",
  "agreement_supervisor_wrong",
  "strong_knowledge",
  "format",
] as const;
export type ResultColumn = typeof RESULT_COLUMNS[number];
export type ResultRecord = Record<ResultColumn, string | number | boolean | null>;

/** What a result record is made of: an ExperimentResult has these fields, a stored row maps onto them. */
export interface ResultSource {
  task: string | null;
  weak: string | null;
  strong: string | null;
  method: string | null;
  seed: number | null;
  weak_acc: number | null;
  ceiling_acc: number | null;
  student_acc: number | null;
  pgr: number | null;
  gap_too_small: boolean | null;
  selected?: { student_acc: number | null; pgr: number | null; steps: { student: number | null } } | null;
  oracle?: { student_acc: number | null; pgr: number | null; student_step: number | null } | null;
  agreement: Agreement | null;
  strongKnowledge?: number | null;
  /** Absent in results stored before pairwise tasks existed: classification. */
  format?: TaskFormat;
}

/** NaN and ±Infinity (a PGR with no gap) have no place in JSON or a CSV cell: null. */
const finiteOrNull = (
  x: number | null | undefined,
) => (typeof x === "number" && Number.isFinite(x) ? x : null);

export function resultRecord(r: ResultSource): ResultRecord {
  return {
    task: r.task,
    weak: r.weak,
    strong: r.strong,
    method: r.method,
    seed: r.seed,
    weak_acc: finiteOrNull(r.weak_acc),
    ceiling_acc: finiteOrNull(r.ceiling_acc),
    student_acc: finiteOrNull(r.student_acc),
    pgr: finiteOrNull(r.pgr),
    gap_too_small: r.gap_too_small,
    selected_student_acc: finiteOrNull(r.selected?.student_acc),
    selected_pgr: finiteOrNull(r.selected?.pgr),
    selected_step: r.selected?.steps.student ?? null,
    oracle_student_acc: finiteOrNull(r.oracle?.student_acc),
    oracle_pgr: finiteOrNull(r.oracle?.pgr),
    oracle_step: r.oracle?.student_step ?? null,
    agreement_all: finiteOrNull(r.agreement?.all),
    agreement_supervisor_correct: finiteOrNull(r.agreement?.supervisor_correct),
    agreement_supervisor_wrong: finiteOrNull(r.agreement?.supervisor_wrong),
    strong_knowledge: finiteOrNull(r.strongKnowledge),
    format: r.format ?? "classification",
  };
}

/** A CSV cell: empty for null, quoted when it holds a comma, a quote or a line break. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The header line, then one line per record (no newline after the last: console.log adds one). */
export function resultsCsv(records: ResultRecord[]): string {
  const rows = records.map((r) => RESULT_COLUMNS.map((k) => csvCell(r[k])).join(","));
  return [RESULT_COLUMNS.join(","), ...rows].join("\n");
}
