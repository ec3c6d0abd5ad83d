/**
 * `deno task lab worker [--lease-ms N] [--heartbeat-ms N] [--poll-ms N] [--types a,b] [--data-dir D]`: one
 * more worker for the job queue of the Postgres server at DATABASE_URL, sharing pretrained sizes through
 * its artifact store (no shared disk needed; --data-dir, default $LAB_DATA_DIR or ./data, is its local
 * cache). Stops cleanly on SIGINT/SIGTERM, handing its running job back.
 */
import { parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { openDb } from "../../db/client.ts";
import { postgresArtifactStore } from "../../db/artifacts.ts";
import { useArtifactStore } from "../../server/lab/artifact-store.ts";
import "../../server/jobs/handlers.ts";
import { startWorker } from "../../server/jobs/worker.ts";

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    "lease-ms": { type: "string" },
    "heartbeat-ms": { type: "string" },
    "poll-ms": { type: "string" },
    types: { type: "string" },
    "data-dir": { type: "string" },
  });
  const dataDir = values["data-dir"] ?? Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const databaseUrl = Deno.env.get("DATABASE_URL");
  if (!databaseUrl) {
    throw new Error(
      `DATABASE_URL is not set: extra workers share a Postgres server (the embedded database in ${dataDir} ` +
        "belongs to the `deno task start` process, which runs its own worker)",
    );
  }
  const number = (name: "lease-ms" | "heartbeat-ms" | "poll-ms") => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) {
      throw new UsageError(`--${name} must be a positive integer, got "${raw}"`);
    }
    return n;
  };
  const opened = await openDb({ dataDir, databaseUrl });
  // Checkpoints and training states go through the shared database: the data directory is a cache.
  useArtifactStore(postgresArtifactStore(opened.db));
  const worker = startWorker({
    db: opened.db,
    dataDir,
    leaseMs: number("lease-ms"),
    heartbeatMs: number("heartbeat-ms"),
    pollMs: number("poll-ms"),
    types: values.types?.split(",").map((t) => t.trim()).filter(Boolean),
  });
  console.log(`worker ${worker.owner} polling the queue`);
  await new Promise<void>((resolve) => {
    const stop = async () => {
      await worker.stop();
      resolve();
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
  await opened.close();
}
