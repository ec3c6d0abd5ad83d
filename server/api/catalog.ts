/**
 * What the lab offers, joined with what the database knows: tasks (built-in + imported) and the model
 * ladder with pretraining status. Shared by the API routes and the CLI (`lab tasks`, `lab import`,
 * `lab models`).
 */
import { asc, eq, sql } from "drizzle-orm";
import type { LabDb } from "../../db/client.ts";
import { experiments, jobs, models, taskExamples, tasks } from "../../db/schema.ts";
import { parameterCount } from "../../kernels/config.ts";
import { BUILTIN_TASKS } from "../tasks/registry.ts";
import { isWorldTask } from "../tasks/load.ts";
import { worldTaskInfos, worldTaskSource } from "../tasks/world-tasks.ts";
import { activeWorld } from "../corpus/world.ts";
import { worldKey } from "../corpus/world-spec.ts";
import { type ImportedExample, type ImportFields, TaskFormatError, TaskJsonlReader } from "../tasks/jsonl.ts";
import { type TaskExample, type TaskFormat, taskFormat } from "../tasks/types.ts";
import { plain } from "../tasks/source.ts";
import type { LadderEntry, ModelListing } from "../contract/models.ts";
import type { TaskListing } from "../contract/tasks.ts";
import { LADDER, ladderRank } from "../lab/ladder.ts";
import { defaultLabVocabSize, ladderStatus } from "../lab/models.ts";
import { modelDir } from "../lab/model-store.ts";
import { ApiError } from "./errors.ts";
import { didYouMean } from "../tasks/did-you-mean.ts";

/** An imported task's format: pairwise examples carry `other`, so the first example says it. */
const storedFormat = sql<TaskFormat>`coalesce((select case when ${taskExamples.example} -> 'other' is null
  then 'classification' else 'pairwise' end from ${taskExamples}
  where ${taskExamples.taskName} = ${tasks.name} and ${taskExamples.idx} = 0), 'classification')`;

/** The lab world's tasks (the world file's), the built-in text tasks, then the imported ones. */
export async function listTasks(db: LabDb, dataDir: string): Promise<TaskListing[]> {
  const imported = await db.select({
    name: tasks.name,
    description: tasks.description,
    kind: tasks.kind,
    source: tasks.source,
    exampleCount: tasks.exampleCount,
    format: storedFormat,
  }).from(tasks).orderBy(tasks.name);
  return [...builtinTaskListings(dataDir), ...imported.map((t) => ({ ...t, builtin: false }))];
}

/** The lab world's tasks and the built-in text tasks: no database needed. */
function builtinTaskListings(dataDir: string): TaskListing[] {
  const world = activeWorld(dataDir);
  return [
    ...worldTaskInfos(world).map((t) => ({
      ...t,
      builtin: true,
      source: `world ${worldKey(world.spec)}`,
      exampleCount: worldTaskSource(world, t.name).examples.length,
    })),
    ...BUILTIN_TASKS.map((t) => ({ ...t, builtin: true, source: "builtin", exampleCount: null })),
  ];
}

/** How many of a task's examples `GET /api/tasks/<name>` shows. */
export const TASK_SAMPLE_SIZE = 10;

/**
 * One task's listing and its first TASK_SAMPLE_SIZE examples; undefined when unknown. An imported task's
 * sample is cut in SQL and its count is the stored one, so a large task never travels whole to the server.
 */
export async function showTask(
  db: LabDb,
  dataDir: string,
  name: string,
): Promise<(TaskListing & { sample: unknown[] }) | undefined> {
  const builtin = builtinTaskListings(dataDir).find((t) => t.name === name);
  if (builtin) {
    const examples = isWorldTask(name) ? worldTaskSource(activeWorld(dataDir), name).examples : [];
    return { ...builtin, sample: plain(examples.slice(0, TASK_SAMPLE_SIZE)) };
  }
  const [row] = await db.select({
    name: tasks.name,
    description: tasks.description,
    kind: tasks.kind,
    source: tasks.source,
    exampleCount: tasks.exampleCount,
  }).from(tasks).where(eq(tasks.name, name));
  if (!row) return undefined;
  const sample = (await db.select({ example: taskExamples.example }).from(taskExamples)
    .where(eq(taskExamples.taskName, name)).orderBy(asc(taskExamples.idx)).limit(TASK_SAMPLE_SIZE))
    .map((r) => r.example as TaskExample);
  return { ...row, format: taskFormat(sample), builtin: false, sample };
}

