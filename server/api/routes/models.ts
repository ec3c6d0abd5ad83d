/**
 * Models: the ladder with pretraining status and the imported Hugging Face GPT-2 models beside it, a
 * size's pretraining curves, starting a pretrain job, registering a model folder, and downloading a size
 * as a Hugging Face folder (one .tar).
 */
import { and, eq, inArray } from "drizzle-orm";
import { Hono } from "hono";
import { jobs, models } from "../../../db/schema.ts";
import { PretrainCreate } from "../../contract/jobs.ts";
import { type ModelListing, OwnModelImport } from "../../contract/models.ts";
import { METRIC_SERIES } from "../../contract/series.ts";
import { enqueueJob } from "../../jobs/queue.ts";
import { pullModel } from "../../lab/artifact-store.ts";
import { hfExportFiles } from "../../lab/hf-export.ts";
import { ladderModelSource } from "../../lab/model-source.ts";
import { readStatus } from "../../lab/model-store.ts";
import { tarChunks } from "../../lab/tar.ts";
import { addOwnModel, OwnModelError, ownModelListings } from "../../lab/own-models.ts";
import { listModels, requireSize } from "../catalog.ts";
import type { ApiDeps } from "../deps.ts";
import { z } from "zod";
import { ApiError, notFound } from "../errors.ts";
import { defineOperation, serve } from "../operation.ts";
import { JobCreated, ModelListingSchema, OwnModelImported, PretrainCurves } from "../responses.ts";
import { NameParam } from "../schemas.ts";

export const MODEL_OPERATIONS = {
  list: defineOperation({
    method: "get",
    path: "/models",
    tag: "models",
    summary: "The ladder with parameters and pretraining status, then the imported models (source)",
    response: z.array(ModelListingSchema),
  }),
  import: defineOperation({
    method: "post",
    path: "/models/import",
    tag: "models",
    summary: "Register a Hugging Face GPT-2 folder on the server's disk as a named model (checked first)",
    body: OwnModelImport,
    response: OwnModelImported,
    created: true,
    errors: {
      400: "The folder is refused: the message names the file or tensor (shape, missing, tokenizer, memory)",
      409: "The name is registered already (force: true replaces it) or is a ladder size",
    },
  }),
  show: defineOperation({
    method: "get",
    path: "/models/{name}",
    tag: "models",
    summary: "One ladder size or imported model",
    param: NameParam,
    response: ModelListingSchema,
  }),
  curves: defineOperation({
    method: "get",
    path: "/models/{name}/curves",
    tag: "models",
    summary: "Pretraining curves of a size (train_loss, val_loss, knowledge) from its status file",
    param: NameParam,
    response: PretrainCurves,
    errors: { 409: "The size's status file is damaged (the message names the problem)" },
  }),
  pretrain: defineOperation({
    method: "post",
    path: "/models/{name}/pretrain",
    tag: "models",
    summary: "Start pretraining a size (enqueues a pretrain job)",
    param: NameParam,
    body: PretrainCreate,
    response: JobCreated,
    created: true,
  }),
  export: defineOperation({
    method: "get",
    path: "/models/{name}/export",
    tag: "models",
    summary: "A pretrained size as a Hugging Face GPT-2 folder in one .tar (what `lab export` writes)",
    param: NameParam,
    response: z.string().meta({ format: "binary" }),
    produces: "application/x-tar",
    errors: {
      404: "The size is not pretrained (the message names the command that pretrains it)",
      409: "The size's status file is damaged (the message names the problem)",
    },
  }),
};

export function modelRoutes({ db, bus, dataDir }: ApiDeps): Hono {
  const router = new Hono();
  const ops = MODEL_OPERATIONS;
  // The ladder's sizes first, then the imported models, each saying which it is.
  const allModels = async (): Promise<ModelListing[]> => [
    ...(await listModels(db, dataDir)).map((m) => ({ ...m, source: "ladder" as const, imported: null })),
    ...await ownModelListings(dataDir),
  ];
  serve(router, "/models", ops.list, async (c) => c.json(await allModels()));

  serve(router, "/models", ops.import, async (c, { body }) => {
    try {
      await addOwnModel(dataDir, body);
    } catch (err) {
      if (!(err instanceof OwnModelError)) throw err;
      throw new ApiError(
        err.conflict ? 409 : 400,
        err.conflict ? "model_exists" : "model_refused",
        err.message,
        {
          field: err.conflict ? "name" : "dir",
        },
      );
    }
    const model = (await ownModelListings(dataDir)).find((m) => m.name === body.name);
    return c.json({ model }, 201);
  });

  serve(router, "/models", ops.show, async (c, { param: { name } }) => {
    const model = (await allModels()).find((m) => m.name === name);
    if (!model) requireSize(name, "name", 404);
    return c.json(model);
  });

  // Pretraining curves from the size's status file (the disk is the source of truth: CLI runs write no
  // db rows), shaped like a run's metric series.
  serve(router, "/models", ops.curves, async (c, { param: { name } }) => {
    requireSize(name, "name", 404);
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

  serve(
    router,
    "/models",
    ops.pretrain,
    async (c, { param: { name: size }, body: options }) => {
      requireSize(size, "name", 404);
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

  serve(router, "/models", ops.export, async (c, { param: { name: size } }) => {
    requireSize(size, "name", 404);
    await pullModel(dataDir, size).catch((err) => console.error(`artifact store: ${(err as Error).message}`));
    const status = await readStatus(dataDir, size).catch((err: Error) => {
      throw new ApiError(409, "broken_status", err.message, { size });
    });
    if (status?.status !== "pretrained") {
      throw new ApiError(
        404,
        "not_pretrained",
        `size "${size}" is not pretrained (${status ? "its pretraining stopped part-way" : "never run"}): ` +
          `pretrain it first (POST /api/models/${size}/pretrain, or deno task lab pretrain --size ${size})`,
        { size },
      );
    }
    const model = await ladderModelSource(dataDir).load(size);
    const files = hfExportFiles({
      config: model.config,
      params: model.params,
      tokenizer: model.tokenizer,
      provenance: { size, checkpoint: model.hash },
    });
    // One folder inside the archive, so unpacking it gives a directory from_pretrained loads.
    const folder = `w2s-lab-${size}`;
    const entries = [...files].map(([file, bytes]) => [`${folder}/${file}`, bytes] as [string, Uint8Array]);
    c.header("Content-Type", "application/x-tar");
    c.header("Content-Disposition", `attachment; filename="${folder}.tar"`);
    return c.body(ReadableStream.from(tarChunks(entries, Date.now() / 1000)));
  });
  return router;
}
