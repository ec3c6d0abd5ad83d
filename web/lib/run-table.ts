/**
 * The Compare page's table logic: the columns a run can be grouped by, groups of rows, and the
 * side-by-side diff of two runs' configurations (nested config flattened to dotted keys); and the run
 * pickers' search.
 */
import type { RunTableRow } from "../../server/contract/runs.ts";

/** Config keys the table groups by (what a run is, not what it measured). */
export const GROUP_KEYS = [
  "task",
  "method",
  "seed",
  "role",
  "modelSize",
  "weak",
  "strong",
  "status",
  "experimentId",
] as const;
export type GroupKey = typeof GROUP_KEYS[number];

export const groupValue = (row: RunTableRow, key: GroupKey) => {
  const v = row[key];
  return v === null || v === undefined ? "—" : String(v);
};

/** Whether every word of `text` is in the run's id ("#12"), name, role, size, task or status (any case). */
export function runMatches(
  run: { id: number; name?: string; role: string; modelSize: string; task: string | null; status: string },
  text: string,
): boolean {
  const hay = `#${run.id} ${run.name ?? ""} ${run.role} ${run.modelSize} ${run.task ?? ""} ${run.status}`
    .toLowerCase();
  return text.toLowerCase().split(/\s+/).every((word) => hay.includes(word));
}

/** Rows grouped by one key, groups in the order their first row appears. */
export function groupRows(rows: RunTableRow[], key: GroupKey): { value: string; rows: RunTableRow[] }[] {
  const groups = new Map<string, RunTableRow[]>();
  for (const r of rows) {
    const value = groupValue(r, key);
    (groups.get(value) ?? groups.set(value, []).get(value)!).push(r);
  }
  return [...groups.entries()].map(([value, rows]) => ({ value, rows }));
}

/** Nested objects as dotted keys ("hyper.lr"); arrays and scalars as their JSON text. */
export function flattenConfig(value: unknown, prefix = "", into: Record<string, string> = {}) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenConfig(v, prefix ? `${prefix}.${k}` : k, into);
  } else if (prefix) {
    into[prefix] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return into;
}

/** What a run is and how it was trained, as one flat record: its table facts, then its stored config. */
export function runConfig(row: RunTableRow): Record<string, string> {
  const facts = {
    role: row.role,
    size: row.modelSize,
    task: row.task,
    method: row.method,
    seed: row.seed,
    weak: row.weak,
    strong: row.strong,
    experiment: row.experimentId,
  };
  // The readings stored beside the config are results, not configuration.
  const { final: _f, selected: _s, oracle: _o, ...config } = row.config ?? {};
  return flattenConfig({ ...facts, ...config });
}

export interface DiffRow {
  key: string;
  a: string | undefined;
  b: string | undefined;
  differs: boolean;
}

/** Every key either run has, sorted, with whether the two values differ. */
export function configDiff(a: Record<string, string>, b: Record<string, string>): DiffRow[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.map((key) => ({ key, a: a[key], b: b[key], differs: a[key] !== b[key] }));
}
