/**
 * The lab's world: GET shows it (definition, statements, tasks with their checks, and what each pretrained
 * size of this world knows at each snapshot); POST makes a world file the lab's world; DELETE goes back to
 * the default world. A switch is refused while a job that reads the world is queued or running.
 */
import { and, inArray } from "drizzle-orm";
import { Hono } from "hono";
import { jobs } from "../../../db/schema.ts";
import { DEMO_JOB_TYPE } from "../../contract/jobs.ts";
import type {
  AttributeRecall,
  WorldModelKnowledge,
  WorldOverview,
  WorldSummary,
} from "../../contract/world.ts";
import { activeWorld, type World } from "../../corpus/world.ts";
import {
  checkWorldSpec,
  invalidWorldMessage,
  labWorldPath,
  storeLabWorld,
  worldKey,
} from "../../corpus/world-spec.ts";
import type { KnowledgeReport } from "../../lab/knowledge.ts";
import { LADDER } from "../../lab/ladder.ts";
import { listSnapshots } from "../../lab/model-store.ts";
import { summarizeWorld } from "../../lab/world-summary.ts";
import type { ApiDeps } from "../deps.ts";
import { WorldSpecSchema } from "../../corpus/world-schema.ts";
import { wilsonInterval } from "../../contract/intervals.ts";
import { ApiError } from "../errors.ts";
import { defineOperation, serve } from "../operation.ts";
import { WorldOverview as WorldOverviewSchema } from "../responses.ts";

/** Jobs that read the lab's world while they run: a switch under one would mix two worlds. */
const WORLD_JOB_TYPES = ["pretrain", "w2s", "sweep", DEMO_JOB_TYPE];
/** Summaries kept per world key (a world is a few; building one loads every task's splits). */
const CACHED_SUMMARIES = 8;

/** A knowledge report as the API shows it: recall per attribute and per times-stated bucket. */
function attributeRecall(report: KnowledgeReport | null): AttributeRecall[] {
  return (report?.attributes ?? []).map((a) => ({
    attribute: a.attribute,
    n: a.n,
    accuracy: a.accuracy,
    ci: wilsonInterval(a.correct, a.n),
    majority: a.majority,
    candidates: a.candidates,
    buckets: a.buckets.map((b) => ({
      label: b.label,
      n: b.n,
      accuracy: b.accuracy,
      ci: b.n > 0 ? wilsonInterval(b.correct, b.n) : null,
    })),
  }));
}

/** Every ladder size with snapshots on disk for the lab's current world, smallest first. */
async function worldModels(dataDir: string): Promise<WorldModelKnowledge[]> {
  const models: WorldModelKnowledge[] = [];
  for (const size of LADDER) {
    const snapshots = await listSnapshots(dataDir, size.name);
    if (snapshots.length === 0) continue;
    models.push({
      size: size.name,
      snapshots: snapshots.map((s) => ({
        pct: s.pct,
        tokens: s.tokens,
        attributes: attributeRecall(s.report as KnowledgeReport | null),
      })),
    });
  }
  return models;
}

/** The lab's world; a stored file that no longer checks is named with the way back. */
function labWorld(dataDir: string): World {
  try {
    return activeWorld(dataDir);
  } catch (err) {
    throw new ApiError(
      500,
      "invalid_world_file",
      `${(err as Error).message}\nfix that file, or go back to the default world with DELETE /api/world`,
    );
  }
}

/** LAB_WORLD fixes the server's world (world-spec.ts): a stored world file would be ignored. */
function refuseWhileWorldNamed(): void {
  const named = Deno.env.get("LAB_WORLD");
  if (named) {
    throw new ApiError(
      409,
      "world_fixed",
      `the server's world is fixed by LAB_WORLD=${named}; restart the server without it to switch worlds`,
    );
  }
}

export const WORLD_OPERATIONS = {
  show: defineOperation({
    method: "get",
    path: "/world",
    tag: "world",
    summary:
      "The lab's world: definition, statements, attributes, derived facts, tasks with split sizes and " +
      "the surface-cue check, and each pretrained size's recall per attribute at each snapshot",
    response: WorldOverviewSchema,
  }),
  replace: defineOperation({
    method: "post",
    path: "/world",
    tag: "world",
    summary: "Make a world file the lab's world (400 lists every problem with its field; 409 while a " +
      "pretrain, w2s, sweep or demo job is queued or running); answers the new world as GET does",
    body: WorldSpecSchema,
    handlerReadsBody: true,
    response: WorldOverviewSchema,
    created: true,
  }),
  reset: defineOperation({
    method: "delete",
    path: "/world",
    tag: "world",
    summary: "Back to the default world (409 while a pretrain, w2s, sweep or demo job is queued or running)",
    response: WorldOverviewSchema,
  }),
};

export function worldRoutes({ db, dataDir }: ApiDeps): Hono {
  const router = new Hono();
  const summaries = new Map<string, Promise<WorldSummary>>();
  const summarize = (world: World): Promise<WorldSummary> => {
    const key = worldKey(world.spec);
    let summary = summaries.get(key);
    if (!summary) {
      summary = summarizeWorld(world);
      summary.catch(() => summaries.delete(key));
      summaries.set(key, summary);
      if (summaries.size > CACHED_SUMMARIES) summaries.delete(summaries.keys().next().value!);
    }
    return summary;
  };
  const overview = async (): Promise<WorldOverview> => ({
    ...(await summarize(labWorld(dataDir))),
    models: await worldModels(dataDir),
  });

  const refuseWhileWorldInUse = async () => {
    refuseWhileWorldNamed();
    const [busy] = await db.select({ id: jobs.id, type: jobs.type, status: jobs.status }).from(jobs)
      .where(and(inArray(jobs.status, ["queued", "running"]), inArray(jobs.type, WORLD_JOB_TYPES)))
      .orderBy(jobs.id).limit(1);
    if (busy) {
      throw new ApiError(
        409,
        "world_in_use",
        `job ${busy.id} (${busy.type}) is ${busy.status} on the current world; switching worlds under it ` +
          `would mix two worlds. Wait for it to finish or cancel it, then try again.`,
        { jobId: busy.id },
      );
    }
  };

  serve(router, "/world", WORLD_OPERATIONS.show, async (c) => c.json(await overview()));

  serve(router, "/world", WORLD_OPERATIONS.replace, async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new ApiError(400, "bad_json", "request body is not valid JSON (send the world file's content)");
    }
    const checked = checkWorldSpec(body);
    if (!("spec" in checked)) {
      const { problems } = checked;
      throw new ApiError(400, "invalid_world", invalidWorldMessage("request body", problems), { problems });
    }
    await refuseWhileWorldInUse();
    await storeLabWorld(dataDir, checked.spec);
    return c.json(await overview(), 201);
  });

  serve(router, "/world", WORLD_OPERATIONS.reset, async (c) => {
    await refuseWhileWorldInUse();
    await Deno.remove(labWorldPath(dataDir)).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    return c.json(await overview());
  });
  return router;
}
