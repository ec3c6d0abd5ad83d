/**
 * How the dashboard groups and matches stored results before it draws them, so that what a figure shows
 * comes from one set of rows: one task at a time, the interval of exactly the rows a point averages, PGR
 * bars and cautions named by their task, the result that recorded a run, and a median's interval in words.
 * Pure functions of the API's rows.
 */
import type { Agreement, CellSummary, Interval, RoleRun } from "../../server/contract/results.ts";
import { formatInterval } from "./format.ts";
import { shareInterval } from "../../server/contract/intervals.ts";
import type { ChartWhisker } from "../components/chart.tsx";
import type { ResultRow, Run } from "./types.ts";

const taskOf = (r: ResultRow) => r.task ?? "?";

/** The tasks of these rows: those in `order` (a sweep's list of tasks) first, in its order, then by name. */
export function tasksOf(rows: ResultRow[], order: readonly string[] = []): string[] {
  const rank = (t: string) => (order.includes(t) ? order.indexOf(t) : order.length);
  return [...new Set(rows.map(taskOf))].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** One task of these rows (`wanted` where they have it, else the first) and that task's rows. */
export function scopeToTask(
  rows: ResultRow[],
  wanted: string | null,
  order: readonly string[] = [],
): { tasks: string[]; task: string; rows: ResultRow[] } {
  const tasks = tasksOf(rows, order);
  const task = wanted !== null && tasks.includes(wanted) ? wanted : tasks[0] ?? "";
  return { tasks, task, rows: rows.filter((r) => taskOf(r) === task) };
}

/** The one value every item has, or undefined where they differ (or there are none). */
function shared<T>(values: T[]): T | undefined {
  const set = new Set(values);
  return set.size === 1 ? values[0] : undefined;
}

/** The weak, ceiling or student reading of a row, by the API's summary key. */
export type AccuracyKey = "weak_acc" | "ceiling_acc" | "student_acc";
const ROW_FIELD = { weak_acc: "weakAcc", ceiling_acc: "ceilingAcc", student_acc: "studentAcc" } as const;

/** A finite number (the API sends null where a reading is missing). */
export const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/**
 * The 95 % interval of the mean `key` accuracy of these rows, as the API computed it, or null. One row: its
 * own Wilson interval over test examples. Several: the t-interval over seeds of the summary cell made of
 * exactly these rows (their one task and method, their weak and strong size where they share one, their
 * seeds) and whose mean is theirs; rows of several tasks or methods have none.
 */
export function accuracyInterval(
  rows: ResultRow[],
  key: AccuracyKey,
  cells: readonly CellSummary[],
): { lo: number; hi: number; seeds: number } | null {
  if (rows.length === 1) return bounded(rows[0].full?.ci?.[key], 1);
  const values = rows.map((r) => r[ROW_FIELD[key]]);
  if (!values.every(isNumber)) return null;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const cell = cellsOf(rows, cells).find((c) => isNumber(c[key].mean) && Math.abs(c[key].mean - mean) < 1e-9);
  return cell ? bounded(cell[key], cell.seeds.length) : null;
}

/**
 * The 95 % interval of the mean `key` agreement of one pair's rows (one task, method, weak and strong size),
 * as the API computed it for the summary cell of exactly their seeds: t over seeds, Wilson for one seed.
 */
export function agreementInterval(
  rows: ResultRow[],
  key: keyof Agreement,
  cells: readonly CellSummary[],
): { lo: number; hi: number; seeds: number } | null {
  const values = rows.map((r) => r.agreement?.[key]).filter(isNumber);
  if (values.length === 0) return null;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  // Cells of other settings share the pair and seeds; the mean tells them apart, as for accuracies.
  const cell = cellsOf(rows, cells).find((c) => {
    const m = c.agreement[key];
    return isNumber(m) && Math.abs(m - mean) < 1e-9;
  });
  return cell ? bounded(cell.agreement_ci?.[key] ?? undefined, cell.seeds.length) : null;
}

const bounded = (i: { lo: number | null; hi: number | null } | undefined, seeds: number) =>
  i && isNumber(i.lo) && isNumber(i.hi) ? { lo: i.lo, hi: i.hi, seeds } : null;

/**
 * The summary cells made of exactly these rows: their one task and method, their weak and strong size where
 * they share one, their seeds. Rows of several tasks or methods have none.
 */
function cellsOf(rows: ResultRow[], cells: readonly CellSummary[]): CellSummary[] {
  const task = shared(rows.map((r) => r.task)), method = shared(rows.map((r) => r.method ?? "naive"));
  if (task === undefined || method === undefined) return [];
  const weak = shared(rows.map((r) => r.weakSize)), strong = shared(rows.map((r) => r.strongSize));
  const seeds = [...new Set(rows.map((r) => r.seed))].sort().join(",");
  return cells.filter((c) =>
    c.task === task && c.method === method && (weak === undefined || c.weak === weak) &&
    (strong === undefined || c.strong === strong) && [...c.seeds].sort().join(",") === seeds
  );
}

/** One row per seed (the first): a weak or ceiling model is the same for every pair and method it serves. */
export function onePerSeed(rows: ResultRow[]): ResultRow[] {
  const first = new Map<number | null, ResultRow>();
  for (const r of rows) if (!first.has(r.seed)) first.set(r.seed, r);
  return [...first.values()];
}

/**
 * PGR bars grouped by task and pair, in the cells' order; a group is named by its pair, and by its task too
 * where the cells are of several tasks.
 */
export function pgrBarGroups(
  cells: CellSummary[],
): Array<{ key: string; label: string; cells: CellSummary[] }> {
  const severalTasks = new Set(cells.map((c) => c.task)).size > 1;
  const groups = new Map<string, { key: string; label: string; cells: CellSummary[] }>();
  for (const c of cells) {
    const pair = `${c.weak}→${c.strong}`;
    const key = `${c.task}/${pair}`;
    const group = groups.get(key) ?? { key, label: severalTasks ? `${c.task} · ${pair}` : pair, cells: [] };
    group.cells.push(c);
    groups.set(key, group);
  }
  return [...groups.values()];
}

/**
 * A summary cell's or median's method, with the settings that set its experiments apart from the lab's
 * defaults where it has any: cells of one task and pair differ by these two, so this names a bar or a row.
 */
export function methodLabel(c: { method: string; settings?: string }): string {
  return c.settings ? `${c.method} (${c.settings})` : c.method;
}

/** The pipeline's cautions of these rows, each named by its result (task, pair, method, seed), once each. */
export function cautionLines(rows: ResultRow[]): string[] {
  return [
    ...new Set(
      rows.flatMap((r) =>
        (r.full?.warnings ?? []).map((w) =>
          `${taskOf(r)} ${r.weakSize}→${r.strongSize} (${r.method}, seed ${r.seed}): ${w}`
        )
      ),
    ),
  ];
}

/** What a run's stored config and a result's record of the same run both hold (server/jobs Recorder). */
type RunRecord = Partial<Pick<RoleRun, "description" | "steps" | "hyper" | "final" | "selected">>;

/** Whether two records are of one training run: what it learned, its seed, length and readings agree. */
function sameRun(a: RunRecord, b: RunRecord): boolean {
  const same = (x: unknown, y: unknown) => x === y || (x == null && y == null);
  return same(a.description, b.description) && same(a.steps, b.steps) && same(a.hyper?.seed, b.hyper?.seed) &&
    (["final", "selected"] as const).every((k) =>
      same(a[k]?.step, b[k]?.step) && same(a[k]?.testAcc, b[k]?.testAcc) && same(a[k]?.valAcc, b[k]?.valAcc)
    );
}

type ReadRole = "weak" | "ceiling" | "student";

/** What a model of each role is: the results that name the same of these read the same model. */
const MODEL_OF: Record<ReadRole, (r: ResultRow) => unknown[]> = {
  weak: (r) => [r.task, r.weakSize, r.seed],
  ceiling: (r) => [r.task, r.strongSize, r.seed],
  student: (r) => [r.task, r.weakSize, r.strongSize, r.method, r.seed],
};

/**
 * The result that read a finished weak, ceiling or student run: the results of its experiment whose record
 * of their runs holds this run (same role, size, description, seed, steps and readings) must all be of one
 * model (task and seed; the pair and method for a student). Undefined where none or several models match:
 * then nothing is said about the run.
 */
export function resultOfRun(run: Run, rows: ResultRow[]): { row: ResultRow; role: ReadRole } | undefined {
  const role = (["weak", "ceiling", "student"] as const).find((r) => r === run.role);
  const config = run.config as RunRecord | null;
  if (!role || typeof config?.final?.step !== "number") return undefined;
  const recorded = rows.filter((r) =>
    r.experimentId === run.experimentId &&
    (r.full?.runs ?? []).some((rec) =>
      rec.role === role && rec.size === run.modelSize && sameRun(config, rec)
    )
  );
  const models = new Set(recorded.map((r) => JSON.stringify(MODEL_OF[role](r))));
  return models.size === 1 ? { row: recorded[0], role } : undefined;
}

/**
 * Chance accuracy for a run's accuracy curves: the majority-class rate of its result's test labels. A run
 * outside an experiment's results (pretraining: its knowledge curve is a recall over many values) has none.
 */
export function runChance(run: Run, rows: ResultRow[]): number | undefined {
  return resultOfRun(run, rows)?.row.full?.chance?.rate;
}

/** The checkpoints the results read a run at: the final one (the headline) and the validation-selected one. */
export function checkpointReadings(
  run: Run,
  rows: ResultRow[],
): Array<{ step: number; checkpoint: "final" | "selected" }> {
  const found = resultOfRun(run, rows);
  if (!found) return [];
  const final = found.row.full?.final?.steps[found.role];
  const selected = found.row.full?.selected?.steps[found.role];
  return [
    ...(typeof final === "number" ? [{ step: final, checkpoint: "final" as const }] : []),
    ...(typeof selected === "number" && selected !== final
      ? [{ step: selected, checkpoint: "selected" as const }]
      : []),
  ];
}

/**
 * A median PGR's 95 % interval in words: "[lo, hi]", or a dash where there is none, never a zero-width
 * interval (over one cell the API gives that cell's own interval, which a one-seed cell may lack: "— (one
 * cell)").
 */
export function medianIntervalText(
  m: { median_ci: { lo: number | null; hi: number | null } | Interval | null | undefined; cells: number },
): string {
  const ci = m.median_ci;
  const text = ci && isNumber(ci.lo) && isNumber(ci.hi) && ci.hi > ci.lo ? formatInterval(ci) : null;
  return text ?? (m.cells === 1 ? "— (one cell)" : "—");
}

/** The test set's size of these results where they share one (the n of a probe's Wilson interval). */
export function sharedTestSize(rows: ResultRow[]): number | undefined {
  const sizes = new Set(rows.map((r) => r.full?.n?.test));
  const [n] = sizes;
  return sizes.size === 1 && typeof n === "number" && n > 0 ? n : undefined;
}

/**
 * The 95 % Wilson interval of each plotted probe accuracy over `nTest` test examples, where a point is one
 * probe (a mean over several experiments has no such interval, and gets none).
 */
export function probeWhiskers(
  lists: { color: string; points: { layer: number; accuracies: number[] }[] }[],
  nTest: number | undefined,
): ChartWhisker[] {
  if (!nTest || !(nTest > 0)) return [];
  return lists.flatMap(({ color, points }, s) =>
    points.filter((p) => p.accuracies.length === 1).map((p) => {
      const { lo, hi } = shareInterval(p.accuracies[0], nTest);
      return { x: p.layer, lo, hi, color, dx: (s - (lists.length - 1) / 2) * 4 };
    })
  );
}
