/**
 * Live job events from `GET /api/events` (server-sent events): the latest event per job, and a counter that
 * moves whenever a job is created or changes state, so lists know when to reload.
 */
import { signal } from "@preact/signals";
import type { JobEvent } from "./types.ts";

/** Latest event per job id. */
export const liveJobs = signal<ReadonlyMap<number, JobEvent>>(new Map());
/** Bumped on every status change (queued, done, failed, cancelled): a cue for lists to reload. */
export const statusVersion = signal(0);
/** Bumped on every event, progress included. */
export const eventVersion = signal(0);
export const streamState = signal<"connecting" | "live" | "offline">("connecting");

let source: EventSource | undefined;

function apply(event: JobEvent): void {
  const previous = liveJobs.value.get(event.jobId);
  const next = new Map(liveJobs.value);
  next.set(event.jobId, event);
  liveJobs.value = next;
  eventVersion.value++;
  if (!previous || previous.status !== event.status || event.status !== "running") statusVersion.value++;
}

export function connectEvents(): void {
  if (source) return;
  source = new EventSource("/api/events");
  source.onopen = () => (streamState.value = "live");
  // EventSource reconnects by itself; show the gap meanwhile.
  source.onerror =
    () => (streamState.value = source?.readyState === EventSource.CLOSED ? "offline" : "connecting");
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
      });
    }
    liveJobs.value = next;
    statusVersion.value++;
  });
  source.addEventListener("job", (e) => apply(JSON.parse((e as MessageEvent).data) as JobEvent));
}
