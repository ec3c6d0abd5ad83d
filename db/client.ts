/**
 * Opens the lab's database: embedded PGlite (Postgres in WASM) file-backed at `<dataDir>/db` by default, or a
 * Postgres server through postgres-js when a DATABASE_URL is given. Migrations from db/migrations are applied
 * on open, so every caller sees the current schema.
 */
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema.ts";

export type LabDb = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface OpenedDb {
  db: LabDb;
  kind: "pglite" | "postgres";
  close(): Promise<void>;
}

const MIGRATIONS_FOLDER = fileURLToPath(new URL("./migrations", import.meta.url));
/** Arbitrary key for the advisory lock that serializes migrations between processes. */
const MIGRATION_LOCK_KEY = 8_787_001;

export async function openDb(opts: { dataDir: string; databaseUrl?: string }): Promise<OpenedDb> {
  if (opts.databaseUrl) return await openPostgres(opts.databaseUrl);
  return await openPglite(`${opts.dataDir}/db`);
}

async function openPglite(dir: string): Promise<OpenedDb> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  await Deno.mkdir(dir, { recursive: true });
  const client = new PGlite(dir);
  await client.waitReady;
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
  return { db: db as unknown as LabDb, kind: "pglite", close: () => client.close() };
}

async function openPostgres(url: string): Promise<OpenedDb> {
  const { default: postgres } = await import("postgres");
  const { drizzle } = await import("drizzle-orm/postgres-js");
  const { migrate } = await import("drizzle-orm/postgres-js/migrator");
  // Several processes may open the same database at once: one session-level lock on one connection
  // makes their migrations run one after the other.
  const migrationClient = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const migrationDb = drizzle(migrationClient);
    await migrationDb.execute(sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
    await migrate(migrationDb, { migrationsFolder: MIGRATIONS_FOLDER });
    await migrationDb.execute(sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`);
  } finally {
    await migrationClient.end();
  }
  const client = postgres(url, { max: 10, onnotice: () => {} });
  const db = drizzle(client, { schema });
  return { db: db as unknown as LabDb, kind: "postgres", close: () => client.end() };
}

/** Rows of a raw `db.execute` result: PGlite returns `{rows}`, postgres-js an array. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}
