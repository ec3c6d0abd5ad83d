/**
 * The job queue, kept in the `jobs` table of the lab's database. A worker leases the oldest queued job with
 * `SELECT … FOR UPDATE SKIP LOCKED` (so two workers never take the same row), renews the lease with a
 * heartbeat, and a job whose lease expired (its worker died) goes back to the queue to resume from its state.
 * A job may wait for others (`waits_for`: leased once they are all done, failed when one fails) and for a
 * time (`run_after`); a handler that throws JobWait goes back to the queue that way without using an attempt.
 */
import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import type { LabDb } from "../../db/client.ts";
import { experiments, type Job, jobs } from "../../db/schema.ts";
import type { EventBus, JobStatus } from "./bus.ts";

export const JOB_STATUSES = ["queued", "running", "done", "failed", "cancelled"] as const;
export const FINISHED_STATUSES: readonly JobStatus[] = ["done", "failed", "cancelled"];

export async function enqueueJob(
  db: LabDb,
  type: string,
  params: unknown,
  opts: { maxAttempts?: number; bus?: EventBus; waitsFor?: number[]; parentId?: number } = {},
): Promise<Job> {
  const [job] = await db.insert(jobs).values({
    type,
    params: params ?? {},
    maxAttempts: opts.maxAttempts ?? 3,
    waitsFor: opts.waitsFor ?? [],
    parentId: opts.parentId ?? null,
  }).returning();
  opts.bus?.publish({ jobId: job.id, type, status: "queued" });
  return job;
}

export async function getJob(db: LabDb, id: number): Promise<Job | undefined> {
  const [job] = await db.select().from(jobs).where(eq(jobs.id, id));
  return job;
}

export async function listJobs(
  db: LabDb,
  filter: { status?: string; type?: string; limit?: number; offset?: number } = {},
): Promise<Job[]> {
  const conditions = [];
  if (filter.status) conditions.push(eq(jobs.status, filter.status));
  if (filter.type) conditions.push(eq(jobs.type, filter.type));
  return await db.select().from(jobs).where(and(...conditions)).orderBy(desc(jobs.id))
    .limit(filter.limit ?? 100).offset(filter.offset ?? 0);
}

/**
 * Puts running jobs whose lease has expired back in the queue; a job that has used up its attempts fails
 * instead. Returns the ids requeued.
 */
export async function requeueExpiredJobs(db: LabDb): Promise<number[]> {
  const expired = and(eq(jobs.status, "running"), lt(jobs.leaseExpiresAt, sql`now()`));
  const failed = await db.update(jobs).set({
    status: "failed",
    error:
      sql`'lease expired after ' || ${jobs.attempts} || ' attempts (worker ' || coalesce(${jobs.leaseOwner}, '?') || ' stopped answering)'`,
    leaseOwner: null,
    leaseExpiresAt: null,
    finishedAt: sql`now()`,
    updatedAt: sql`now()`,
  }).where(and(expired, sql`${jobs.attempts} >= ${jobs.maxAttempts}`)).returning({ id: jobs.id });
  const requeued = await db.update(jobs).set({
    status: "queued",
    leaseOwner: null,
    leaseExpiresAt: null,
    updatedAt: sql`now()`,
  }).where(expired).returning({ id: jobs.id });
  // The experiments these jobs run must not keep saying "running".
  for (const { id } of failed) await mirrorExperimentStatus(db, id, "failed");
  for (const { id } of requeued) await mirrorExperimentStatus(db, id, "queued");
  return requeued.map((r) => r.id);
}

/** Experiments mirror the status of the job that runs them. */
async function mirrorExperimentStatus(db: LabDb, jobId: number, status: JobStatus): Promise<void> {
  const finished = FINISHED_STATUSES.includes(status);
  await db.update(experiments).set({ status, finishedAt: finished ? sql`now()` : null })
    .where(eq(experiments.jobId, jobId));
}

/** Thrown by a handler to go back to the queue until `waitsFor` are done and `delayMs` has passed. */
export class JobWait extends Error {
  constructor(readonly why: string, readonly wait: { waitsFor?: number[]; delayMs?: number }) {
    super(`waiting: ${why}`);
  }
}