/** The task's format; a 400 listing the valid names when the task is unknown. */
export async function requireTask(db: LabDb, dataDir: string, name: string): Promise<TaskFormat> {
  const listed = [...BUILTIN_TASKS, ...worldTaskInfos(activeWorld(dataDir))].find((t) => t.name === name);
  if (listed) return listed.format;
  const [row] = await db.select({ format: storedFormat }).from(tasks).where(eq(tasks.name, name));
  if (row) return row.format;
  const known = (await listTasks(db, dataDir)).map((t) => t.name);
  throw new ApiError(
    400,
    "unknown_task",
    `unknown task "${name}"; known tasks: ${known.join(", ")}${didYouMean(name, known)}`,
    { known },
  );
}

/** Throws a 400 (a body field) or 404 (a path's size) listing the ladder when a size is unknown. */
export function requireSize(name: string, field: string, status: 400 | 404 = 400): number {
  if (!LADDER.some((s) => s.name === name)) {
    const known = LADDER.map((s) => s.name);
    throw new ApiError(
      status,
      "unknown_size",
      `${field}: unknown model size "${name}"; sizes: ${known.join(", ")}${didYouMean(name, known)}`,
      {
        field,
        known,
      },
    );
  }
  return ladderRank(name);
}

/** Examples are written this many rows per statement while a file streams in. */
export const IMPORT_BATCH_ROWS = 500;

/** What an import reads: its lines, from a file or request stream (jsonlLines) or a string (textLines). */
export interface TaskImport {
  name: string;
  description?: string;
  lines: Iterable<string> | AsyncIterable<string>;
  source?: string;
}

/**
 * Imports a JSONL task as it streams in, batch by batch, in one transaction: a bad line rejects the whole
 * file (400 naming the line) and leaves nothing behind, and a name taken in any case is a 409, also when
 * two imports race (the unique index on lower(name) decides). Only the API and the CLI call this: job
 * handlers' database handles cannot open transactions.
 */
export async function importTask(
  db: LabDb,
  input: TaskImport,
): Promise<TaskListing & { fields: ImportFields }> {
  const lower = input.name.toLowerCase();
  if (BUILTIN_TASKS.some((t) => t.name.toLowerCase() === lower) || isWorldTask(lower)) {
    throw new ApiError(
      409,
      "task_exists",
      `"${input.name}" is a built-in or world task name (world tasks start with "world-"); choose another name`,
    );
  }
  await requireNewTaskName(db, input.name);
  const source = input.source ?? "api";
  const description = input.description ?? `imported from ${input.source ?? "the API"}`;
  try {
    return await db.transaction(async (tx) => {
      await tx.insert(tasks).values({ name: input.name, kind: "imported", description, source });
      const { format, count, fields } = await insertExamples(tx as unknown as LabDb, input.name, input.lines);
      const [row] = await tx.update(tasks).set({ exampleCount: count }).where(eq(tasks.name, input.name))
        .returning();
      const { name, kind, exampleCount } = row;
      return { name, description, kind, format, builtin: false, source, exampleCount, fields };
    });
  } catch (err) {
    if (err instanceof TaskFormatError) {
      throw new ApiError(400, "invalid_task_file", err.message, { line: err.line });
    }
    if (isUniqueViolation(err)) {
      await requireNewTaskName(db, input.name); // the import that won has committed: name it
      throw new ApiError(
        409,
        "task_exists",
        `a task named "${input.name}" already exists; choose another name`,
      );
    }
    throw err;
  }
}

/**
 * Validates every line and inserts the examples in batches, `idx` their order in the file. A batch travels
 * as one jsonb array that Postgres unpacks: one parameter instead of three per row.
 */
async function insertExamples(
  tx: LabDb,
  taskName: string,
  lines: Iterable<string> | AsyncIterable<string>,
): Promise<{ format: TaskFormat; count: number; fields: ImportFields }> {
  const reader = new TaskJsonlReader();
  let batch: ImportedExample[] = [];
  let written = 0;
  const flush = async () => {
    await tx.execute(sql`insert into ${taskExamples} (task_name, idx, example)
      select ${taskName}, ${written}::int + e.n::int - 1, e.example
      from jsonb_array_elements(${JSON.stringify(batch)}::jsonb) with ordinality as e(example, n)`);
    written += batch.length;
    batch = [];
  };
  for await (const line of lines) {
    const example = reader.line(line);
    if (example) batch.push(example);
    if (batch.length === IMPORT_BATCH_ROWS) await flush();
  }
  if (batch.length > 0) await flush();
  return reader.finish();
}

/** A 409 when a task of this name exists in any case (names differing only in case read as one task). */
async function requireNewTaskName(db: LabDb, name: string): Promise<void> {
  const [existing] = await db.select({ name: tasks.name }).from(tasks)
    .where(sql`lower(${tasks.name}) = ${name.toLowerCase()}`);
  if (!existing) return;
  const caseOnly = existing.name === name ? "" : " (the names differ only in case)";
  throw new ApiError(
    409,
    "task_exists",
    `a task named "${existing.name}" already exists${caseOnly}; choose another name`,
    { existing: existing.name },
  );
}

