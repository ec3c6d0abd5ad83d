/**
 * Job handlers by type. The pipeline registers `pretrain`, `w2s`, `sweep` and `bench` here; `toy-train` is
 * built in (server/jobs/toy-train-job.ts). A job whose type has no handler fails with a clear error.
 */
import type { LabDb } from "../../db/client.ts";

export interface ProgressUpdate {
  step: number;
  total: number;
  /** What step and total count ("tokens", "steps", "experiments"); shown beside them. */
  unit?: string;
  message?: string;
  /** Latest figures shown live (loss, accuracy, …). */
  metrics?: Record<string, number>;
  /** The run(s) being trained now, where the handler knows them (pages of other runs need not reload). */
  runIds?: number[];
}

export interface MetricRow {
  name: string;
  step: number;
  value: number;
}

export interface JobContext {
  jobId: number;
  /** 1 on the first try, 2 after one requeue, … */
  attempt: number;
  params: unknown;
  dataDir: string;
  db: LabDb;
  /**
   * How many experiments a sweep job runs at once here, each lane in a device worker of its own. Above 1
   * only where no other worker leases from this queue (the server on its embedded database with one worker
   * thread): elsewhere a sweep fans out into sweep-cell jobs that any worker may take.
   */
  lanes?: number;
  /** Aborted when the job is cancelled, its lease is lost or the worker shuts down. */
  signal: AbortSignal;
  /** Updates the job row (throttled) and publishes a live event with an ETA. */
  progress(update: ProgressUpdate): void;
  /** Queues metric rows; written in batches at least every second and when the job ends. */
  metrics(runId: number, rows: MetricRow[]): void;
  /** Writes pending metrics now. */
  flushMetrics(): Promise<void>;
  loadState<T = unknown>(): Promise<T | undefined>;
  /** Saves resume information; pending metrics are written first so state never runs ahead of them. */
  saveState(state: unknown): Promise<void>;
}

export type JobHandler = (ctx: JobContext) => Promise<unknown>;

const handlers = new Map<string, JobHandler>();

export function registerJobHandler(type: string, handler: JobHandler): void {
  handlers.set(type, handler);
}

export function getJobHandler(type: string): JobHandler | undefined {
  return handlers.get(type);
}

export function registeredJobTypes(): string[] {
  return [...handlers.keys()].sort();
}
