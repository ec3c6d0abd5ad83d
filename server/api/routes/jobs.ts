/** The job queue over HTTP, and the live event stream (server-sent events). */
import { inArray } from "drizzle-orm";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { jobs } from "../../../db/schema.ts";
import type { JobEvent } from "../../contract/jobs.ts";
import { cancelJob, enqueueJob, getJob, listJobs, retryJob } from "../../jobs/queue.ts";
import { ApiError, notFound, validate } from "../errors.ts";
import { IdParam, JobCreate, JobListQuery } from "../schemas.ts";
import type { ApiDeps } from "../deps.ts";

export function jobRoutes({ db, bus }: ApiDeps): Hono {
  const router = new Hono();
  router.get(
    "/",
    validate("query", JobListQuery),
    async (c) => c.json(await listJobs(db, c.req.valid("query"))),
  );
  router.post("/", validate("json", JobCreate), async (c) => {
    const { type, params } = c.req.valid("json");
    return c.json(await enqueueJob(db, type, params, { bus }), 201);
  });
  router.get("/:id", validate("param", IdParam), async (c) => {
    const id = c.req.valid("param").id;
    const job = await getJob(db, id);
    if (!job) throw notFound(`job ${id}`);
    return c.json(job);
  });
  router.post("/:id/cancel", validate("param", IdParam), async (c) => {
    const id = c.req.valid("param").id;
    const outcome = await cancelJob(db, id, bus);
    if (outcome.conflict) {
      throw new ApiError(409, "already_finished", `job ${id} already ${outcome.conflict}`);
    }
    if (!outcome.job) throw notFound(`job ${id}`);
    return c.json(outcome.job);
  });
  router.post("/:id/retry", validate("param", IdParam), async (c) => {
    const id = c.req.valid("param").id;
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
  router.get("/", (c) =>
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
