/**
 * The job queue, kept in the `jobs` table of the lab's database. A worker leases the oldest queued job with
 * `SELECT … FOR UPDATE SKIP LOCKED` (so two workers never take the same row), renews the lease with a
 * heartbeat, and a job whose lease expired (its worker died) goes back to the queue to resume from its state.
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
  opts: { maxAttempts?: number; bus?: EventBus } = {},
): Promise<Job> {
  const [job] = await db.insert(jobs).values({
    type,
    params: params ?? {},
    maxAttempts: opts.maxAttempts ?? 3,
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

/** Leases the oldest queued job (of one of `types`, when given) for `leaseMs`; undefined when none. */
export async function leaseNextJob(
  db: LabDb,
  owner: string,
  leaseMs: number,
  types?: string[],
  /** Where it runs ({host, owner, adapter}): written on the job row for the Jobs page. */
  ranOn?: Record<string, unknown>,
): Promise<Job | undefined> {
  const conditions = [eq(jobs.status, "queued")];
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

/** Ends a job we hold the lease on; false when it was cancelled or taken from us meanwhile. */
export async function finishJob(
  db: LabDb,
  id: number,
  owner: string,
  outcome: { status: "done"; result: unknown } | { status: "failed"; error: string } | { status: "queued" },
): Promise<boolean> {
  const common = { leaseOwner: null, leaseExpiresAt: null, updatedAt: sql`now()` };
  const values = outcome.status === "done"
    ? { ...common, status: "done", result: outcome.result ?? null, finishedAt: sql`now()` }
    : outcome.status === "failed"
    ? { ...common, status: "failed", error: outcome.error, finishedAt: sql`now()` }
    // Handing a job back on a clean shutdown does not use up one of its attempts.
    : { ...common, status: "queued", attempts: sql`greatest(${jobs.attempts} - 1, 0)` };
  const rows = await db.update(jobs).set(values)
    .where(and(eq(jobs.id, id), eq(jobs.leaseOwner, owner), eq(jobs.status, "running")))
    .returning({ id: jobs.id });
  if (rows.length === 1) await mirrorExperimentStatus(db, id, outcome.status);
  return rows.length === 1;
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
    return { job };
  }
  const existing = await getJob(db, id);
  return existing ? { conflict: existing.status as JobStatus } : {};
}
