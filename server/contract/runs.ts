/**
 * The runs table: every trained model with what it is (role, method, seed, weak → strong, task), its status
 * and its final readings, as GET /api/runs serves it and the dashboard's Compare page draws it. The filters
 * and sort keys are zod schemas the API validates with and the OpenAPI document lists.
 */
import { z } from "zod";
import { fromText, int, oneOf, text } from "./fields.ts";
import { Method } from "./methods.ts";
import { ROLES } from "./results.ts";

/** What a run trains: a role of an experiment, a ladder size's pretraining, or the toy job's model. */
export const RUN_ROLES = [...ROLES, "pretrain", "toy"] as const;
export const RunRole = oneOf("role", RUN_ROLES);

/** A run's status: a job's, less "queued" (a run's row is written when its training starts). */
export const RUN_STATUSES = ["running", "done", "failed", "cancelled"] as const;
export const RunStatus = oneOf("status", RUN_STATUSES);

/** A stored run as the API serves it (an experiment's runs, a run's page). */
export interface RunRow {
  id: number;
  experimentId: number | null;
  jobId: number | null;
  role: string;
  modelSize: string;
  /**
   * The task it was trained on, recorded with the run (null for runs of no task: pretraining, the toy job).
   * Runs stored before the lab recorded it have none in their row; GET /api/runs says which it was.
   */
  task: string | null;
  status: string;
  config: Record<string, unknown> | null;
  startedAt: string;
  finishedAt: string | null;
  seconds: number | null;
}

/** A run as the runs table shows it: the stored run row plus what its experiment says it is. */
export interface RunTableRow extends RunRow {
  /** What the run is, e.g. "student · naive · seed 1 · nano→micro". */
  name: string;
  experimentKind: string | null;
  experimentName: string | null;
  method: string | null;
  seed: number | null;
  /** The pair a weak, ceiling, student or control belongs to (null where the run does not say). */
  weak: string | null;
  strong: string | null;
  /** The last checkpoint's readings (null before the run finished, or for runs that record none). */
  finalStep: number | null;
  finalTestAcc: number | null;
  /** Accuracy on ground truth, or agreement with the supervisor's labels: see `validation`. */
  finalValAcc: number | null;
  validation: string | null;
  /** The last value of each metric series (pretraining runs: train_loss, val_loss, …). */
  lastMetrics: Record<string, number>;
}

/** The table's per-column filters: each query parameter and the row field it narrows to one value. */
export const RUN_FILTERS = [
  { param: "role", field: "role" },
  { param: "task", field: "task" },
  { param: "method", field: "method" },
  { param: "size", field: "modelSize" },
  { param: "seed", field: "seed" },
  { param: "weak", field: "weak" },
  { param: "strong", field: "strong" },
  { param: "status", field: "status" },
] as const satisfies readonly { param: string; field: keyof RunTableRow }[];
export type RunFilterParam = typeof RUN_FILTERS[number]["param"];

/** GET /api/runs/facets: every value each filter can take over all runs, sorted (a filter's options). */
export type RunFacets = Record<RunFilterParam, string[]>;

/** Each filter's values over the given rows, as text, sorted; a row without the value adds none. */
export function runFacets(rows: RunTableRow[]): RunFacets {
  const facets = {} as RunFacets;
  for (const { param, field } of RUN_FILTERS) {
    const values = new Set(rows.map((r) => r[field]).filter((v) => v !== null).map(String));
    facets[param] = [...values].sort();
  }
  return facets;
}

/** Columns the table sorts by. */
export const RUN_SORT_KEYS = [
  "id",
  "name",
  "role",
  "modelSize",
  "task",
  "method",
  "seed",
  "weak",
  "strong",
  "status",
  "experimentId",
  "finalStep",
  "finalTestAcc",
  "finalValAcc",
  "seconds",
  "startedAt",
] as const;
export type RunSortKey = typeof RUN_SORT_KEYS[number];

/** GET /api/runs filters beyond experiment, job and role: one per table column, free text, sort order. */
export const RunTableFilters = {
  /** Case-insensitive text that the run's name, task or status must contain. */
  q: text("q").max(200).optional(),
  task: text("task").max(64).optional(),
  method: Method.optional(),
  size: text("size").max(64).optional(),
  status: RunStatus.optional(),
  seed: fromText(int("seed", 0)).optional(),
  weak: text("weak").max(64).optional(),
  strong: text("strong").max(64).optional(),
  sort: oneOf("sort", RUN_SORT_KEYS).default("id"),
  order: z.enum(["asc", "desc"], { error: "order must be asc or desc" }).default("desc"),
};

/** A run named by what it is: role, method (students), seed, and the weak → strong pair or its size. */
export function runName(
  r: Pick<RunTableRow, "role" | "method" | "seed" | "weak" | "strong" | "modelSize">,
): string {
  const parts = [r.role];
  if ((r.role === "student" || r.role === "bootstrap") && r.method) parts.push(r.method);
  if (r.seed !== null) parts.push(`seed ${r.seed}`);
  const pair = r.weak && r.strong ? `${r.weak}→${r.strong}` : null;
  // A student is the strong model of its pair; a weak, ceiling or control model names its size too.
  if (r.role === "student" && pair) parts.push(pair);
  else if (pair && ["weak", "ceiling", "control"].includes(r.role)) parts.push(`${r.modelSize} in ${pair}`);
  else parts.push(r.modelSize);
  return parts.join(" · ");
}
