/** Tasks: list, show (with a sample of its examples), import a JSONL file, delete an imported one. */
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { tasks } from "../../../db/schema.ts";
import { TaskImportBody } from "../../contract/tasks.ts";
import { jsonlLines, textLines } from "../../tasks/jsonl.ts";
import { importTask, listTasks, requireTaskUnused, showTask, type TaskImport } from "../catalog.ts";
import type { ApiDeps } from "../deps.ts";
import { z } from "zod";
import { ApiError, invalidRequest, notFound } from "../errors.ts";
import { defineOperation, serve } from "../operation.ts";
import { Deleted, TaskDetail, TaskImported, TaskListingSchema } from "../responses.ts";
import { NameParam, TaskImportQuery } from "../schemas.ts";

export const TASK_OPERATIONS = {
  list: defineOperation({
    method: "get",
    path: "/tasks",
    tag: "tasks",
    summary: "Built-in, world and imported tasks, each with its format (classification or pairwise)",
    response: z.array(TaskListingSchema),
  }),
  show: defineOperation({
    method: "get",
    path: "/tasks/{name}",
    tag: "tasks",
    summary: "One task (imported ones with a sample)",
    param: NameParam,
    response: TaskDetail,
  }),
  import: defineOperation({
    method: "post",
    path: "/tasks/import",
    tag: "tasks",
    summary: "Import a JSONL task: {txt, hard_label} per line (classification) or {prompt?, chosen, " +
      "rejected} per line (pairwise comparisons); a bad line rejects the file, naming its number",
    body: TaskImportBody,
    handlerReadsBody: true,
    rawJsonl: true,
    query: TaskImportQuery,
    response: TaskImported,
    created: true,
  }),
  delete: defineOperation({
    method: "delete",
    path: "/tasks/{name}",
    tag: "tasks",
    summary: "Delete an imported task",
    param: NameParam,
    response: Deleted,
  }),
};

export function taskRoutes(deps: ApiDeps): Hono {
  const { db } = deps;
  const router = new Hono();
  const ops = TASK_OPERATIONS;
  serve(router, "/tasks", ops.list, async (c) => c.json(await listTasks(db, deps.dataDir)));

  serve(router, "/tasks", ops.show, async (c, { param: { name } }) => {
    const task = await showTask(db, deps.dataDir, name);
    if (!task) throw notFound(`task "${name}"`);
    return c.json(task);
  });

  // JSON body {name, description?, jsonl} or the raw JSONL with ?name=…, read as it streams in.
  serve(router, "/tasks", ops.import, async (c, { query }) => {
    const contentType = c.req.header("content-type") ?? "";
    let input: TaskImport;
    if (/^application\/json/i.test(contentType)) {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        throw new ApiError(400, "bad_json", "request body is not valid JSON");
      }
      const parsed = TaskImportBody.safeParse(body);
      if (!parsed.success) {
        throw invalidRequest("body", TaskImportBody, parsed.error.issues);
      }
      const { jsonl, ...named } = parsed.data;
      input = { ...named, lines: textLines(jsonl) };
    } else {
      if (!query.name) {
        throw new ApiError(400, "invalid_request", "query.name: required when the body is raw JSONL");
      }
      const body = c.req.raw.body;
      input = { name: query.name, description: query.description, lines: body ? jsonlLines(body) : [] };
    }
    return c.json(await importTask(db, { ...input, source: "api" }), 201);
  });

  serve(router, "/tasks", ops.delete, async (c, { param: { name } }) => {
    const listing = (await listTasks(db, deps.dataDir)).find((t) => t.name === name);
    if (!listing) throw notFound(`task "${name}"`);
    if (listing.builtin) {
      throw new ApiError(409, "builtin_task", `"${name}" is built in and cannot be deleted`);
    }
    await requireTaskUnused(db, name);
    await db.delete(tasks).where(eq(tasks.name, name));
    return c.json({ deleted: name });
  });
  return router;
}
