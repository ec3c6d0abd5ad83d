/** Models: the ladder with pretraining status, a size's pretraining curves, and starting a pretrain job. */
import { and, eq, inArray } from "drizzle-orm";
import { Hono } from "hono";
import { jobs, models } from "../../../db/schema.ts";
import { PretrainCreate } from "../../contract/jobs.ts";
import { METRIC_SERIES } from "../../contract/series.ts";
import { enqueueJob } from "../../jobs/queue.ts";
import { readStatus } from "../../lab/model-store.ts";
import { listModels, requireSize } from "../catalog.ts";
import type { ApiDeps } from "../deps.ts";
import { ApiError, notFound, validate } from "../errors.ts";
import { NameParam } from "../schemas.ts";

export function modelRoutes({ db, bus, dataDir }: ApiDeps): Hono {
  const router = new Hono();
  router.get("/", async (c) => c.json(await listModels(db, dataDir)));

  router.get("/:name", validate("param", NameParam), async (c) => {
    const name = c.req.valid("param").name;
    requireSize(name, "name");
    return c.json((await listModels(db, dataDir)).find((m) => m.name === name));
  });

  // Pretraining curves from the size's status file (the disk is the source of truth: CLI runs write no
  // db rows), shaped like a run's metric series.
  router.get("/:name/curves", validate("param", NameParam), async (c) => {
    const name = c.req.valid("param").name;
    requireSize(name, "name");
    const status = await readStatus(dataDir, name).catch((err: Error) => {
      // A damaged status file is that size's problem, named, not a server error.
      throw new ApiError(409, "broken_status", err.message, { size: name });
    });
    if (!status) throw notFound(`pretraining curves of "${name}" (not pretrained)`);
    const series = (points: { step: number; value: number }[] = []) => ({
      points: points.map((p) => ({ step: p.step, value: p.value })),
      rows: points.length,
      downsampled: false,
    });
    return c.json({
      runId: 0,
      series: {
        [METRIC_SERIES.trainLoss]: series(status.curves.train),
        [METRIC_SERIES.valLoss]: series(status.curves.val),
        [METRIC_SERIES.knowledge]: series(status.curves.knowledge),
      },
    });
  });

  router.post(
    "/:name/pretrain",
    validate("param", NameParam),
    validate("json", PretrainCreate),
    async (c) => {
      const size = c.req.valid("param").name;
      requireSize(size, "name");
      const options = c.req.valid("json");
      const [busy] = await db.select({ id: jobs.id }).from(models).innerJoin(jobs, eq(jobs.id, models.jobId))
        .where(and(eq(models.name, size), inArray(jobs.status, ["queued", "running"])));
      if (busy) {
        throw new ApiError(
          409,
          "already_pretraining",
          `size "${size}" is already being pretrained (job ${busy.id})`,
          {
            jobId: busy.id,
          },
        );
      }
      const job = await enqueueJob(db, "pretrain", { size, ...options }, { bus });
      await db.insert(models).values({ name: size, status: "queued", jobId: job.id }).onConflictDoUpdate({
        target: models.name,
        set: { status: "queued", jobId: job.id },
      });
      return c.json({ job }, 201);
    },
  );
  return router;
}
