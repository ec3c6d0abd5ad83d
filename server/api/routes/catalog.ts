/** Tasks (list, show, import, delete) and models (the ladder with status; start pretraining). */
import { and, eq, inArray } from "drizzle-orm";
import { Hono } from "hono";
import { jobs, models, tasks } from "../../../db/schema.ts";
import { enqueueJob } from "../../jobs/queue.ts";
import { importTask, listModels, listTasks, requireSize } from "../catalog.ts";
import { ApiError, describeIssues, notFound, validate } from "../errors.ts";
import { METRIC_SERIES, NameParam, PretrainCreate, TaskImportBody, TaskImportQuery } from "../schemas.ts";
import type { ApiDeps } from "../app.ts";

export function taskRoutes({ db }: ApiDeps): Hono {
  const router = new Hono();
  router.get("/", async (c) => c.json(await listTasks(db)));

  router.get("/:name", validate("param", NameParam), async (c) => {
    const name = c.req.valid("param").name;
    const listing = (await listTasks(db)).find((t) => t.name === name);
    if (!listing) throw notFound(`task "${name}"`);
    const [row] = listing.builtin ? [] : await db.select({ examples: tasks.examples }).from(tasks)
      .where(eq(tasks.name, name));
    const examples = (row?.examples as unknown[] | undefined) ?? [];
    return c.json({ ...listing, sample: examples.slice(0, 10) });
  });

  // JSON body {name, description?, jsonl} or the raw JSONL with ?name=…
  router.post("/import", validate("query", TaskImportQuery), async (c) => {
    const contentType = c.req.header("content-type") ?? "";
    let input: { name: string; description?: string; jsonl: string };
    if (/^application\/json/i.test(contentType)) {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        throw new ApiError(400, "bad_json", "request body is not valid JSON");
      }
      const parsed = TaskImportBody.safeParse(body);
      if (!parsed.success) {
        throw new ApiError(400, "invalid_request", describeIssues("body", parsed.error.issues));
      }
      input = parsed.data;
    } else {
      const query = c.req.valid("query");
      if (!query.name) {
        throw new ApiError(400, "invalid_request", "query.name: required when the body is raw JSONL");
      }
      input = { name: query.name, description: query.description, jsonl: await c.req.text() };
    }
    return c.json(await importTask(db, { ...input, source: "api" }), 201);
  });

  router.delete("/:name", validate("param", NameParam), async (c) => {
    const name = c.req.valid("param").name;
    const listing = (await listTasks(db)).find((t) => t.name === name);
    if (!listing) throw notFound(`task "${name}"`);
    if (listing.builtin) {
      throw new ApiError(409, "builtin_task", `"${name}" is built in and cannot be deleted`);
    }
    await db.delete(tasks).where(eq(tasks.name, name));
    return c.json({ deleted: name });
  });
  return router;
}

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
    const { readStatus } = await import("../../lab/pretrain.ts");
    const status = await readStatus(dataDir, name);
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
