/**
 * The worker loop: lease a job, run its handler with a JobContext (progress, batched metrics, resume state,
 * an abort signal), keep the lease alive with a heartbeat, record the outcome. One worker runs one job at a
 * time; start several (processes or machines) against one Postgres to run jobs in parallel.
 */
import { eq, sql } from "drizzle-orm";
import type { LabDb } from "../../db/client.ts";
import { type Job, jobs, metrics as metricsTable } from "../../db/schema.ts";
import type { EventBus } from "./bus.ts";
import { finishJob, leaseNextJob, renewLease, requeueExpiredJobs } from "./queue.ts";
import {
  getJobHandler,
  type JobContext,
  type MetricRow,
  type ProgressUpdate,
  registeredJobTypes,
} from "./registry.ts";

export interface WorkerOptions {
  db: LabDb;
  dataDir: string;
  bus?: EventBus;
  /** Name written into the lease (defaults to host:pid:random). */
  owner?: string;
  leaseMs?: number;
  heartbeatMs?: number;
  pollMs?: number;
  /** Only lease these job types (default: any). */
  types?: string[];
  log?: (line: string) => void;
}

export interface Worker {
  owner: string;
  /** The job being run now, if any. */
  currentJobId(): number | undefined;
  /** Stops leasing; a running job is aborted and handed back to the queue (its saved state kept). */
  stop(): Promise<void>;
}

/** Why a handler's signal was aborted. */
export class JobAbort extends Error {
  constructor(readonly reason: "cancelled" | "lease-lost" | "shutdown") {
    super(`job aborted: ${reason}`);
  }
}

const PROGRESS_WRITE_MS = 250;
const METRICS_FLUSH_MS = 1000;
const METRICS_BATCH_ROWS = 2000;
/** Postgres allows 65 535 bind parameters per statement; 4 per metric row. */
const METRICS_INSERT_CHUNK = 5000;

