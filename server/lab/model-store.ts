/**
 * Where a pretrained ladder size lives on disk — the one place that knows the layout:
 *   <dataDir>/models/<size>/
 *     config.json + model.safetensors   the lab checkpoint other code loads (kernels/checkpoint.ts)
 *     train-state.safetensors           params, AdamW m and v, with step, RNG state, corpus hash, tokenizer
 *                                       id and the curves in its metadata — ONE file, so it is consistent
 *     status.json                       status ("partial" | "pretrained"), curves, final figures, and
 *                                       what the corpus held of the tasks' test items (leakage)
 * Files are written beside their place and renamed into it, so a reader never sees half a file.
 */

import { join } from "node:path";
import type { GptConfig } from "../../kernels/config.ts";
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

/** The size's directory, which is also its checkpoint directory (kernels/checkpoint.ts). */
export function modelDir(dataDir: string, size: string): string {
  return join(dataDir, "models", size);
}

export function trainStatePath(dataDir: string, size: string): string {
  return join(modelDir(dataDir, size), "train-state.safetensors");
}

export function statusPath(dataDir: string, size: string): string {
  return join(modelDir(dataDir, size), "status.json");
}

/** Creates the size's directory (a no-op when it exists). */
export async function makeModelDir(dataDir: string, size: string): Promise<void> {
  await Deno.mkdir(modelDir(dataDir, size), { recursive: true });
}

/** Deletes everything of the size (a no-op when there is nothing). */
export async function deleteModel(dataDir: string, size: string): Promise<void> {
  await Deno.remove(modelDir(dataDir, size), { recursive: true }).catch(() => {});
}

async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temporary = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
  } catch (err) {
    await Deno.remove(temporary).catch(() => {});
    throw err;
  }
}

/** The size's status, or null when it has never run; a damaged file is an error that names it. */
export async function readStatus(dataDir: string, size: string): Promise<PretrainStatus | null> {
  const path = statusPath(dataDir, size);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    return JSON.parse(text) as PretrainStatus;
  } catch (err) {
    throw new Error(
      `${path} is corrupted (not valid JSON: ${(err as Error).message}); delete it or use --force`,
    );
  }
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
