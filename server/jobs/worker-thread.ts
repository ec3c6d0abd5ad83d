/**
 * The server's worker on a thread of its own. Training runs seconds of GPU submits and CPU work per step;
 * on the thread that serves HTTP it held every request behind it, so the server runs its worker
 * (worker.ts's loop, unchanged) in a Web Worker with its own WebGPU device. The thread reaches the
 * database through this one: the embedded PGlite answers its queries here (db/proxy.ts); with a
 * DATABASE_URL the thread opens its own connection. Job events cross both ways: progress from the thread
 * onto the server's bus (live streams), `queued` and `cancelled` from the bus to the thread. A thread
 * that dies is started again; its job's lease expires and the job resumes from its saved state.
 */
import type { OpenedDb } from "../../db/client.ts";
import { type ProxyError, type ProxyQuery, toProxyError } from "../../db/proxy.ts";
import type { EventBus, JobEvent } from "./bus.ts";
import type { Worker as JobWorker } from "./worker.ts";

/** Settings the thread's worker loop takes (worker.ts's WorkerOptions that can cross threads). */
export interface ThreadWorkerSettings {
  dataDir: string;
  databaseUrl?: string;
  owner: string;
  pollMs?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  types?: string[];
  /** The training thread's nice value (Linux; 0 keeps the server's priority). */
  nice: number;
  /** WorkerOptions.lanes. */
  lanes?: number;
  /** Modules the thread imports before it starts, to register more job handlers (tests). */
  modules?: string[];
}

/** What the server sends its worker thread. */
export type ToThread =
  | { type: "start"; settings: ThreadWorkerSettings }
  | { type: "event"; event: JobEvent }
  | { type: "answer"; id: number; rows?: unknown[]; error?: ProxyError }
  | { type: "stop" };

/** What the worker thread sends the server. */
export type FromThread =
  | { type: "query"; id: number; query: ProxyQuery }
  | { type: "event"; event: JobEvent }
  | { type: "job"; jobId?: number }
  | { type: "stopped" };

export interface WorkerThreadOptions {
  opened: OpenedDb;
  dataDir: string;
  databaseUrl?: string;
  bus: EventBus;
  pollMs?: number;
  types?: string[];
  modules?: string[];
  /** The training thread's nice value (default TRAINING_NICE). */
  nice?: number;
  /** WorkerOptions.lanes. */
  lanes?: number;
  log?: (line: string) => void;
}

/** How far below the server's priority training runs (see yieldToServer in worker-thread-entry.ts). */
export const TRAINING_NICE = 10;
const ENTRY = new URL("./worker-thread-entry.ts", import.meta.url).href;
/** How long a stopping thread gets to hand its job back before it is ended. */
export const STOP_WAIT_MS = 10_000;
const RESTART_DELAY_MS = 1000;
/**
 * How long stop() lets the terminated thread tear its isolate down before returning: a process that exits
 * while a worker thread is still ending can abort in exit ("corrupted size vs. prev_size in fastbins", README
 * Known problem), and the test module that stops this thread is often the suite's last.
 */
const TEARDOWN_MS = 500;
/** Events the thread's worker listens for: a new job to lease, its job cancelled. */
const FORWARDED = new Set(["queued", "cancelled"]);

export function startWorkerThread(opts: WorkerThreadOptions): JobWorker {
  const { opened, bus } = opts;
  const owner = `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const log = opts.log ?? ((line: string) => console.log(`[worker ${owner}] ${line}`));
  if (!opts.databaseUrl && !opened.answer) throw new Error("the worker thread needs the database's owner");
  const settings: ThreadWorkerSettings = {
    dataDir: opts.dataDir,
    databaseUrl: opts.databaseUrl,
    owner,
    pollMs: opts.pollMs,
    types: opts.types,
    nice: opts.nice ?? TRAINING_NICE,
    modules: opts.modules,
    lanes: opts.lanes,
  };
  let thread: Worker | undefined;
  let currentJob: number | undefined;
  let stopping = false;
  let stopped: (() => void) | undefined;

  const unsubscribe = bus.subscribe((event) => {
    if (FORWARDED.has(event.status)) send({ type: "event", event });
  });

  function send(message: ToThread): void {
    thread?.postMessage(message);
  }

  async function answer(id: number, query: ProxyQuery): Promise<void> {
    try {
      send({ type: "answer", id, rows: await opened.answer!(query) });
    } catch (err) {
      send({ type: "answer", id, error: toProxyError(err) });
    }
  }

  function start(): void {
    const worker = new Worker(ENTRY, { type: "module", name: "lab-worker" });
    thread = worker;
    worker.onmessage = (e: MessageEvent<FromThread>) => {
      const message = e.data;
      if (message.type === "query") void answer(message.id, message.query);
      else if (message.type === "event") bus.publish(message.event);
      else if (message.type === "job") currentJob = message.jobId;
      else if (message.type === "stopped") stopped?.();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      log(`worker thread died: ${e.message}${stopping ? "" : "; starting it again"}`);
      worker.terminate();
      currentJob = undefined;
      if (stopping) stopped?.();
      else setTimeout(() => stopping || start(), RESTART_DELAY_MS);
    };
    worker.postMessage({ type: "start", settings } satisfies ToThread);
  }

  start();
  return {
    owner,
    currentJobId: () => currentJob,
    async stop() {
      if (stopping) return;
      stopping = true;
      unsubscribe();
      const done = new Promise<void>((resolve) => (stopped = resolve));
      send({ type: "stop" });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)));
      await Promise.race([done, late]);
      clearTimeout(timer);
      thread?.terminate();
      currentJob = undefined;
      await new Promise((resolve) => setTimeout(resolve, TEARDOWN_MS));
    },
  };
}