export function startWorker(opts: WorkerOptions): Worker {
  const { db, dataDir, bus } = opts;
  const owner = opts.owner ?? `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const leaseMs = opts.leaseMs ?? 30_000;
  const heartbeatMs = opts.heartbeatMs ?? Math.min(2000, Math.floor(leaseMs / 3));
  const pollMs = opts.pollMs ?? 500;
  const log = opts.log ?? ((line: string) => console.log(`[worker ${owner}] ${line}`));

  let stopped = false;
  let current: { job: Job; abort: AbortController } | undefined;
  let wake: (() => void) | undefined;

  const unsubscribe = bus?.subscribe((event) => {
    if (event.status === "queued") wake?.();
    if (event.status === "cancelled" && current?.job.id === event.jobId) {
      current.abort.abort(new JobAbort("cancelled"));
    }
  });

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  async function loop(): Promise<void> {
    while (!stopped) {
      let job: Job | undefined;
      try {
        const requeued = await requeueExpiredJobs(db);
        if (requeued.length > 0) log(`requeued jobs with expired leases: ${requeued.join(", ")}`);
        job = await leaseNextJob(db, owner, leaseMs, opts.types);
      } catch (err) {
        if (stopped) break;
        log(`queue error: ${err instanceof Error ? err.message : err}`);
      }
      if (!job) {
        if (!stopped) await sleep(pollMs);
        continue;
      }
      await runJob(job);
    }
  }

  async function runJob(job: Job): Promise<void> {
    const abort = new AbortController();
    current = { job, abort };
    log(`job ${job.id} (${job.type}) attempt ${job.attempts}`);
    const heartbeat = setInterval(async () => {
      try {
        if (!abort.signal.aborted && !(await renewLease(db, job.id, owner, leaseMs))) {
          const [row] = await db.select({ status: jobs.status }).from(jobs).where(eq(jobs.id, job.id));
          abort.abort(new JobAbort(row?.status === "cancelled" ? "cancelled" : "lease-lost"));
        }
      } catch (err) {
        log(`heartbeat for job ${job.id} failed: ${err instanceof Error ? err.message : err}`);
      }
    }, heartbeatMs);
    const ctx = makeContext(job, abort.signal);
    try {
      const handler = getJobHandler(job.type);
      if (!handler) {
        throw new Error(
          `no handler is registered for job type "${job.type}" (registered: ${
            registeredJobTypes().join(", ")
          })`,
        );
      }
      const result = await handler(ctx.context);
      await ctx.close();
      if (await finishJob(db, job.id, owner, { status: "done", result })) {
        bus?.publish({ ...ctx.lastEvent(), status: "done" });
        log(`job ${job.id} done`);
      }
    } catch (err) {
      await ctx.close().catch((e) => log(`writing metrics of job ${job.id} failed: ${e}`));
      const reason = abort.signal.aborted ? abort.signal.reason : undefined;
      if (reason instanceof JobAbort) {
        if (reason.reason === "shutdown") await finishJob(db, job.id, owner, { status: "queued" });
        log(`job ${job.id} stopped: ${reason.reason}`);
      } else {
        const message = err instanceof Error ? err.message : String(err);
        if (await finishJob(db, job.id, owner, { status: "failed", error: message })) {
          bus?.publish({ ...ctx.lastEvent(), status: "failed", error: message });
        }
        log(`job ${job.id} failed: ${message}`);
      }
    } finally {
      clearInterval(heartbeat);
      current = undefined;
    }
  }

  function makeContext(job: Job, signal: AbortSignal) {
    let pendingMetrics: { runId: number; row: MetricRow }[] = [];
    let writeChain: Promise<void> = Promise.resolve();
    let lastProgressWrite = 0;
    let rateStart: { step: number; time: number } | undefined;
    let lastEvent: import("./bus.ts").JobEvent = { jobId: job.id, type: job.type, status: "running" };

    // Writes are serialized so that progress rows, metric batches and state land in call order.
    const enqueueWrite = (write: () => Promise<unknown>) => {
      writeChain = writeChain.then(write).then(() => {}, (err) => log(`job ${job.id}: write failed: ${err}`));
      return writeChain;
    };

    const flushMetrics = () => {
      if (pendingMetrics.length === 0) return writeChain;
      // One statement cannot upsert a key twice: within a batch the latest row of a (run, name, step) wins.
      const latest = new Map<string, { runId: number; row: MetricRow }>();
      for (const entry of pendingMetrics) {
        latest.set(`${entry.runId}\u0000${entry.row.name}\u0000${entry.row.step}`, entry);
      }
      const batch = [...latest.values()];
      pendingMetrics = [];
      return enqueueWrite(async () => {
        for (let i = 0; i < batch.length; i += METRICS_INSERT_CHUNK) {
          const values = batch.slice(i, i + METRICS_INSERT_CHUNK).map(({ runId, row }) => ({
            runId,
            name: row.name,
            step: row.step,
            value: row.value,
          }));
          // A resumed job recomputes the steps after its last saved state: the recomputed value wins.
          await db.insert(metricsTable).values(values).onConflictDoUpdate({
            target: [metricsTable.runId, metricsTable.name, metricsTable.step],
            set: { value: sql`excluded.value` },
          });
        }
      });
    };
    const flushTimer = setInterval(() => void flushMetrics(), METRICS_FLUSH_MS);

    let trailingProgress: ReturnType<typeof setTimeout> | undefined;
    let lastUpdate: { update: ProgressUpdate; etaSeconds?: number } | undefined;
    const publishProgress = ({ update, etaSeconds }: { update: ProgressUpdate; etaSeconds?: number }) => {
      clearTimeout(trailingProgress);
      trailingProgress = undefined;
      lastProgressWrite = performance.now();
      bus?.publish(lastEvent);
      const progress = { ...update, etaSeconds, at: new Date().toISOString() };
      void enqueueWrite(() =>
        db.update(jobs).set({ progress, updatedAt: sql`now()` }).where(eq(jobs.id, job.id))
      );
    };

    const context: JobContext = {
      jobId: job.id,
      attempt: job.attempts,
      params: job.params,
      dataDir,
      db,
      signal,
      progress(update) {
        const now = performance.now();
        if (!rateStart || update.step < rateStart.step) rateStart = { step: update.step, time: now };
        const stepsDone = update.step - rateStart.step;
        const seconds = (now - rateStart.time) / 1000;
        const etaSeconds = stepsDone > 0 && seconds > 0
          ? Math.max(0, (update.total - update.step) * seconds / stepsDone)
          : undefined;
        lastEvent = {
          jobId: job.id,
          type: job.type,
          status: "running",
          step: update.step,
          total: update.total,
          message: update.message,
          loss: update.metrics?.loss,
          accuracy: update.metrics?.accuracy,
          etaSeconds,
          metrics: update.metrics,
          ...(update.runIds ? { runIds: update.runIds } : {}),
        };
        const last = update.step >= update.total;
        const wait = PROGRESS_WRITE_MS - (now - lastProgressWrite);
        if (!last && wait > 0) {
          // Throttled: the newest update still goes out at the end of the interval (trailing edge), so a
          // long quiet phase after a burst does not leave a stale row behind.
          trailingProgress ??= setTimeout(() => {
            trailingProgress = undefined;
            if (!signal.aborted) publishProgress(lastUpdate!);
          }, wait);
          lastUpdate = { update, etaSeconds };
          return;
        }
        publishProgress({ update, etaSeconds });
      },
      metrics(runId, rows) {
        for (const row of rows) pendingMetrics.push({ runId, row });
        if (pendingMetrics.length >= METRICS_BATCH_ROWS) void flushMetrics();
      },
      flushMetrics: () => flushMetrics(),
      async loadState<T>() {
        const [row] = await db.select({ state: jobs.state }).from(jobs).where(eq(jobs.id, job.id));
        return (row?.state ?? undefined) as T | undefined;
      },
      async saveState(state) {
        await flushMetrics();
        await enqueueWrite(() =>
          db.update(jobs).set({ state, updatedAt: sql`now()` }).where(eq(jobs.id, job.id))
        );
      },
    };

    return {
      context,
      lastEvent: () => lastEvent,
      async close() {
        clearInterval(flushTimer);
        clearTimeout(trailingProgress);
        await flushMetrics();
        await writeChain;
        // The final progress row, even when the last update was throttled away.
        if (lastEvent.step !== undefined) {
          const { step, total, message, metrics, etaSeconds, runIds } = lastEvent;
          await db.update(jobs).set({
            progress: { step, total, message, metrics, etaSeconds, runIds, at: new Date().toISOString() },
          }).where(eq(jobs.id, job.id));
        }
      },
    };
  }

  const running = loop();
  return {
    owner,
    currentJobId: () => current?.job.id,
    async stop() {
      stopped = true;
      current?.abort.abort(new JobAbort("shutdown"));
      wake?.();
      await running;
      unsubscribe?.();
    },
  };
}
