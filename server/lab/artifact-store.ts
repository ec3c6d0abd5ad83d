/**
 * Pretrained sizes shared between machines that share no disk: each size's directory (model-store.ts:
 * checkpoint, training state, status, snapshots) is mirrored file by file into an artifact store every
 * worker reaches — named files (a key relative to any data directory) pointing at sha-256-addressed blobs
 * (db/artifacts.ts keeps them in the shared Postgres) — and each machine's data directory is the local cache.
 *   publishModel: after a checkpoint is saved locally, upload what changed (status.json last).
 *   pullModel:    when the store's status.json differs from the local one and is not older, download
 *                 what differs (each blob verified against its hash), then delete what the store no longer
 *                 holds; status.json is written last, so a reader never sees a status without its files.
 * No store is configured with the embedded PGlite (one machine): then every function here does nothing.
 */

import { createHash } from "node:crypto";
import { dirname, join, relative, sep } from "node:path";
import { writeFileAtomic } from "../../kernels/checkpoint.ts";
import { activeWorldSpec, worldKey } from "../corpus/world-spec.ts";
import { modelKey } from "./model-store.ts";

/** A named file in the store. */
export interface ArtifactEntry {
  key: string;
  /** sha-256 (hex) of the file's bytes. */
  hash: string;
  size: number;
}

/** What the lab needs of a store; db/artifacts.ts implements it on Postgres. */
export interface ArtifactStore {
  /** Every entry whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ArtifactEntry[]>;
  /** The blob's bytes, verified against the entry's hash and size (an error names the key otherwise). */
  read(entry: ArtifactEntry): Promise<Uint8Array>;
  /** Points `key` at these bytes (a no-op when it already does). */
  write(key: string, bytes: Uint8Array): Promise<void>;
  remove(keys: string[]): Promise<void>;
}

/** Reading the store failed (the database, a size still being published, a bad blob): a retry can help. */
export class ArtifactReadError extends Error {}

/** `store.read(entry)`, its failure an ArtifactReadError naming the key. */
const readEntry = (store: ArtifactStore, entry: ArtifactEntry) =>
  store.read(entry).catch((err) => {
    const message = `reading ${entry.key} from the artifact store failed: ${err?.message ?? err}`;
    throw new ArtifactReadError(message, { cause: err });
  });

let shared: ArtifactStore | undefined;

/** Makes `store` the one this process publishes to and pulls from (undefined: none, the default). */
export function useArtifactStore(store: ArtifactStore | undefined): void {
  shared = store;
}

export function artifactStore(): ArtifactStore | undefined {
  return shared;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const STATUS_FILE = "status.json";
const CONFIG_FILE = "config.json";

/** Temporary files of model-store.ts's atomic writes are never part of a size. */
const isTemporary = (name: string) => name.includes(".tmp-") || name.startsWith(".old-");

/** The size's files on disk, as paths relative to its directory with "/" between parts. */
async function localFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (path: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(path));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    for (const entry of entries) {
      if (isTemporary(entry.name)) continue;
      const full = join(path, entry.name);
      if (entry.isDirectory) await walk(full);
      else if (entry.isFile) files.push(relative(dir, full).split(sep).join("/"));
    }
  };
  await walk(dir);
  return files.sort();
}

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** Status files last, config files just before them: the order in which a size's files become valid. */
function publishOrder(a: string, b: string): number {
  const rank = (name: string) => name.endsWith(STATUS_FILE) ? 2 : name.endsWith(CONFIG_FILE) ? 1 : 0;
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Uploads what changed in the size's directory and drops what it no longer holds; false without a store. */
export async function publishModel(dataDir: string, size: string): Promise<boolean> {
  const store = shared;
  if (!store) return false;
  const key = modelKey(dataDir, size);
  const dir = join(dataDir, key);
  const remote = new Map((await store.list(`${key}/`)).map((e) => [e.key, e.hash]));
  const files = (await localFiles(dir)).sort(publishOrder);
  for (const file of files) {
    const bytes = await readOrNull(join(dir, file));
    if (bytes === null) continue; // replaced meanwhile (a snapshot rewritten); the next publish sends it
    const fileKey = `${key}/${file}`;
    if (remote.get(fileKey) !== sha256Hex(bytes)) await store.write(fileKey, bytes);
    remote.delete(fileKey);
  }
  await store.remove([...remote.keys()]);
  return true;
}

/**
 * Why a listing cannot be pulled as it stands: a checkpoint whose config.json records other weights than
 * the listed model.safetensors (the listing was taken while another machine was publishing).
 */
async function listingProblem(
  store: ArtifactStore,
  entries: Map<string, ArtifactEntry>,
): Promise<string | null> {
  for (const [key, entry] of entries) {
    if (!key.endsWith(`/${CONFIG_FILE}`)) continue;
    const weights = entries.get(key.slice(0, -CONFIG_FILE.length) + "model.safetensors");
    const config = JSON.parse(new TextDecoder().decode(await store.read(entry)));
    if (weights && config.weights?.sha256 !== weights.hash) return `${key} records other weights`;
  }
  return null;
}

/** When a status was written; a status that does not parse counts as the oldest. */
function updatedAt(bytes: Uint8Array | null): string {
  try {
    return bytes === null ? "" : String(JSON.parse(new TextDecoder().decode(bytes)).updatedAt ?? "");
  } catch {
    return "";
  }
}

/**
 * Brings the size's directory in line with the store when the store's status differs from the local one
 * and is at least as recent; true when files were written. A local run that is ahead is left alone.
 */
export async function pullModel(dataDir: string, size: string): Promise<boolean> {
  const store = shared;
  if (!store) return false;
  const key = modelKey(dataDir, size);
  const dir = join(dataDir, key);
  const entries = new Map((await store.list(`${key}/`)).map((e) => [e.key, e]));
  const status = entries.get(`${key}/${STATUS_FILE}`);
  if (!status) return false;
  const localStatus = await readOrNull(join(dir, STATUS_FILE));
  if (localStatus !== null && sha256Hex(localStatus) === status.hash) return false;
  const remoteStatus = await readEntry(store, status);
  if (updatedAt(localStatus) > updatedAt(remoteStatus)) return false;
  const problem = await listingProblem(store, entries);
  if (problem) {
    throw new ArtifactReadError(`size ${size} is being published (${problem}); try again in a moment`);
  }
  const wanted = new Set<string>();
  for (const entry of [...entries.values()].sort((a, b) => publishOrder(a.key, b.key))) {
    const file = entry.key.slice(key.length + 1);
    wanted.add(file);
    const path = join(dir, file);
    const local = await readOrNull(path);
    if (local !== null && sha256Hex(local) === entry.hash) continue;
    await Deno.mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, entry.key === status.key ? remoteStatus : await readEntry(store, entry));
  }
  for (const file of await localFiles(dir)) {
    if (!wanted.has(file)) await Deno.remove(join(dir, file));
  }
  return true;
}

/** Pulls every size the store holds for this data directory's world; the sizes it updated. */
export async function pullLadder(dataDir: string): Promise<string[]> {
  const store = shared;
  if (!store) return [];
  const prefix = `worlds/${worldKey(activeWorldSpec(dataDir))}/models/`;
  const sizes = new Set(
    (await store.list(prefix)).filter((e) => e.key.endsWith(`/${STATUS_FILE}`))
      .map((e) => e.key.slice(prefix.length).split("/")[0]),
  );
  const pulled: string[] = [];
  for (const size of sizes) if (await pullModel(dataDir, size)) pulled.push(size);
  return pulled;
}