/** Postgres's unique_violation, as PGlite and postgres-js report it (drizzle wraps it in `cause`). */
function isUniqueViolation(err: unknown): boolean {
  let e = err;
  for (let depth = 0; depth < 4 && typeof e === "object" && e !== null; depth++) {
    if ((e as { code?: unknown }).code === "23505") return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Throws a 409 naming the queued or running experiment, sweep or job that would train on this task. */
export async function requireTaskUnused(db: LabDb, name: string): Promise<void> {
  const [user] = await db.select({
    jobId: jobs.id,
    status: jobs.status,
    kind: experiments.kind,
    id: experiments.id,
  })
    .from(jobs).leftJoin(experiments, eq(experiments.jobId, jobs.id))
    .where(sql`${jobs.status} in ('queued', 'running') and (${jobs.params} ->> 'task' = ${name}
      or ${jobs.params} -> 'tasks' @> ${JSON.stringify([name])}::jsonb)`)
    .orderBy(jobs.id).limit(1);
  if (!user) return;
  const what = user.id === null ? `job ${user.jobId}` : `${user.kind} ${user.id} (job ${user.jobId})`;
  throw new ApiError(
    409,
    "task_in_use",
    `task "${name}" is used by ${what}, which is ${user.status}: cancel it (or let it finish) before deleting`,
    { experimentId: user.id, jobId: user.jobId },
  );
}

/** What the listing reads of one size on disk (server/lab/models.ts's `ladderStatus`). */
export type DiskLadderEntry = Omit<LadderEntry, "cpu" | "wallSeconds">;

/** Reading the ladder from disk costs milliseconds; a listing this young is served again. */
const DISK_LISTING_TTL_MS = 1000;
const diskListings = new Map<string, { at: number; listing: Promise<DiskLadderEntry[]> }>();

/** The ladder on disk (server/lab/models.ts's `ladderStatus`). */
export function readLadderFromDisk(dataDir: string): Promise<DiskLadderEntry[]> {
  const cached = diskListings.get(dataDir);
  if (cached && performance.now() - cached.at < DISK_LISTING_TTL_MS) return cached.listing;
  const listing = ladderStatus(dataDir);
  diskListings.set(dataDir, { at: performance.now(), listing });
  listing.catch(() => diskListings.delete(dataDir));
  return listing;
}

const ACTIVE_JOB = new Set(["queued", "running"]);

/**
 * The ladder: disk is the source of truth for checkpoints (status, validation loss, parameters), the
 * database for what is happening now (a queued or running pretrain job) and for failures.
 */
export async function listModels(
  db: LabDb,
  dataDir: string,
  disk?: DiskLadderEntry[],
): Promise<ModelListing[]> {
  const rows = await db.select({ model: models, jobStatus: jobs.status }).from(models)
    .leftJoin(jobs, eq(jobs.id, models.jobId));
  const byName = new Map(rows.map((r) => [r.model.name, r]));
  const onDisk = new Map((disk ?? await readLadderFromDisk(dataDir)).map((e) => [e.name, e]));
  const vocabSize = defaultLabVocabSize(dataDir);
  return LADDER.map((size) => {
    const row = byName.get(size.name);
    const file = onDisk.get(size.name);
    const model = row?.model;
    const jobActive = row?.jobStatus !== undefined && row.jobStatus !== null && ACTIVE_JOB.has(row.jobStatus);
    let status: string = file?.status ?? "missing";
    if (jobActive) status = row!.jobStatus === "running" ? "pretraining" : "queued";
    else if (status !== "pretrained" && status !== "broken" && model?.status === "failed") status = "failed";
    const hasFiles = file !== undefined && file.status !== "missing";
    return {
      name: size.name,
      width: size.width,
      layers: size.layers,
      heads: size.heads,
      contextLength: size.contextLength,
      tokens: file?.tokens ?? size.tokens,
      cpu: size.cpu,
      params: file?.params ?? parameterCount({ ...size, vocabSize }),
      status,
      brokenReason: file?.brokenReason ?? null,
      valLoss: file ? file.val_loss : model?.valLoss ?? null,
      knowledge: file?.knowledge ?? null,
      knowledgeCi: file?.knowledgeCi ?? null,
      step: file?.step ?? null,
      totalSteps: file?.totalSteps ?? null,
      checkpointPath: hasFiles ? modelDir(dataDir, size.name) : null,
      corpus: file?.corpus ?? null,
      snapshots: file?.snapshots ?? [],
      pretrainInfo: model?.pretrainInfo ?? null,
      jobId: model?.jobId ?? null,
    };
  });
}
