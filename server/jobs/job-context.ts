/**
 * What a job handler gets from its worker (registry.ts's JobContext): progress with an ETA, throttled to
 * one database write per PROGRESS_WRITE_MS (the newest update still goes out on the trailing edge),
 * metric rows batched and upserted, resume state, and the abort signal. Every database write of one job
 * goes through one serial queue, so progress rows, metric batches and state land in call order; each is
 * retried with backoff, and one that still fails fails the job (it resumes from its saved state), so a job
 * is never `done` over missing rows.
 */
import { eq, sql } from "drizzle-orm";
import type { LabDb } from "../../db/client.ts";
import { type Job, jobs, metrics as metricsTable, runs } from "../../db/schema.ts";
import type { EventBus, JobEvent } from "./bus.ts";
import type { JobContext, MetricRow, ProgressUpdate } from "./registry.ts";

const PROGRESS_WRITE_MS = 250;
const METRICS_FLUSH_MS = 1000;
const METRICS_BATCH_ROWS = 2000;
/** Postgres allows 65 535 bind parameters per statement; 4 per metric row. */
const METRICS_INSERT_CHUNK = 5000;

export interface JobContextDeps {
  db: LabDb;
  dataDir: string;
  bus?: EventBus;
  log: (line: string) => void;
  /** Delays between retries of a failed write (default WRITE_RETRY_MS). */
  writeRetryMs?: readonly number[];
  /** Called once when a write fails for good (the worker aborts the job). */
  onWriteFailure?: (err: Error) => void;
  /** JobContext.lanes (default 1). */
  lanes?: number;
}

/** A job's context, the last event it published, and close() (flushes everything; call it once). */
export interface RunningJob {
  context: JobContext;
  lastEvent(): JobEvent;
  /** The write that failed after every retry, if one did. */
  writeFailure(): Error | undefined;
  close(): Promise<void>;
}

/** Waits before each retry of a failed write: a database outage of a few seconds loses nothing. */
export const WRITE_RETRY_MS = [100, 200, 400, 800, 1600, 3200];

/** A write the database refused after every retry: the job must fail (it resumes from its saved state). */
export class WriteFailedError extends Error {
  constructor(cause: unknown, tries: number) {
    super(`a database write failed ${tries} times over the retries (${cause}); the job stops here`, {
      cause,
    });
  }
}

/** Runs `write`, retrying after each delay of `retryMs`; throws WriteFailedError once they are used up. */
export async function withRetries<T>(
  write: () => Promise<T>,
  retryMs: readonly number[] = WRITE_RETRY_MS,
  onRetry?: (err: unknown, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= retryMs.length) throw new WriteFailedError(err, attempt + 1);
      onRetry?.(err, retryMs[attempt]);
      await new Promise((resolve) => setTimeout(resolve, retryMs[attempt]));
    }
  }
}

/**
 * Serialized writes: each starts after the previous one settled and is retried with backoff. The first write
 * that fails for good is kept: every later write is skipped and `drained()` rejects with it, so a job never
 * ends `done` over missing rows; `onFailure` lets the worker stop the job at once.
 */
function writeQueue(
  log: (line: string) => void,
  retryMs: readonly number[],
  onFailure: (err: Error) => void,
) {
  let chain: Promise<void> = Promise.resolve();
  let failure: Error | undefined;
  const retry = (err: unknown, delayMs: number) => log(`write failed, retrying in ${delayMs} ms: ${err}`);
  /** The queue so far, settled: rejects with the kept failure, if any. */
  const settled = () =>
    chain.then(() => {
      if (failure) throw failure;
    });
  return {
    enqueue(write: () => Promise<unknown>): Promise<void> {
      chain = chain.then(async () => {
        if (failure) return;
        try {
          await withRetries(write, retryMs, retry);
        } catch (err) {
          failure = err as Error;
          log(`write failed for good: ${failure.message}`);
          onFailure(failure);
        }
      });
      return settled();
    },
    drained: settled,
    failure: () => failure,
  };
}

/** Metric rows buffered per job and upserted in chunks (a resumed job's recomputed value wins). */
function metricBuffer(db: LabDb, writes: ReturnType<typeof writeQueue>) {
  let pending: { runId: number; row: MetricRow }[] = [];
  const flush = () => {
    if (pending.length === 0) return writes.drained();
    // One statement cannot upsert a key twice: within a batch the latest row of a (run, name, step) wins.
    const latest = new Map<string, { runId: number; row: MetricRow }>();
    for (const entry of pending) {
      latest.set(`${entry.runId}\u0000${entry.row.name}\u0000${entry.row.step}`, entry);
    }
    const batch = [...latest.values()];
    pending = [];
    return writes.enqueue(async () => {
      for (let i = 0; i < batch.length; i += METRICS_INSERT_CHUNK) {
        const values = batch.slice(i, i + METRICS_INSERT_CHUNK).map(({ runId, row }) => ({
          runId,
          name: row.name,
          step: row.step,
          value: row.value,
        }));
        await db.insert(metricsTable).values(values).onConflictDoUpdate({
          target: [metricsTable.runId, metricsTable.name, metricsTable.step],
          set: { value: sql`excluded.value` },
        });
      }
    });
  };
  return {
    add(runId: number, rows: MetricRow[]) {
      for (const row of rows) pending.push({ runId, row });
      // A failure is kept by the write queue and surfaces at the next awaited flush, state or close.
      if (pending.length >= METRICS_BATCH_ROWS) flush().catch(() => {});
    },
    flush,
  };
}

