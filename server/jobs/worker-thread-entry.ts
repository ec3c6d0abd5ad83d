/**
 * The worker thread's side of worker-thread.ts: lowers its own scheduling priority, opens the database
 * (through the server's PGlite, or its own Postgres connection), bridges job events, and runs worker.ts's
 * loop until the server says stop.
 */
import os from "node:os";
import { type LabDb, openDb } from "../../db/client.ts";
import { postgresArtifactStore } from "../../db/artifacts.ts";
import { fromProxyError, proxyDb, type ProxyQuery } from "../../db/proxy.ts";
import { EventBus, type JobEvent } from "./bus.ts";
import { useArtifactStore } from "../lab/artifact-store.ts";
import "./handlers.ts";
import { startWorker, type Worker as JobWorker } from "./worker.ts";
import type { FromThread, ThreadWorkerSettings, ToThread } from "./worker-thread.ts";

interface ThreadScope {
  postMessage(message: FromThread): void;
  onmessage: ((e: MessageEvent<ToThread>) => void) | null;
}
const scope = globalThis as unknown as ThreadScope;

/** Events published here go to the server's bus; the server's `queued`/`cancelled` arrive on `local`. */
class ThreadBus extends EventBus {
  override publish(event: JobEvent): void {
    scope.postMessage({ type: "event", event });
  }
  deliver(event: JobEvent): void {
    super.publish(event);
  }
}

const pending = new Map<number, { resolve: (rows: unknown[]) => void; reject: (err: Error) => void }>();
let nextQuery = 0;

function ask(query: ProxyQuery): Promise<unknown[]> {
  const id = nextQuery++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    scope.postMessage({ type: "query", id, query });
  });
}

const bus = new ThreadBus();
let worker: JobWorker | undefined;
let close: (() => Promise<void>) | undefined;

/**
 * Training yields the CPU to the thread that serves HTTP: on Linux a nice value belongs to a thread and the
 * threads it starts, so this thread and the software rasterizer's threads (llvmpipe, started with the first
 * GPU device, which this thread creates) run below the server's. Never raised above what it already is.
 */
function yieldToServer(nice: number, log: (line: string) => void): void {
  try {
    os.setPriority(Math.max(os.getPriority(), nice));
  } catch (err) {
    log(`could not lower the training thread's priority (${err instanceof Error ? err.message : err})`);
  }
}

async function start(settings: ThreadWorkerSettings): Promise<void> {
  yieldToServer(settings.nice, (line) => console.error(`[worker ${settings.owner}] ${line}`));
  for (const module of settings.modules ?? []) await import(module);
  let db: LabDb;
  if (settings.databaseUrl) {
    const opened = await openDb({ dataDir: settings.dataDir, databaseUrl: settings.databaseUrl });
    db = opened.db;
    close = opened.close;
    useArtifactStore(postgresArtifactStore(db)); // a shared server: other machines' workers reach it too
  } else {
    db = proxyDb(ask);
  }
  worker = startWorker({
    db,
    dataDir: settings.dataDir,
    bus,
    owner: settings.owner,
    pollMs: settings.pollMs,
    leaseMs: settings.leaseMs,
    heartbeatMs: settings.heartbeatMs,
    types: settings.types,
    lanes: settings.lanes,
    onJobChange: (jobId) => scope.postMessage({ type: "job", jobId }),
  });
}

async function stop(): Promise<void> {
  await worker?.stop();
  await close?.();
  scope.postMessage({ type: "stopped" });
}

scope.onmessage = (e) => {
  const message = e.data;
  if (message.type === "answer") {
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    if (message.error) waiting?.reject(fromProxyError(message.error));
    else waiting?.resolve(message.rows ?? []);
  } else if (message.type === "event") {
    bus.deliver(message.event);
  } else if (message.type === "start") {
    void start(message.settings);
  } else if (message.type === "stop") {
    void stop();
  }
};
