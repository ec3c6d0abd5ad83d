/** What every router of the API is built with. */
import type { LabDb } from "../../db/client.ts";
import type { EventBus } from "../jobs/bus.ts";

export interface ApiDeps {
  db: LabDb;
  dataDir: string;
  token: string;
  bus: EventBus;
  /** "pglite" or "postgres", shown by /api/health. */
  dbKind?: string;
  /** The --host the server binds: a name the Host header may carry (server/api/security.ts). */
  host?: string;
}
