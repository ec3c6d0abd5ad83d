/**
 * The worker loop: lease a job, run its handler with a JobContext (progress, batched metrics, resume state,
 * an abort signal), keep the lease alive with a heartbeat, record the outcome. One worker runs one job at a
 * time; start several (processes or machines) against one Postgres to run jobs in parallel. With a shared
 * artifact store, the sizes other machines pretrained are pulled into the data directory before each job.
 * A handler error a retry can help (isTransientError) requeues the job after RETRY_BACKOFF_MS, its attempt
 * counted, until maxAttempts; any other error fails it at once.
 */
import { eq } from "drizzle-orm";
import type { LabDb } from "../../db/client.ts";
import { type Job, jobs } from "../../db/schema.ts";
import { getGpu } from "../../kernels/device.ts";
import { applyMachineTune } from "../../kernels/ops/matmul-autotune.ts";
import { ArtifactReadError, pullLadder } from "../lab/artifact-store.ts";
import {
  type RunningJob,
  startJobContext,
  withRetries,
  WRITE_RETRY_MS,
  WriteFailedError,
} from "./job-context.ts";
import type { EventBus } from "./bus.ts";
import { finishJob, JobWait, leaseNextJob, renewLease, requeueExpiredJobs } from "./queue.ts";
import { getJobHandler, registeredJobTypes } from "./registry.ts";

export interface WorkerOptions {
  db: LabDb;
  dataDir: string;
  bus?: EventBus;
  /** Name written into the lease (defaults to host:pid:random). */
  owner?: string;
  leaseMs?: number;
  /** How often the lease is renewed; the lease must last at least LEASE_HEARTBEATS of these. */
  heartbeatMs?: number;
  /** Delays between retries of a failed database write (default WRITE_RETRY_MS). */
  writeRetryMs?: readonly number[];
  /** Waits before a job's next attempt after a transient error, by attempt (default RETRY_BACKOFF_MS). */
  retryBackoffMs?: readonly number[];
  pollMs?: number;
  /** Only lease these job types (default: any). */
  types?: string[];
  log?: (line: string) => void;
  /** Called with the job's id when the worker takes one, and undefined when it lets it go. */
  onJobChange?: (jobId: number | undefined) => void;
  /** JobContext.lanes: how many experiments a sweep job runs at once in this worker (default 1). */
  lanes?: number;
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

/** Waits before attempt 2, 3, 4… after a transient error: long enough for a database or a peer to come back. */
export const RETRY_BACKOFF_MS = [2_000, 8_000, 30_000];

/** Network errors (node:net codes and postgres-js's own) that a later try may not meet. */
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);
/** Postgres SQLSTATEs of a server going away, too busy, or a transaction that lost a race. */
const TRANSIENT_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300", "40001", "40P01"]);

/**
 * Whether a retry can help: a lost or refused connection (node, Deno, postgres-js or a Postgres connection
 * exception, SQLSTATE class 08), a database write that failed after its retries, an artifact-store read that
 * failed. Followed through `cause`, as drizzle wraps the driver's error. Anything else (a validation error,
 * a missing checkpoint, a bad task) fails the same way every time.
 */
export function isTransientError(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof WriteFailedError || e instanceof ArtifactReadError) return true;
    if (
      e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.ConnectionReset ||
      e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.TimedOut ||
      e instanceof Deno.errors.BrokenPipe
    ) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") {
      if (TRANSIENT_CODES.has(code) || TRANSIENT_SQLSTATES.has(code)) return true;
      if (/^08[0-9A-Z]{3}$/.test(code)) return true;
    }
  }
  return false;
}

/** A lease outlives this many heartbeats, so a few late ones on a starved machine do not lose it. */
export const LEASE_HEARTBEATS = 10;

/** A transient error with attempts left requeues the job after its backoff; any other error fails it. */
async function recordError(
  job: Job,
  failure: unknown,
  { finish, retryBackoffMs, bus, log, ctx }: {
    finish: (outcome: Parameters<typeof finishJob>[3]) => Promise<boolean>;
    retryBackoffMs: readonly number[];
    bus?: EventBus;
    log: (line: string) => void;
    ctx: RunningJob;
  },
): Promise<void> {
  const message = failure instanceof Error ? failure.message : String(failure);
  if (isTransientError(failure) && job.attempts < job.maxAttempts) {
    const delayMs = retryBackoffMs[Math.min(job.attempts, retryBackoffMs.length) - 1];
    if (await finish({ status: "queued", retry: { delayMs, error: message } })) {
      bus?.publish({ ...ctx.lastEvent(), status: "queued", error: message });
    }
    log(`job ${job.id} attempt ${job.attempts} failed (${message}); it runs again in ${delayMs} ms`);
    return;
  }
  if (await finish({ status: "failed", error: message })) {
    bus?.publish({ ...ctx.lastEvent(), status: "failed", error: message });
  }
  log(`job ${job.id} failed: ${message}`);
}

