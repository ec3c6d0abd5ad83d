/**
 * The embedded database reached from another thread. PGlite runs inside one thread of one process (the
 * server's), so the thread that trains sends each query there as a message and gets the rows back, through
 * drizzle's pg-proxy driver. Both ends build their SQL with the same dialect, and the owner runs it with the
 * settings drizzle's PGlite driver uses (db/client.ts's `answer`), so rows come back exactly as a direct
 * handle returns them.
 * Transactions cannot span the messages (pg-proxy refuses them); no job code uses one.
 */
import { drizzle } from "drizzle-orm/pg-proxy";
import type { LabDb, ProxyQuery } from "./client.ts";
import * as schema from "./schema.ts";

export type { ProxyQuery };

/** A query's failure as it crosses threads: the message and the Postgres error code, if any. */
export interface ProxyError {
  message: string;
  code?: string;
}

/** A database handle whose queries `run` answers (it posts them to the owning thread). */
export function proxyDb(run: (query: ProxyQuery) => Promise<unknown[]>): LabDb {
  const db = drizzle(async (sql, params, method) => ({ rows: await run({ sql, params, method }) }), {
    schema,
  });
  return db as unknown as LabDb;
}

/** A failure in the form that crosses threads. */
export function toProxyError(err: unknown): ProxyError {
  const code = (err as { code?: unknown })?.code;
  return {
    message: err instanceof Error ? err.message : String(err),
    code: typeof code === "string" ? code : undefined,
  };
}

/** The Error a proxied query rejects with on the calling thread. */
export function fromProxyError(err: ProxyError): Error {
  return Object.assign(new Error(err.message), err.code ? { code: err.code } : {});
}
