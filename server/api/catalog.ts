/**
 * What the lab offers, joined with what the database knows: tasks (built-in + imported) and the model
 * ladder with pretraining status. Shared by the API routes and the CLI (`lab tasks`, `lab import`,
 * `lab models`).
 */
import { eq, sql } from "drizzle-orm";
import type { LabDb } from "../../db/client.ts";
import { jobs, models, tasks } from "../../db/schema.ts";
import { parameterCount } from "../../kernels/config.ts";
import { BUILTIN_TASKS } from "../tasks/registry.ts";
import { isWorldTask } from "../tasks/load.ts";
import { worldTaskInfos, worldTaskSource } from "../tasks/world-tasks.ts";
import { activeWorld } from "../corpus/world.ts";
import { worldKey } from "../corpus/world-spec.ts";
import { parseTaskJsonl, TaskFormatError } from "../tasks/jsonl.ts";
import { type TaskFormat, taskFormat } from "../tasks/types.ts";
import type { LadderEntry, ModelListing } from "../contract/models.ts";
import type { TaskListing } from "../contract/tasks.ts";
import { LADDER, ladderRank } from "../lab/ladder.ts";
import { defaultLabVocabSize, ladderStatus } from "../lab/models.ts";
import { modelDir } from "../lab/model-store.ts";
import { ApiError } from "./errors.ts";

/** An imported task's format: pairwise examples carry `other`, so the first example says it. */
const storedFormat = sql<TaskFormat>`case when (${tasks.examples} -> 0 -> 'other') is null
  then 'classification' else 'pairwise' end`;

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
  const world = activeWorld(dataDir);
  return [
    ...worldTaskInfos(world).map((t) => ({
      ...t,
      builtin: true,
      source: `world ${worldKey(world.spec)}`,
      exampleCount: worldTaskSource(world, t.name).examples.length,
    })),
    ...BUILTIN_TASKS.map((t) => ({ ...t, builtin: true, source: "builtin", exampleCount: null })),
    ...imported.map((t) => ({ ...t, builtin: false })),
  ];
}

/** The task's format; a 400 listing the valid names when the task is unknown. */
export async function requireTask(db: LabDb, dataDir: string, name: string): Promise<TaskFormat> {
  const listed = [...BUILTIN_TASKS, ...worldTaskInfos(activeWorld(dataDir))].find((t) => t.name === name);
  if (listed) return listed.format;
  const [row] = await db.select({ format: storedFormat }).from(tasks).where(eq(tasks.name, name));
  if (row) return row.format;
  const known = (await listTasks(db, dataDir)).map((t) => t.name);
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
  if (BUILTIN_TASKS.some((t) => t.name === input.name) || isWorldTask(input.name)) {
    throw new ApiError(
      409,
      "task_exists",
      `"${input.name}" is a built-in or world task name (world tasks start with "world-"); choose another name`,
    );
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
    format: taskFormat(examples),
    builtin: false,
    source: row.source,
    exampleCount: row.exampleCount,
  };
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