/**
 * The device every job of this process trains on (created once), with the matmul blocks and operands
 * measured for it where cached (`lab` commands and bench measure them); its name goes on the job rows.
 */
function openDevice(): Promise<string | null> {
  return getGpu().then((gpu) => {
    applyMachineTune(gpu);
    return gpu.adapterName;
  }, () => null);
}

export function startWorker(opts: WorkerOptions): Worker {
  const { db, dataDir, bus } = opts;
  const owner = opts.owner ?? `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const leaseMs = opts.leaseMs ?? 30_000;
  const heartbeatMs = opts.heartbeatMs ?? Math.min(2000, Math.floor(leaseMs / LEASE_HEARTBEATS));
  if (leaseMs < LEASE_HEARTBEATS * heartbeatMs) {
    throw new Error(
      `the lease (--lease-ms ${leaseMs}) must last at least ${LEASE_HEARTBEATS} heartbeats ` +
        `(--heartbeat-ms ${heartbeatMs}): raise --lease-ms to ${LEASE_HEARTBEATS * heartbeatMs} or more`,
    );
  }
  const writeRetryMs = opts.writeRetryMs ?? WRITE_RETRY_MS;
  const retryBackoffMs = opts.retryBackoffMs ?? RETRY_BACKOFF_MS;
  const pollMs = opts.pollMs ?? 500;
  const log = opts.log ?? ((line: string) => console.log(`[worker ${owner}] ${line}`));
  const contextDeps = { db, dataDir, bus, log, writeRetryMs, lanes: opts.lanes };

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
    const adapter = await openDevice();
    const ranOn = { host: Deno.hostname(), owner, adapter };
    while (!stopped) {
      let job: Job | undefined;
      try {
        const requeued = await requeueExpiredJobs(db);
        if (requeued.length > 0) log(`requeued jobs with expired leases: ${requeued.join(", ")}`);
        job = await leaseNextJob(db, owner, leaseMs, opts.types, ranOn);
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
    opts.onJobChange?.(job.id);
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
    // A write that failed for good stops the job now: training on would only produce rows that are lost.
    const onWriteFailure = (err: Error) => abort.abort(err);
    const ctx = startJobContext(job, abort.signal, { ...contextDeps, onWriteFailure });
    const finish = (outcome: Parameters<typeof finishJob>[3]) =>
      withRetries(() => finishJob(db, job.id, owner, outcome), writeRetryMs);
    try {
      const pulled = await pullLadder(dataDir).catch((err) => {
        log(`pulling models from the artifact store failed (the job runs on what is here): ${err.message}`);
        return [];
      });
      if (pulled.length > 0) log(`pulled from the artifact store: ${pulled.join(", ")}`);
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
      if (await finish({ status: "done", result })) {
        bus?.publish({ ...ctx.lastEvent(), status: "done" });
        log(`job ${job.id} done`);
      }
    } catch (err) {
      await ctx.close().catch((e) => log(`writing metrics of job ${job.id} failed: ${e}`));
      const reason = abort.signal.aborted ? abort.signal.reason : undefined;
      try {
        if (err instanceof JobWait && !reason) await finish({ status: "queued", wait: err.wait });
        else if (reason instanceof JobAbort) {
          if (reason.reason === "shutdown") await finish({ status: "queued" });
          log(`job ${job.id} stopped: ${reason.reason}`);
        } else {
          // Lost rows explain the failure better than whatever the handler threw on its way out.
          await recordError(job, ctx.writeFailure() ?? err, { finish, retryBackoffMs, bus, log, ctx });
        }
      } catch (e) {
        log(`job ${job.id}: its outcome could not be recorded (its lease expires and it resumes): ${e}`);
      }
    } finally {
      clearInterval(heartbeat);
      current = undefined;
      opts.onJobChange?.(undefined);
    }
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
