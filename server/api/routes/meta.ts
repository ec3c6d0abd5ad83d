/** The API about itself: liveness, a token check, the OpenAPI document and its reference page. */
import { sql } from "drizzle-orm";
import { Hono } from "hono";
import type { ApiDeps } from "../deps.ts";
import { DOCS_ASSETS, DOCS_ASSETS_PATH, DOCS_HTML } from "../docs.ts";
import { errorBody, notFound } from "../errors.ts";
import { defineOperation, serve } from "../operation.ts";
import { Health, Html, Ok, OpenApiDocument } from "../responses.ts";

export const META_OPERATIONS = {
  health: defineOperation({
    method: "get",
    path: "/health",
    tag: "meta",
    summary: "Liveness and database kind (503 with the reason when the database does not answer)",
    response: Health,
  }),
  auth: defineOperation({
    method: "get",
    path: "/auth",
    tag: "meta",
    summary: "Checks the bearer token: 200 {ok: true} when accepted, 401 otherwise",
    auth: true,
    response: Ok,
  }),
  openapi: defineOperation({
    method: "get",
    path: "/openapi.json",
    tag: "meta",
    summary: "This document",
    response: OpenApiDocument,
  }),
  docs: defineOperation({
    method: "get",
    path: "/docs",
    tag: "meta",
    summary: "Interactive API reference",
    response: Html,
    produces: "text/html",
  }),
};

/** Routes mounted at the API's root: `document` is the OpenAPI document GET /openapi.json serves. */
export function metaRoutes(deps: ApiDeps, document: unknown): Hono {
  const router = new Hono();
  const ops = META_OPERATIONS;
  serve(router, "", ops.health, async (c) => {
    const down = await databaseDown(deps);
    if (down) {
      return c.json({ ok: false, db: deps.dbKind ?? "unknown", ...errorBody("database_down", down) }, 503);
    }
    return c.json({ ok: true, db: deps.dbKind ?? "unknown" });
  });
  serve(router, "", ops.auth, (c) => c.json({ ok: true }));
  serve(router, "", ops.openapi, (c) => c.json(document));
  serve(router, "", ops.docs, (c) => c.html(DOCS_HTML));
  // The docs page's own script and stylesheet, not API operations: routed here, left out of the document.
  router.get(`${DOCS_ASSETS_PATH.slice("/api".length)}/:file`, (c) => {
    const asset = DOCS_ASSETS.get(c.req.param("file"));
    if (!asset) throw notFound(`docs asset ${c.req.param("file")}`);
    return c.body(asset.body, 200, {
      "Content-Type": `${asset.contentType}; charset=utf-8`,
      // URLs carry the content hash (?v=), so a browser may keep a file for a year.
      "Cache-Control": "public, max-age=31536000, immutable",
    });
  });
  return router;
}

const HEALTH_QUERY_MS = 2000;

/** Why the database does not answer a trivial query within HEALTH_QUERY_MS, or undefined when it does. */
async function databaseDown(deps: ApiDeps): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${HEALTH_QUERY_MS} ms`)), HEALTH_QUERY_MS);
  });
  try {
    await Promise.race([deps.db.execute(sql`select 1`), timeout]);
    return undefined;
  } catch (err) {
    return `the database does not answer (select 1): ${err instanceof Error ? err.message : err}`;
  } finally {
    clearTimeout(timer);
  }
}