// The dependant's own column, spelled out: inside a subquery over `dep` an unqualified name would be dep's.
const OWN_WAITS_FOR = sql.raw(`"jobs"."waits_for"`);
const BROKEN_DEP =
  sql`from ${jobs} as dep where dep.id = any(${OWN_WAITS_FOR}) and dep.status in ('failed', 'cancelled')`;

/** Fails queued jobs that wait for a job which failed or was cancelled, naming it; returns their ids. */
export async function failBlockedJobs(db: LabDb): Promise<number[]> {
  const failed = await db.update(jobs).set({
    status: "failed",
    error:
      sql`(select 'job ' || dep.id || ' (' || dep.type || '), which this job waits for, ' || dep.status ||
      coalesce(': ' || dep.error, '') ${BROKEN_DEP} order by dep.id limit 1)`,
    finishedAt: sql`now()`,
    updatedAt: sql`now()`,
  }).where(and(eq(jobs.status, "queued"), sql`exists (select 1 ${BROKEN_DEP})`)).returning({ id: jobs.id });
  for (const { id } of failed) {
    await mirrorExperimentStatus(db, id, "failed");
    // The rest of a failed sweep's cells would train for nothing.
    await db.update(jobs).set({ status: "cancelled", finishedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(jobs.parentId, id), eq(jobs.status, "queued")));
  }
  return failed.map((r) => r.id);
}

/** Leases the oldest queued job (of one of `types`, when given) for `leaseMs`; undefined when none. */
export async function leaseNextJob(
  db: LabDb,
  owner: string,
  leaseMs: number,
  types?: string[],
  /** Where it runs ({host, owner, adapter}): written on the job row for the Jobs page. */
  ranOn?: Record<string, unknown>,
): Promise<Job | undefined> {
  await failBlockedJobs(db);
  const conditions = [
    eq(jobs.status, "queued"),
    sql`(${jobs.runAfter} is null or ${jobs.runAfter} <= now())`,
    sql`not exists (select 1 from ${jobs} as dep where dep.id = any(${OWN_WAITS_FOR}) and dep.status <> 'done')`,
  ];
  if (types && types.length > 0) conditions.push(inArray(jobs.type, types));
  const next = db.select({ id: jobs.id }).from(jobs).where(and(...conditions)).orderBy(jobs.id).limit(1)
    .for("update", { skipLocked: true });
  const [job] = await db.update(jobs).set({
    status: "running",
    leaseOwner: owner,
    leaseExpiresAt: sql`now() + ${leaseMs} * interval '1 millisecond'`,
    attempts: sql`${jobs.attempts} + 1`,
    ranOn: ranOn ?? null,
    startedAt: sql`coalesce(${jobs.startedAt}, now())`,
    updatedAt: sql`now()`,
  }).where(inArray(jobs.id, next)).returning();
  if (job) await mirrorExperimentStatus(db, job.id, "running");
  return job;
}

/** Renews a lease; false when the job is no longer ours (cancelled, or requeued after a lost lease). */
export async function renewLease(db: LabDb, id: number, owner: string, leaseMs: number): Promise<boolean> {
  const rows = await db.update(jobs).set({
    leaseExpiresAt: sql`now() + ${leaseMs} * interval '1 millisecond'`,
  }).where(and(eq(jobs.id, id), eq(jobs.leaseOwner, owner), eq(jobs.status, "running")))
    .returning({ id: jobs.id });
  return rows.length === 1;
}

/**
 * Ends a job we hold the lease on, or hands it back to the queue (`wait`: until those jobs are done and
 * that time has passed; `retry`: after a transient error, in `delayMs`, its attempt counted); false when it
 * was cancelled or taken from us meanwhile.
 */
