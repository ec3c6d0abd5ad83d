/**
 * The demo from the API: POST /api/demo starts the demo job (server/jobs/demo-job.ts) with the demo sweep
 * (server/lab/demo.ts DEMO_SWEEP) stored as a sweep named "demo", so it is listed, followed, cancelled and
 * read like any sweep. One demo at a time: a second while one is queued or running is a 409.
 */
import { and, desc, eq, inArray } from "drizzle-orm";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { jobs } from "../../../db/schema.ts";
import { DEMO_JOB_TYPE } from "../../contract/jobs.ts";
import { sweepRequest } from "../../jobs/experiment-jobs.ts";
import { DEMO_SWEEP } from "../../lab/demo.ts";
import type { ApiDeps } from "../deps.ts";
import { ApiError, invalidRequest } from "../errors.ts";
import { defineOperation, serve } from "../operation.ts";
import { ExperimentCreated } from "../responses.ts";
import { createExperimentJob } from "./experiments.ts";

export const DEMO_OPERATION = defineOperation({
  method: "post",
  path: "/demo",
  tag: "sweeps",
  summary: "Run the demo (no body): pretrain nano, micro, mini and small where missing, then sweep every " +
    "world task over every pair (naive; auxconf at the largest gap; seeds 0, 1) as one demo job, stored " +
    "as a sweep named demo; answers {experiment, job}; 409 while a demo is queued or running",
  response: ExperimentCreated,
  created: true,
});

/** The demo takes no settings: a body that names any is refused rather than ignored. */
const DemoBody = z.strictObject({}, {
  error: "the demo takes no settings: send no body or {}, or start a sweep with yours (POST /api/sweeps)",
});

async function refuseSettings(c: Context): Promise<void> {
  const text = (await c.req.text()).trim();
  if (!text) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(400, "bad_json", "body: not valid JSON (the demo takes no body, or {})");
  }
  const parsed = DemoBody.safeParse(body);
  if (!parsed.success) {
    throw invalidRequest("body", DemoBody, parsed.error.issues);
  }
}

export function demoRoutes(deps: ApiDeps): Hono {
  const router = new Hono();
  serve(router, "/demo", DEMO_OPERATION, async (c) => {
    await refuseSettings(c);
    const created = await createExperimentJob(
      deps,
      "sweep",
      DEMO_JOB_TYPE,
      sweepRequest(DEMO_SWEEP, "demo"),
      async (tx) => {
        const [active] = await tx.select({ id: jobs.id, status: jobs.status, params: jobs.params }).from(jobs)
          .where(and(eq(jobs.type, DEMO_JOB_TYPE), inArray(jobs.status, ["queued", "running"])))
          .orderBy(desc(jobs.id)).limit(1);
        if (!active) return;
        const experimentId = (active.params as { experimentId?: number }).experimentId ?? null;
        throw new ApiError(
          409,
          "demo_active",
          `the demo is already ${active.status} (job ${active.id}, sweep ${experimentId}): follow it on the ` +
            `Experiments page, or cancel it (POST /api/jobs/${active.id}/cancel) to start it again`,
          { jobId: active.id, experimentId },
        );
      },
    );
    return c.json(created, 201);
  });
  return router;
}
