/**
 * Where a pretrained ladder size lives on disk — the one place that knows the layout:
 *   <dataDir>/worlds/<world key>/models/<size>/     (the lab's world: world-spec.ts; two worlds never mix)
 *     config.json + model.safetensors   the lab checkpoint other code loads (kernels/checkpoint.ts)
 *     train-state.safetensors           params, AdamW m and v, with step, RNG state, corpus hash, tokenizer
 *                                       id and the curves in its metadata — ONE file, so it is consistent
 *     status.json                       status ("partial" | "pretrained"), curves, final figures, and
 *                                       what the corpus held of the tasks' test items (leakage)
 *     at/<pct>/                         a snapshot after pct % of the token budget (KNOWLEDGE_CHECKPOINTS):
 *       config.json + model.safetensors a lab checkpoint, loadable like the final one
 *       knowledge.json                  its step, tokens seen and knowledge report (SnapshotRecord)
 * Files are written beside their place and renamed into it, so a reader never sees half a file; a
 * snapshot's directory is assembled beside its place and renamed into it whole.
 */

import { join } from "node:path";
import { activeWorldSpec, worldKey } from "../corpus/world-spec.ts";
import type { GptConfig } from "../../kernels/config.ts";
import { saveCheckpoint, writeFileAtomic } from "../../kernels/checkpoint.ts";
import { KNOWLEDGE_CHECKPOINTS } from "../contract/model-ref.ts";
import type { PretrainCorpus } from "../contract/models.ts";
import { decodeSafetensors, encodeSafetensors } from "../../kernels/safetensors.ts";

export interface CurvePoint {
  step: number;
  tokens: number;
  value: number;
}

export interface Curves {
  train: CurvePoint[];
  val: CurvePoint[];
  /** Recall of the knowledge attribute on the tracked entities. */
  knowledge: CurvePoint[];
}

/** status.json: where a size's pretraining stands, with its curves and last figures. */
export interface PretrainStatus {
  size: string;
  status: "partial" | "pretrained";
  params: number;
  config: GptConfig;
  step: number;
  totalSteps: number;
  tokens: number;
  batchSize: number;
  seqLen: number;
  seed: number;
  lr: number;
  corpusHash: string;
  /** Leakage setting, split seeds kept out and items excluded; absent from statuses written before. */
  corpus?: PretrainCorpus;
  tokenizerId: string;
  knowledgeAttribute: string;
  val_loss: number | null;
  knowledge: number | null;
  wallSeconds: number;
  tokensPerSecond: number | null;
  curves: Curves;
  updatedAt: string;
}

/** Everything a resumed run needs to continue exactly where the checkpoint stopped. */
export interface TrainState {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  step: number;
  optimizerStep: number;
  rngState: number;
  corpusHash: string;
  tokenizerId: string;
  wallSeconds: number;
  curves: Curves;
}

/**
 * knowledge.json of a snapshot: where along pretraining it was taken and what the model knew then. The
 * report is knowledge.ts's KnowledgeReport (recall by attribute and by times stated), typed by its writer.
 */
export interface SnapshotRecord<Report = unknown> {
  size: string;
  /** Percent of the size's token budget (one of KNOWLEDGE_CHECKPOINTS). */
  pct: number;
  step: number;
  totalSteps: number;
  /** Tokens seen by this step. */
  tokens: number;
  corpusHash: string;
  tokenizerId: string;
  /** The world's first attribute, whose recall `recall` is; null when the corpus holds no world. */
  knowledgeAttribute: string | null;
  recall: number | null;
  report: Report | null;
}

/**
 * The size's directory relative to the data directory ("/"-separated): the same on every machine, so it is
 * what the database and the shared artifact store (artifact-store.ts) name a size by.
 */
export function modelKey(dataDir: string, size: string): string {
  return `worlds/${worldKey(activeWorldSpec(dataDir))}/models/${size}`;
}

/** The size's directory, which is also its checkpoint directory (kernels/checkpoint.ts). */
export function modelDir(dataDir: string, size: string): string {
  return join(dataDir, modelKey(dataDir, size));
}

export function trainStatePath(dataDir: string, size: string): string {
  return join(modelDir(dataDir, size), "train-state.safetensors");
}

export function statusPath(dataDir: string, size: string): string {
  return join(modelDir(dataDir, size), "status.json");
}

/** The directory of the size's snapshot after `pct` % of its token budget (a checkpoint directory). */
export function snapshotDir(dataDir: string, size: string, pct: number): string {
  return join(modelDir(dataDir, size), "at", String(pct));
}

/** Creates the size's directory (a no-op when it exists). */
export async function makeModelDir(dataDir: string, size: string): Promise<void> {
  await Deno.mkdir(modelDir(dataDir, size), { recursive: true });
}

/** Deletes everything of the size (a no-op when there is nothing). */
export async function deleteModel(dataDir: string, size: string): Promise<void> {
  await Deno.remove(modelDir(dataDir, size), { recursive: true }).catch(() => {});
}