export async function finishJob(
  db: LabDb,
  id: number,
  owner: string,
  outcome:
    | { status: "done"; result: unknown }
    | { status: "failed"; error: string }
    | { status: "queued"; wait?: JobWait["wait"] }
    | { status: "queued"; retry: { delayMs: number; error: string } },
): Promise<boolean> {
  const common = { leaseOwner: null, leaseExpiresAt: null, updatedAt: sql`now()` };
  const values = outcome.status === "done"
    ? { ...common, status: "done", result: outcome.result ?? null, error: null, finishedAt: sql`now()` }
    : outcome.status === "failed"
    ? { ...common, status: "failed", error: outcome.error, finishedAt: sql`now()` }
    // A retry after a transient error keeps the attempt it used; its error stays readable while it waits.
    : "retry" in outcome
    ? {
      ...common,
      status: "queued",
      error: outcome.retry.error,
      runAfter: sql`now() + ${outcome.retry.delayMs} * interval '1 millisecond'`,
    }
    // Handing a job back (a clean shutdown, a wait) does not use up one of its attempts.
    : {
      ...common,
      status: "queued",
      attempts: sql`greatest(${jobs.attempts} - 1, 0)`,
      ...waitColumns(outcome.wait),
    };
  const rows = await db.update(jobs).set(values)
    .where(and(eq(jobs.id, id), eq(jobs.leaseOwner, owner), eq(jobs.status, "running")))
    .returning({ id: jobs.id });
  // A waiting job's experiment stays "running": its work goes on elsewhere (its cells, a pretraining).
  const waiting = outcome.status === "queued" && "wait" in outcome && outcome.wait;
  if (rows.length === 1 && !waiting) await mirrorExperimentStatus(db, id, outcome.status);
  return rows.length === 1;
}

function waitColumns(wait?: JobWait["wait"]) {
  if (!wait) return {};
  return {
    waitsFor: wait.waitsFor ?? [],
    runAfter: sql`now() + ${wait.delayMs ?? 0} * interval '1 millisecond'`,
  };
}

/**
 * Queues a failed or cancelled job again with its saved state, so it resumes where it stopped (a write that
 * failed through a database outage, a cancel regretted). Its attempts start over: the retry is the user's.
 * Returns the job after the change, or `{conflict}` when it is not failed or cancelled.
 */
export async function retryJob(
  db: LabDb,
  id: number,
  bus?: EventBus,
): Promise<{ job?: Job; conflict?: JobStatus }> {
  const [job] = await db.update(jobs).set({
    status: "queued",
    attempts: 0,
    error: null,
    finishedAt: null,
    updatedAt: sql`now()`,
  }).where(and(eq(jobs.id, id), inArray(jobs.status, ["failed", "cancelled"]))).returning();
  if (job) {
    await mirrorExperimentStatus(db, job.id, "queued");
    bus?.publish({ jobId: job.id, type: job.type, status: "queued" });
    // A sweep's cells that failed or were cancelled with it run again too (the done ones are kept).
    for (const child of await childrenIn(db, job.id, ["failed", "cancelled"])) await retryJob(db, child, bus);
    return { job };
  }
  const existing = await getJob(db, id);
  return existing ? { conflict: existing.status as JobStatus } : {};
}

/**
 * Cancels a queued or running job (a running one's worker notices at its next heartbeat and aborts the
 * handler). Returns the job after the change, or `{conflict}` when it had already finished.
 */
export async function cancelJob(
  db: LabDb,
  id: number,
  bus?: EventBus,
): Promise<{ job?: Job; conflict?: JobStatus }> {
  const [job] = await db.update(jobs).set({
    status: "cancelled",
    leaseOwner: null,
    leaseExpiresAt: null,
    finishedAt: sql`now()`,
    updatedAt: sql`now()`,
  }).where(and(eq(jobs.id, id), inArray(jobs.status, ["queued", "running"]))).returning();
  if (job) {
    await mirrorExperimentStatus(db, job.id, "cancelled");
    bus?.publish({ jobId: job.id, type: job.type, status: "cancelled" });
    for (const child of await childrenIn(db, job.id, ["queued", "running"])) await cancelJob(db, child, bus);
    return { job };
  }
  const existing = await getJob(db, id);
  return existing ? { conflict: existing.status as JobStatus } : {};
}

/** The ids of the jobs `parentId` queued that are in one of `statuses`. */
async function childrenIn(db: LabDb, parentId: number, statuses: JobStatus[]): Promise<number[]> {
  const rows = await db.select({ id: jobs.id }).from(jobs)
    .where(and(eq(jobs.parentId, parentId), inArray(jobs.status, statuses))).orderBy(jobs.id);
  return rows.map((r) => r.id);
}
