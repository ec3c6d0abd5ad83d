/** The job queue over HTTP, and the live event stream (server-sent events). */
import { inArray } from "drizzle-orm";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { jobs } from "../../../db/schema.ts";
import { type JobEvent, JobEventSchema } from "../../contract/jobs.ts";
import { cancelJob, enqueueJob, getJob, listJobs, retryJob } from "../../jobs/queue.ts";
import { z } from "zod";
import { ApiError, notFound } from "../errors.ts";
import { defineOperation, serve } from "../operation.ts";
import { Job } from "../responses.ts";
import { IdParam, JobCreate, JobListQuery } from "../schemas.ts";
import type { ApiDeps } from "../deps.ts";

export const JOB_OPERATIONS = {
  list: defineOperation({
    method: "get",
    path: "/jobs",
    tag: "jobs",
    summary: "The job queue",
    query: JobListQuery,
    response: z.array(Job),
  }),
  create: defineOperation({
    method: "post",
    path: "/jobs",
    tag: "jobs",
    summary: "Enqueue a toy job (toy-train)",
    body: JobCreate,
    response: Job,
    created: true,
  }),
  show: defineOperation({
    method: "get",
    path: "/jobs/{id}",
    tag: "jobs",
    summary: "One job with progress, state, result, error",
    param: IdParam,
    response: Job,
  }),
  cancel: defineOperation({
    method: "post",
    path: "/jobs/{id}/cancel",
    tag: "jobs",
    summary: "Cancel a queued or running job",
    param: IdParam,
    response: Job,
  }),
  retry: defineOperation({
    method: "post",
    path: "/jobs/{id}/retry",
    tag: "jobs",
    summary: "Queue a failed or cancelled job again; it resumes from its saved state",
    param: IdParam,
    response: Job,
  }),
};

export const EVENT_OPERATION = defineOperation({
  method: "get",
  path: "/events",
  tag: "events",
  summary: "Live progress: server-sent events `snapshot`, then `job` (JobEvent) per change, `ping`",
  response: JobEventSchema,
  produces: "text/event-stream",
});

export function jobRoutes({ db, bus }: ApiDeps): Hono {
  const router = new Hono();
  const ops = JOB_OPERATIONS;
  serve(router, "/jobs", ops.list, async (c, { query }) => c.json(await listJobs(db, query)));
  serve(router, "/jobs", ops.create, async (c, { body }) => {
    const { type, params } = body;
    return c.json(await enqueueJob(db, type, params, { bus }), 201);
  });
  serve(router, "/jobs", ops.show, async (c, { param: { id } }) => {
    const job = await getJob(db, id);
    if (!job) throw notFound(`job ${id}`);
    return c.json(job);
  });
  serve(router, "/jobs", ops.cancel, async (c, { param: { id } }) => {
    const outcome = await cancelJob(db, id, bus);
    if (outcome.conflict) {
      throw new ApiError(409, "already_finished", `job ${id} already ${outcome.conflict}`);
    }
    if (!outcome.job) throw notFound(`job ${id}`);
    return c.json(outcome.job);
  });
  serve(router, "/jobs", ops.retry, async (c, { param: { id } }) => {
    const outcome = await retryJob(db, id, bus);
    if (outcome.conflict) {
      throw new ApiError(
        409,
        "not_retryable",
        `job ${id} is ${outcome.conflict}: only a failed or cancelled job can be retried`,
      );
    }
    if (!outcome.job) throw notFound(`job ${id}`);
    return c.json(outcome.job);
  });
  return router;
}

const PING_MS = 15_000;

/** `GET /api/events`: a `snapshot` event with the active jobs, then one `job` event per change. */
export function eventRoutes({ db, bus }: ApiDeps): Hono {
  const router = new Hono();
  serve(router, "/events", EVENT_OPERATION, (c) =>
    streamSSE(c, async (stream) => {
      const queue: JobEvent[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = bus.subscribe((event) => {
        queue.push(event);
        wake?.();
      });
      let closed = false;
      stream.onAbort(() => {
        closed = true;
        unsubscribe();
        wake?.();
      });
      try {
        const active = await db.select().from(jobs).where(inArray(jobs.status, ["queued", "running"]));
        await stream.writeSSE({
          event: "snapshot",
          data: JSON.stringify(
            active.map((j) => ({ jobId: j.id, type: j.type, status: j.status, progress: j.progress })),
          ),
        });
        while (!closed) {
          const event = queue.shift();
          if (event) {
            await stream.writeSSE({ event: "job", data: JSON.stringify(event) });
            continue;
          }
          const timedOut = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(true), PING_MS);
            wake = () => {
              clearTimeout(timer);
              resolve(false);
            };
          });
          wake = undefined;
          if (timedOut && !closed) await stream.writeSSE({ event: "ping", data: "{}" });
        }
      } finally {
        unsubscribe();
      }
    }));
  return router;
}