/** A JSON file, or null when it does not exist; a damaged file is an error that names it and the fix. */
async function readJsonOrNull<T>(path: string, fix: string): Promise<T | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${path} is corrupted (not valid JSON: ${(err as Error).message}); ${fix}`);
  }
}

const STATUS_FIX = "pretrain the size with --force to rewrite it";

/** The first field of a status.json that is missing or of the wrong kind, or null when it reads whole. */
function statusProblem(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "it is not a JSON object";
  const s = value as Record<string, unknown>;
  if (s.status !== "partial" && s.status !== "pretrained") {
    return `field status is ${JSON.stringify(s.status)}, not "partial" or "pretrained"`;
  }
  for (const field of ["params", "step", "totalSteps", "tokens", "seed", "wallSeconds"]) {
    if (typeof s[field] !== "number" || !Number.isFinite(s[field])) return `field ${field} is not a number`;
  }
  for (const field of ["corpusHash", "tokenizerId"]) {
    if (typeof s[field] !== "string") return `field ${field} is not a string`;
  }
  const curves = s.curves as Record<string, unknown> | undefined;
  for (const curve of ["train", "val", "knowledge"]) {
    if (!Array.isArray(curves?.[curve])) return `field curves.${curve} is not a list`;
  }
  return null;
}

/** The size's status, or null when it has never run; a damaged file is an error that names it. */
export async function readStatus(dataDir: string, size: string): Promise<PretrainStatus | null> {
  const path = statusPath(dataDir, size);
  const status = await readJsonOrNull<unknown>(path, STATUS_FIX);
  if (status === null) return null;
  const problem = statusProblem(status);
  if (problem) throw new Error(`${path} is corrupted (${problem}); ${STATUS_FIX}`);
  return status as PretrainStatus;
}

/** The sizes not pretrained on disk, in order (a partial one resumes when trained). */
export async function sizesNotPretrained(dataDir: string, sizes: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const size of sizes) {
    if ((await readStatus(dataDir, size))?.status !== "pretrained") missing.push(size);
  }
  return missing;
}

export async function writeStatus(dataDir: string, size: string, status: PretrainStatus): Promise<void> {
  await writeFileAtomic(statusPath(dataDir, size), JSON.stringify(status, null, 1) + "\n");
}

function encodeTrainState(s: TrainState): Uint8Array {
  const vector = (data: Float32Array) => ({ dtype: "F32" as const, shape: [data.length], data });
  return encodeSafetensors({ params: vector(s.params), m: vector(s.m), v: vector(s.v) }, {
    step: String(s.step),
    optimizerStep: String(s.optimizerStep),
    rngState: String(s.rngState),
    corpusHash: s.corpusHash,
    tokenizerId: s.tokenizerId,
    wallSeconds: String(s.wallSeconds),
    curves: JSON.stringify(s.curves),
  });
}

export async function writeTrainState(dataDir: string, size: string, state: TrainState): Promise<void> {
  await writeFileAtomic(trainStatePath(dataDir, size), encodeTrainState(state));
}

/** The size's training state, or null when there is none; any damage is an error that names the file. */
export async function readTrainState(
  dataDir: string,
  size: string,
  paramsLength: number,
): Promise<TrainState | null> {
  const path = trainStatePath(dataDir, size);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const fail = (why: string): never => {
    throw new Error(`checkpoint ${path} is corrupted (${why}); delete it or pretrain with --force`);
  };
  let file;
  try {
    file = decodeSafetensors(bytes, path);
  } catch (err) {
    return fail((err as Error).message);
  }
  const meta = file.metadata ?? {};
  const tensor = (name: string) => {
    const t = file.tensors.get(name);
    if (!t || !(t.data instanceof Float32Array) || t.data.length !== paramsLength) {
      return fail(`tensor ${name} is missing or does not hold ${paramsLength} floats`);
    }
    return t.data;
  };
  const integer = (key: string) => {
    const value = Number(meta[key]);
    if (meta[key] === undefined || !Number.isFinite(value)) return fail(`metadata ${key} is missing`);
    return value;
  };
  let curves: Curves;
  try {
    curves = JSON.parse(meta.curves ?? "");
  } catch {
    return fail("metadata curves is not valid JSON");
  }
  return {
    params: tensor("params"),
    m: tensor("m"),
    v: tensor("v"),
    step: integer("step"),
    optimizerStep: integer("optimizerStep"),
    rngState: integer("rngState"),
    corpusHash: meta.corpusHash ?? fail("metadata corpusHash is missing"),
    tokenizerId: meta.tokenizerId ?? fail("metadata tokenizerId is missing"),
    wallSeconds: integer("wallSeconds"),
    curves,
  };
}

/**
 * Writes a snapshot: checkpoint and knowledge.json into a directory beside its place, then renamed into
 * it. A snapshot already there (a resumed run passing the same step again) is replaced, never doubled.
 */
export async function writeSnapshot(
  dataDir: string,
  checkpoint: { config: GptConfig; params: Float32Array; meta: Record<string, unknown> },
  record: SnapshotRecord,
): Promise<void> {
  const dir = snapshotDir(dataDir, record.size, record.pct);
  const parent = join(modelDir(dataDir, record.size), "at");
  const unique = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const temporary = join(parent, `.tmp-${record.pct}-${unique}`);
  const replaced = join(parent, `.old-${record.pct}-${unique}`);
  try {
    await saveCheckpoint(temporary, checkpoint);
    await Deno.writeTextFile(join(temporary, "knowledge.json"), JSON.stringify(record, null, 1) + "\n");
    const existed = await Deno.rename(dir, replaced).then(() => true, (err) => {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    });
    await Deno.rename(temporary, dir);
    if (existed) await Deno.remove(replaced, { recursive: true });
  } finally {
    await Deno.remove(temporary, { recursive: true }).catch(() => {});
  }
}

/** A snapshot's knowledge.json, or null when the size has no snapshot at `pct`; damage names the file. */
export function readSnapshot(dataDir: string, size: string, pct: number): Promise<SnapshotRecord | null> {
  return readJsonOrNull(
    join(snapshotDir(dataDir, size, pct), "knowledge.json"),
    "pretrain with --force to rewrite it",
  );
}

/** The size's snapshots on disk, earliest first. */
export async function listSnapshots(dataDir: string, size: string): Promise<SnapshotRecord[]> {
  const records = await Promise.all(KNOWLEDGE_CHECKPOINTS.map((pct) => readSnapshot(dataDir, size, pct)));
  return records.filter((r): r is SnapshotRecord => r !== null);
}
