/**
 * The experiment cache under `<dataDir>/cache`: finished weak models, ceilings, students and their weak
 * labels, stored as JSON (predictions, curves, readings) keyed by a hash of everything that determines
 * them — task, split seed, size, training seed, hyperparameters, the checkpoint's content hash and the
 * hash of the targets it trained on. A resumed or repeated experiment reads them back instead of
 * training again. Files are written under a temporary name and renamed, so a reader never sees half.
 * With a shared artifact store (artifact-store.ts; DATABASE_URL) each entry is also published as
 * `cache/<kind>/<hash>.json`, and a local miss reads the store (its blob verified against its sha-256) and
 * fills the local file, so one machine's finished work is another's hit.
 */

import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../../kernels/checkpoint.ts";
import { artifactStore } from "./artifact-store.ts";

/** Version of every cache key: bump it when a cached value's meaning changes, so old entries miss. */
export const CACHE_VERSION = 2;

/** JSON with sorted object keys, so equal keys hash equally whatever their insertion order. */
export function stableStringify(value: unknown): string {
  if (value === undefined) return "null";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
}

export function hashOf(value: unknown): string {
  return createHash("sha256").update(typeof value === "string" ? value : stableStringify(value)).digest("hex")
    .slice(0, 24);
}

/** Content hash of numbers (targets, parameters): their float64 bytes. */
export function hashNumbers(values: ArrayLike<number>): string {
  return createHash("sha256").update(new Uint8Array(Float64Array.from(values).buffer)).digest("hex").slice(
    0,
    24,
  );
}

export class ExperimentCache {
  hits = 0;
  misses = 0;
  /** Hits served by the shared artifact store (part of `hits`). */
  sharedHits = 0;

  constructor(readonly dir: string) {}

  private file(kind: string, key: unknown): string {
    return `${kind}/${hashOf(key)}.json`;
  }

  async get<T>(kind: string, key: unknown): Promise<T | undefined> {
    const file = this.file(kind, key);
    const local = entryValue(await readTextOrNull(join(this.dir, file)), key);
    if (local !== undefined) {
      this.hits++;
      return local as T;
    }
    const shared = await this.getShared(file, key);
    if (shared === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.sharedHits++;
    return shared as T;
  }

  /** The shared store's entry for `file` when it is whole and for `key` (then copied to the local file). */
  private async getShared(file: string, key: unknown): Promise<unknown> {
    const store = artifactStore();
    if (!store) return undefined;
    const storeKey = `cache/${file}`;
    const [entry] = (await store.list(storeKey)).filter((e) => e.key === storeKey);
    if (!entry) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = await store.read(entry);
    } catch (err) {
      // A blob that does not hash to its name is refused and dropped, so the recomputed entry replaces it.
      console.error(`experiment cache: ${(err as Error).message}; recomputing ${storeKey}`);
      await store.remove([storeKey]);
      return undefined;
    }
    const value = entryValue(new TextDecoder().decode(bytes), key);
    if (value === undefined) return undefined;
    await Deno.mkdir(dirname(join(this.dir, file)), { recursive: true });
    await writeFileAtomic(join(this.dir, file), bytes);
    return value;
  }

  async put(kind: string, key: unknown, value: unknown): Promise<void> {
    const file = this.file(kind, key);
    const bytes = new TextEncoder().encode(
      JSON.stringify({ key, value }, (_, v) => (Number.isNaN(v) ? "NaN" : v)),
    );
    await Deno.mkdir(join(this.dir, kind), { recursive: true });
    await writeFileAtomic(join(this.dir, file), bytes);
    await artifactStore()?.write(`cache/${file}`, bytes);
  }

  /** The cached value, or compute, store and return it. */
  async through<T>(
    kind: string,
    key: unknown,
    compute: () => Promise<T>,
  ): Promise<{ value: T; cached: boolean }> {
    const hit = await this.get<T>(kind, key);
    if (hit !== undefined) return { value: hit, cached: true };
    const value = await compute();
    await this.put(kind, key, value);
    return { value, cached: false };
  }
}

async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * The value a stored entry holds for `key`; undefined when there is none, when the text is damaged (it is
 * recomputed) or when it holds another key (a hash collision or a hand-edited file must not pass for it).
 */
function entryValue(text: string | null, key: unknown): unknown {
  if (text === null) return undefined;
  let stored;
  try {
    stored = JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
  if (stableStringify(stored?.key) !== stableStringify(key)) return undefined;
  return reviveNaN(stored.value);
}

function reviveNaN(value: unknown): unknown {
  if (value === "NaN") return NaN;
  if (Array.isArray(value)) return value.map(reviveNaN);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reviveNaN(v)]));
  }
  return value;
}