/** The event a progress update publishes, with an ETA from the rate since the first update. */
function progressEvent(job: Job, update: ProgressUpdate, etaSeconds: number | undefined): JobEvent {
  return {
    jobId: job.id,
    type: job.type,
    status: "running",
    step: update.step,
    total: update.total,
    ...(update.unit ? { unit: update.unit } : {}),
    message: update.message,
    loss: update.metrics?.loss,
    accuracy: update.metrics?.accuracy,
    etaSeconds,
    metrics: update.metrics,
    ...(update.runIds ? { runIds: update.runIds } : {}),
  };
}

/** Progress: ETA, bus events and throttled progress rows. */
function progressReporter(
  job: Job,
  signal: AbortSignal,
  deps: JobContextDeps,
  writes: ReturnType<typeof writeQueue>,
) {
  const { db, bus } = deps;
  let lastProgressWrite = 0;
  let rateStart: { step: number; time: number } | undefined;
  let lastEvent: JobEvent = { jobId: job.id, type: job.type, status: "running" };
  let trailing: ReturnType<typeof setTimeout> | undefined;
  let lastUpdate: { update: ProgressUpdate; etaSeconds?: number } | undefined;

  const publish = ({ update, etaSeconds }: { update: ProgressUpdate; etaSeconds?: number }) => {
    clearTimeout(trailing);
    trailing = undefined;
    lastProgressWrite = performance.now();
    bus?.publish(lastEvent);
    const progress = { ...update, etaSeconds, at: new Date().toISOString() };
    writes.enqueue(() => db.update(jobs).set({ progress, updatedAt: sql`now()` }).where(eq(jobs.id, job.id)))
      .catch(() => {});
  };

  return {
    lastEvent: () => lastEvent,
    report(update: ProgressUpdate) {
      const now = performance.now();
      if (!rateStart || update.step < rateStart.step) rateStart = { step: update.step, time: now };
      const stepsDone = update.step - rateStart.step;
      const seconds = (now - rateStart.time) / 1000;
      const etaSeconds = stepsDone > 0 && seconds > 0
        ? Math.max(0, (update.total - update.step) * seconds / stepsDone)
        : undefined;
      lastEvent = progressEvent(job, update, etaSeconds);
      const last = update.step >= update.total;
      const wait = PROGRESS_WRITE_MS - (now - lastProgressWrite);
      if (!last && wait > 0) {
        // Throttled: the newest update still goes out at the end of the interval (trailing edge), so a
        // long quiet phase after a burst does not leave a stale row behind.
        trailing ??= setTimeout(() => {
          trailing = undefined;
          if (!signal.aborted) publish(lastUpdate!);
        }, wait);
        lastUpdate = { update, etaSeconds };
        return;
      }
      publish({ update, etaSeconds });
    },
    stop: () => clearTimeout(trailing),
  };
}

export function startJobContext(job: Job, signal: AbortSignal, deps: JobContextDeps): RunningJob {
  const { db } = deps;
  const writes = writeQueue(
    (line) => deps.log(`job ${job.id}: ${line}`),
    deps.writeRetryMs ?? WRITE_RETRY_MS,
    (err) => deps.onWriteFailure?.(err),
  );
  const metrics = metricBuffer(db, writes);
  const progress = progressReporter(job, signal, deps, writes);
  const flushTimer = setInterval(() => metrics.flush().catch(() => {}), METRICS_FLUSH_MS);

  const context: JobContext = {
    jobId: job.id,
    attempt: job.attempts,
    params: job.params,
    dataDir: deps.dataDir,
    db,
    lanes: deps.lanes ?? 1,
    signal,
    progress: (update) => progress.report(update),
    metrics: (runId, rows) => metrics.add(runId, rows),
    flushMetrics: () => metrics.flush(),
    async loadState<T>() {
      const [row] = await db.select({ state: jobs.state }).from(jobs).where(eq(jobs.id, job.id));
      return (row?.state ?? undefined) as T | undefined;
    },
    async saveState(state) {
      await metrics.flush();
      await writes.enqueue(() =>
        db.update(jobs).set({ state, updatedAt: sql`now()` }).where(eq(jobs.id, job.id))
      );
    },
  };

  return {
    context,
    lastEvent: progress.lastEvent,
    writeFailure: writes.failure,
    async close() {
      clearInterval(flushTimer);
      progress.stop();
      await metrics.flush();
      await writes.drained();
      // The final progress row, even when the last update was throttled away.
      const { step, total, message, metrics: values, etaSeconds, runIds } = progress.lastEvent();
      if (step !== undefined) {
        await withRetries(() =>
          db.update(jobs).set({
            progress: {
              step,
              total,
              message,
              metrics: values,
              etaSeconds,
              runIds,
              at: new Date().toISOString(),
            },
          }).where(eq(jobs.id, job.id)), deps.writeRetryMs);
      }
    },
  };
}

/** Marks a job's run finished, its seconds measured by the database from the run's start. */
export async function markRunDone(db: LabDb, runId: number): Promise<void> {
  await db.update(runs).set({
    status: "done",
    finishedAt: sql`now()`,
    seconds: sql`extract(epoch from now() - ${runs.startedAt})`,
  }).where(eq(runs.id, runId));
}
