/**
 * Opens the lab's database: embedded PGlite (Postgres in WASM) file-backed at `<dataDir>/db` by default, or a
 * Postgres server through postgres-js when a DATABASE_URL is given. Migrations from db/migrations are applied
 * on open, so every caller sees the current schema.
 * The data directory and db/ are owner-only (0700); PGlite writes its files 0666 whatever the umask, so
 * opening and closing also take the group and other bits off everything under db/.
 */
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema.ts";
import { claimDbOwner } from "./owner.ts";

export type LabDb = PgDatabase<PgQueryResultHKT, typeof schema>;

/** One query another thread sends (db/proxy.ts): `all` wants rows as arrays (drizzle maps them), `execute` as objects. */
export interface ProxyQuery {
  sql: string;
  params: unknown[];
  method: "all" | "execute";
}

export interface OpenedDb {
  db: LabDb;
  kind: "pglite" | "postgres";
  /** Embedded PGlite only: answers a query another thread of this process sends (db/proxy.ts). */
  answer?: (query: ProxyQuery) => Promise<unknown[]>;
  close(): Promise<void>;
}

const MIGRATIONS_FOLDER = fileURLToPath(new URL("./migrations", import.meta.url));
/** Arbitrary key for the advisory lock that serializes migrations between processes. */
const MIGRATION_LOCK_KEY = 8_787_001;

/** `serves`: the opener is the lab server, which other commands can reach through its API (db/owner.ts). */
export async function openDb(
  opts: { dataDir: string; databaseUrl?: string; serves?: boolean },
): Promise<OpenedDb> {
  if (opts.databaseUrl) return await openPostgres(opts.databaseUrl);
  await makeOwnerOnlyDir(opts.dataDir);
  const release = await claimDbOwner(opts.dataDir, { serves: opts.serves });
  try {
    const opened = await openPglite(`${opts.dataDir}/db`);
    return { ...opened, close: () => opened.close().finally(release) };
  } catch (err) {
    release();
    throw err;
  }
}

async function openPglite(dir: string): Promise<OpenedDb> {
  const { PGlite, types } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  await makeOwnerOnlyDir(dir);
  const client = new PGlite(dir);
  await client.waitReady;
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
  await restrictTree(dir);
  const close = async () => {
    await client.close();
    await restrictTree(dir);
  };
  // As drizzle's PGlite driver runs its queries: the types drizzle parses itself come over as text.
  const parsers = Object.fromEntries(
    [types.TIMESTAMP, types.TIMESTAMPTZ, types.INTERVAL, types.DATE, 1231, 1115, 1185, 1187, 1182]
      .map((oid) => [oid, (value: string) => value]),
  );
  const answer = async ({ sql, params, method }: ProxyQuery) =>
    (await client.query(sql, params, { rowMode: method === "all" ? "array" : "object", parsers })).rows;
  return { db: db as unknown as LabDb, kind: "pglite", answer, close };
}

const OWNER_ONLY = Deno.build.os !== "windows";

/** Creates `dir` (and parents) if needed and makes it 0700: what it holds is the owner's alone. */
export async function makeOwnerOnlyDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  if (OWNER_ONLY) await Deno.chmod(dir, 0o700);
}

/** Takes the group and other permission bits off every file and directory under `dir`. */
async function restrictTree(dir: string): Promise<void> {
  if (!OWNER_ONLY) return;
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isSymlink) continue;
    const path = `${dir}/${entry.name}`;
    try {
      const { mode } = await Deno.lstat(path);
      if (mode !== null && (mode & 0o077) !== 0) await Deno.chmod(path, mode & 0o700);
      if (entry.isDirectory) await restrictTree(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err; // the database removed it meanwhile
    }
  }
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
