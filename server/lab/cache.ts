/**
 * The experiment cache under `<dataDir>/cache`: finished weak models, ceilings, students and their weak
 * labels, stored as JSON (predictions, curves, readings) keyed by a hash of everything that determines
 * them — task, split seed, size, training seed, hyperparameters, the checkpoint's content hash and the
 * hash of the targets it trained on. A resumed or repeated experiment reads them back instead of
 * training again. Files are written under a temporary name and renamed, so a reader never sees half.
 */

import { createHash } from "node:crypto";
import { join } from "node:path";

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

  constructor(readonly dir: string) {}

  private path(kind: string, key: unknown): string {
    return join(this.dir, kind, `${hashOf(key)}.json`);
  }

  async get<T>(kind: string, key: unknown): Promise<T | undefined> {
    try {
      const stored = JSON.parse(await Deno.readTextFile(this.path(kind, key)));
      // A hash collision or a hand-edited file must not pass for the requested entry.
      if (stableStringify(stored.key) !== stableStringify(key)) return undefined;
      this.hits++;
      return reviveNaN(stored.value) as T;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        this.misses++;
        return undefined;
      }
      if (err instanceof SyntaxError) return undefined; // a damaged file is recomputed
      throw err;
    }
  }

  async put(kind: string, key: unknown, value: unknown): Promise<void> {
    const path = this.path(kind, key);
    await Deno.mkdir(join(this.dir, kind), { recursive: true });
    const temporary = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.writeTextFile(
      temporary,
      JSON.stringify({ key, value }, (_, v) => (Number.isNaN(v) ? "NaN" : v)),
    );
    await Deno.rename(temporary, path);
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

function reviveNaN(value: unknown): unknown {
  if (value === "NaN") return NaN;
  if (Array.isArray(value)) return value.map(reviveNaN);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reviveNaN(v)]));
  }
  return value;
}
