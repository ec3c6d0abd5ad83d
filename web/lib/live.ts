/**
 * Live job events from `GET /api/events` (server-sent events): the latest event per job, a counter that
 * moves whenever a job is created or changes state (lists reload on it), and per-job and per-run event
 * counters, so a run's curves reload on events about that run only (events name the runs being trained).
 */
import { signal } from "@preact/signals";
import type { JobEvent } from "../../server/contract/jobs.ts";

/** Latest event per job id. */
export const liveJobs = signal<ReadonlyMap<number, JobEvent>>(new Map());
/** Bumped on every status change (queued, done, failed, cancelled): a cue for lists to reload. */
export const statusVersion = signal(0);
/** Bumped on every event, progress included. */
export const eventVersion = signal(0);
export const streamState = signal<"connecting" | "live" | "offline">("connecting");
/** Events per job id, and per run id for events that name the runs being trained. */
export const jobEventCounts = signal<ReadonlyMap<number, number>>(new Map());
export const runEventCounts = signal<ReadonlyMap<number, number>>(new Map());

function bump(counts: ReadonlyMap<number, number>, ids: readonly number[]): ReadonlyMap<number, number> {
  const next = new Map(counts);
  for (const id of ids) next.set(id, (next.get(id) ?? 0) + 1);
  return next;
}

/**
 * A cue that changes when an event concerns this run: events of its job that name their runs count only
 * when they name this one; events of jobs that name no runs count for all the job's runs.
 */
export function runCue(runId: number, jobId: number | null): number {
  if (jobId === null) return 0;
  const latest = liveJobs.value.get(jobId);
  return latest?.runIds ? runEventCounts.value.get(runId) ?? 0 : jobEventCounts.value.get(jobId) ?? 0;
}

/** When the lab server last answered (an API response, the event stream opening); null before it has. */
export const serverAnsweredAt = signal<Date | null>(null);
/** The server stopped answering (a request could not reach it): what is on screen may be stale. */
export const serverAway = signal(false);

export function noteServerAnswered(): void {
  serverAnsweredAt.value = new Date();
  serverAway.value = false;
}

export function noteServerAway(): void {
  serverAway.value = true;
}

let source: EventSource | undefined;

function apply(event: JobEvent): void {
  const previous = liveJobs.value.get(event.jobId);
  const next = new Map(liveJobs.value);
  next.set(event.jobId, event);
  liveJobs.value = next;
  jobEventCounts.value = bump(jobEventCounts.value, [event.jobId]);
  if (event.runIds?.length) runEventCounts.value = bump(runEventCounts.value, event.runIds);
  eventVersion.value++;
  if (!previous || previous.status !== event.status || event.status !== "running") statusVersion.value++;
}

export function connectEvents(): void {
  if (source) return;
  source = new EventSource("/api/events");
  source.onopen = () => {
    streamState.value = "live";
    noteServerAnswered();
  };
  // EventSource reconnects by itself; show the gap meanwhile, and ask whether the server is there at all.
  source.onerror = () => {
    streamState.value = source?.readyState === EventSource.CLOSED ? "offline" : "connecting";
    fetch("/api/health").then((res) => void res.body?.cancel(), noteServerAway);
  };
  source.addEventListener("snapshot", (e) => {
    const active = JSON.parse((e as MessageEvent).data) as Array<
      { jobId: number; type: string; status: JobEvent["status"]; progress?: Record<string, unknown> | null }
    >;
    const next = new Map(liveJobs.value);
    for (const job of active) {
      const p = job.progress ?? {};
      next.set(job.jobId, {
        jobId: job.jobId,
        type: job.type,
        status: job.status,
        step: p.step as number | undefined,
        total: p.total as number | undefined,
        etaSeconds: p.etaSeconds as number | undefined,
        message: p.message as string | undefined,
        metrics: p.metrics as Record<string, number> | undefined,
        runIds: Array.isArray(p.runIds) ? p.runIds as number[] : undefined,
      });
    }
    liveJobs.value = next;
    statusVersion.value++;
  });
  source.addEventListener("job", (e) => apply(JSON.parse((e as MessageEvent).data) as JobEvent));
}
