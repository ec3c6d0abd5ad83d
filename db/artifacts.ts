/**
 * The artifact store (server/lab/artifact-store.ts) in the shared Postgres: `artifacts` names a file by a
 * key relative to any data directory and points at a blob by its sha-256; `artifact_chunks` holds each blob
 * once, in chunks. No transaction is needed (the server's worker thread has none): chunks are written before
 * the name that points at them, and a blob's chunks are deleted only when no name points at it any more.
 */
import { asc, eq, inArray, sql } from "drizzle-orm";
import type { LabDb } from "./client.ts";
import { artifactChunks, artifacts } from "./schema.ts";
import { type ArtifactEntry, type ArtifactStore, sha256Hex } from "../server/lab/artifact-store.ts";

/** Bytes per chunk: well under Postgres's 1 GB field limit, small enough to stream. */
export const CHUNK_BYTES = 4 * 1024 * 1024;

export function postgresArtifactStore(db: LabDb, chunkBytes = CHUNK_BYTES): ArtifactStore {
  /** Deletes the chunks of blobs no name points at any more. */
  const collect = async (hashes: string[]) => {
    for (const hash of new Set(hashes)) {
      const [used] = await db.select({ key: artifacts.key }).from(artifacts).where(eq(artifacts.hash, hash))
        .limit(1);
      if (!used) await db.delete(artifactChunks).where(eq(artifactChunks.hash, hash));
    }
  };
  return {
    async list(prefix) {
      return await db.select({ key: artifacts.key, hash: artifacts.hash, size: artifacts.size }).from(
        artifacts,
      )
        .where(sql`starts_with(${artifacts.key}, ${prefix})`).orderBy(asc(artifacts.key));
    },
    async read(entry: ArtifactEntry) {
      const rows = await db.select({ idx: artifactChunks.idx, bytes: artifactChunks.bytes }).from(
        artifactChunks,
      )
        .where(eq(artifactChunks.hash, entry.hash)).orderBy(asc(artifactChunks.idx));
      const bytes = new Uint8Array(rows.reduce((n, r) => n + r.bytes.length, 0));
      let offset = 0;
      for (const [i, row] of rows.entries()) {
        if (row.idx !== i) break;
        bytes.set(row.bytes, offset);
        offset += row.bytes.length;
      }
      if (offset !== entry.size || sha256Hex(bytes) !== entry.hash) {
        throw new Error(
          `artifact ${entry.key}: the store holds ${offset} bytes that do not hash to ${entry.hash} ` +
            `(${entry.size} bytes expected; replaced meanwhile, or damaged): publish it again`,
        );
      }
      return bytes;
    },
    async write(key, bytes) {
      const hash = sha256Hex(bytes);
      const [before] = await db.select({ hash: artifacts.hash }).from(artifacts).where(
        eq(artifacts.key, key),
      );
      if (before?.hash === hash) return;
      for (let idx = 0, at = 0; at < bytes.length || idx === 0; idx++, at += chunkBytes) {
        await db.insert(artifactChunks).values({ hash, idx, bytes: bytes.subarray(at, at + chunkBytes) })
          .onConflictDoNothing();
      }
      await db.insert(artifacts).values({ key, hash, size: bytes.length }).onConflictDoUpdate({
        target: artifacts.key,
        set: { hash, size: bytes.length, updatedAt: sql`now()` },
      });
      if (before) await collect([before.hash]);
    },
    async remove(keys) {
      if (keys.length === 0) return;
      const gone = await db.delete(artifacts).where(inArray(artifacts.key, keys))
        .returning({ hash: artifacts.hash });
      await collect(gone.map((r) => r.hash));
    },
  };
}
