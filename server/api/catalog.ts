/**
 * What the lab offers, joined with what the database knows: tasks (built-in + imported) and the model
 * ladder with pretraining status. Shared by the API routes and the CLI (`lab tasks`, `lab import`,
 * `lab models`).
 */
import { eq } from "drizzle-orm";
import type { LabDb } from "../../db/client.ts";
import { models, tasks } from "../../db/schema.ts";
import { parameterCount } from "../../kernels/config.ts";
import { BUILTIN_TASKS } from "../data/tasks/registry.ts";
import { parseTaskJsonl, TaskFormatError } from "../data/tasks/jsonl.ts";
import { LADDER, ladderRank } from "../lab/ladder.ts";
import { ApiError } from "./errors.ts";

/** Vocabulary of the lab's tokenizer (GPT-2's first 4,096 merges + bytes); used for parameter counts. */
export const LAB_VOCAB_SIZE = 4352;

export interface TaskListing {
  name: string;
  description: string;
  kind: string;
  builtin: boolean;
  source: string;
  exampleCount: number | null;
}

export async function listTasks(db: LabDb): Promise<TaskListing[]> {
  const imported = await db.select({
    name: tasks.name,
    description: tasks.description,
    kind: tasks.kind,
    source: tasks.source,
    exampleCount: tasks.exampleCount,
  }).from(tasks).orderBy(tasks.name);
  return [
    ...BUILTIN_TASKS.map((t) => ({ ...t, builtin: true, source: "builtin", exampleCount: null })),
    ...imported.map((t) => ({ ...t, builtin: false })),
  ];
}

/** Throws a 400 listing the valid names when a task is unknown. */
export async function requireTask(db: LabDb, name: string): Promise<void> {
  if (BUILTIN_TASKS.some((t) => t.name === name)) return;
  const [row] = await db.select({ name: tasks.name }).from(tasks).where(eq(tasks.name, name));
  if (row) return;
  const known = (await listTasks(db)).map((t) => t.name);
  throw new ApiError(400, "unknown_task", `unknown task "${name}"; known tasks: ${known.join(", ")}`, {
    known,
  });
}

/** Throws a 400 listing the ladder when a size is unknown. */
export function requireSize(name: string, field: string): number {
  if (!LADDER.some((s) => s.name === name)) {
    const known = LADDER.map((s) => s.name);
    throw new ApiError(
      400,
      "unknown_size",
      `${field}: unknown model size "${name}"; sizes: ${known.join(", ")}`,
      {
        field,
        known,
      },
    );
  }
  return ladderRank(name);
}

/**
 * Imports a JSONL task in one statement: a bad line rejects the whole file (400 naming the line) and an
 * existing name is a 409, so nothing is ever half-imported.
 */
export async function importTask(
  db: LabDb,
  input: { name: string; description?: string; jsonl: string; source?: string },
): Promise<TaskListing> {
  if (BUILTIN_TASKS.some((t) => t.name === input.name)) {
    throw new ApiError(409, "task_exists", `"${input.name}" is a built-in task; choose another name`);
  }
  let examples;
  try {
    examples = parseTaskJsonl(input.jsonl);
  } catch (err) {
    if (err instanceof TaskFormatError) {
      throw new ApiError(400, "invalid_task_file", err.message, { line: err.line });
    }
    throw err;
  }
  const description = input.description ?? `imported from ${input.source ?? "the API"}`;
  const [row] = await db.insert(tasks).values({
    name: input.name,
    kind: "imported",
    description,
    source: input.source ?? "api",
    exampleCount: examples.length,
    examples,
  }).onConflictDoNothing().returning();
  if (!row) throw new ApiError(409, "task_exists", `a task named "${input.name}" already exists`);
  return {
    name: row.name,
    description: row.description,
    kind: row.kind,
    builtin: false,
    source: row.source,
    exampleCount: row.exampleCount,
  };
}

export interface ModelListing {
  name: string;
  width: number;
  layers: number;
  heads: number;
  contextLength: number;
  tokens: number;
  cpu: boolean;
  params: number;
  status: string;
  valLoss: number | null;
  checkpointPath: string | null;
  pretrainInfo: unknown;
  jobId: number | null;
}

export async function listModels(db: LabDb): Promise<ModelListing[]> {
  const rows = await db.select().from(models);
  const byName = new Map(rows.map((r) => [r.name, r]));
  return LADDER.map((size) => {
    const row = byName.get(size.name);
    return {
      ...size,
      params: parameterCount({ ...size, vocabSize: LAB_VOCAB_SIZE }),
      status: row?.status ?? "none",
      valLoss: row?.valLoss ?? null,
      checkpointPath: row?.checkpointPath ?? null,
      pretrainInfo: row?.pretrainInfo ?? null,
      jobId: row?.jobId ?? null,
    };
  });
}
