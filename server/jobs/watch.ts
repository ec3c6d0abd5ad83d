/**
 * Makes job changes from other processes visible on this process's event bus. Extra workers (`deno task
 * lab worker` on a shared DATABASE_URL) have no way to reach the server's in-process bus, but every change
 * they make to a job bumps `jobs.updated_at`; this watcher polls that index every ~500 ms and publishes
 * the changed rows as job events. Changes this process already published (its own worker, the API) are
 * recognized by their status and step and not sent twice. Works the same on Postgres and PGlite.
 */
import { gt, sql } from "drizzle-orm";
import { type LabDb, rowsOf } from "../../db/client.ts";
import { jobs } from "../../db/schema.ts";
import type { JobProgress } from "../contract/jobs.ts";
import type { EventBus, JobEvent, JobStatus } from "./bus.ts";

export interface JobWatcher {
  /** Polls once now (tests; the timer does this on its own). */
  poll(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Rows are re-read this far behind the newest `updated_at` seen: `now()` is the time a transaction started,
 * so a change can commit after a later-stamped one and would be skipped by a strict cursor.
 */
const OVERLAP_US = 2_000_000;
const MAX_ROWS_PER_POLL = 500;

/** The newest change of one job this bus has carried: its status, and for a running job the highest step. */
interface Published {
  status: string;
  step: number;
}

/** Folds an event into what was published; a running job's step only grows until its status changes. */
function record(previous: Published | undefined, event: JobEvent): Published {
  const step = event.step ?? -1;
  if (previous && previous.status === event.status && event.status === "running") {
    return { status: "running", step: Math.max(previous.step, step) };
  }
  return { status: event.status, step };
}

/** Already carried: same status, and for a running job no step beyond the highest one (rows can lag). */
function alreadyPublished(previous: Published | undefined, event: JobEvent): boolean {
  if (!previous || previous.status !== event.status) return false;
  return event.status !== "running" || (event.step ?? -1) <= previous.step;
}

export function jobRowToEvent(row: {
  id: number;
  type: string;
  status: string;
  progress: unknown;
  error: string | null;
}): JobEvent {
  const progress = (row.progress ?? {}) as JobProgress;
  const event: JobEvent = { jobId: row.id, type: row.type, status: row.status as JobStatus };
  if (progress.step !== undefined) event.step = progress.step;
  if (progress.total !== undefined) event.total = progress.total;
  if (progress.message !== undefined) event.message = progress.message;
  if (progress.metrics) {
    event.metrics = progress.metrics;
    if (progress.metrics.loss !== undefined) event.loss = progress.metrics.loss;
    if (progress.metrics.accuracy !== undefined) event.accuracy = progress.metrics.accuracy;
  }
  if (progress.etaSeconds !== undefined && row.status === "running") event.etaSeconds = progress.etaSeconds;
  if (Array.isArray(progress.runIds) && row.status === "running") event.runIds = progress.runIds;
  if (row.error && row.status === "failed") event.error = row.error;
  return event;
}

export async function startJobWatcher(opts: {
  db: LabDb;
  bus: EventBus;
  intervalMs?: number;
  log?: (line: string) => void;
}): Promise<JobWatcher> {
  const { db, bus } = opts;
  const intervalMs = opts.intervalMs ?? 500;
  const log = opts.log ?? ((line: string) => console.error(`[job watcher] ${line}`));

  // What this bus has carried per job, whoever published it (the local worker, the API, this watcher).
  const published = new Map<number, Published>();
  const lastSeenAt = new Map<number, number>();
  const unsubscribe = bus.subscribe((event) => {
    published.set(event.jobId, record(published.get(event.jobId), event));
  });

  // The cursor lives in database time (microseconds since the epoch, exact in a double), so clocks of
  // different machines never matter and two changes within one millisecond stay apart.
  const [{ now }] = rowsOf<{ now: number | string }>(
    await db.execute(sql`select (extract(epoch from now()) * 1000000)::float8 as now`),
  );
  let cursor = Number(now);

  async function poll(): Promise<void> {
    const rows = await db.select({
      id: jobs.id,
      type: jobs.type,
      status: jobs.status,
      progress: jobs.progress,
      error: jobs.error,
      at: sql<number>`(extract(epoch from ${jobs.updatedAt}) * 1000000)::float8`,
    }).from(jobs).where(gt(jobs.updatedAt, sql`to_timestamp(${(cursor - OVERLAP_US) / 1e6})`))
      .orderBy(jobs.updatedAt).limit(MAX_ROWS_PER_POLL);
    for (const row of rows) {
      const at = Number(row.at);
      cursor = Math.max(cursor, at);
      if (at <= (lastSeenAt.get(row.id) ?? -Infinity)) continue;
      lastSeenAt.set(row.id, at);
      const event = jobRowToEvent(row);
      if (alreadyPublished(published.get(row.id), event)) continue;
      bus.publish(event);
    }
    // Forget jobs that left the overlap window: they cannot come back through it unchanged.
    for (const [id, at] of lastSeenAt) {
      if (at < cursor - 2 * OVERLAP_US) {
        lastSeenAt.delete(id);
        published.delete(id);
      }
    }
    // Jobs only ever published locally and long finished: a bounded memory is enough.
    if (published.size > 10_000) published.clear();
  }

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = poll().catch((err) => log(`poll failed: ${err instanceof Error ? err.message : err}`))
        .finally(schedule);
    }, intervalMs);
  };
  schedule();

  return {
    poll: () => poll(),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      unsubscribe();
    },
  };
}
