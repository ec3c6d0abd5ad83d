/**
 * The lab's HTTP API: `createApp({db, dataDir, token, bus})` returns a Hono app with every route under /api.
 * Small routers are composed with app.route; validation, auth, body limits and errors are middleware, so a
 * handler only sees typed, valid, authorized input.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ApiDeps } from "./deps.ts";
import { ApiError, errorBody, handleError } from "./errors.ts";
import { buildOpenApiDocument } from "./openapi.ts";
import { metaRoutes } from "./routes/meta.ts";
import { modelRoutes } from "./routes/models.ts";
import { benchRoutes, probeRoutes, resultRoutes } from "./routes/results.ts";
import { runRoutes } from "./routes/runs.ts";
import { demoRoutes } from "./routes/demo.ts";
import { experimentRoutes } from "./routes/experiments.ts";
import { eventRoutes, jobRoutes } from "./routes/jobs.ts";
import { taskRoutes } from "./routes/tasks.ts";
import { worldRoutes } from "./routes/world.ts";
import { hostGuard } from "./security.ts";
import { tokensEqual } from "./token.ts";

/** A body read whole: a JSON import ({name, jsonl}) or a world file. */
export const IMPORT_BODY_LIMIT = 10 * 1024 * 1024;
/** A raw JSONL import, read line by line in 500-row batches: memory stays flat, so only disk bounds it. */
export const STREAMED_IMPORT_LIMIT = 256 * 1024 * 1024;
export const DEFAULT_BODY_LIMIT = 64 * 1024;

const tooLarge = (limit: number): MiddlewareHandler =>
  bodyLimit({
    maxSize: limit,
    onError: (c) =>
      c.json(errorBody("payload_too_large", `request body exceeds ${limit} bytes`, { limit }), 413),
  });

export function createApp(deps: ApiDeps): Hono {
  const api = new Hono();
  const importLimit = tooLarge(IMPORT_BODY_LIMIT);
  const streamedImportLimit = tooLarge(STREAMED_IMPORT_LIMIT);
  const defaultLimit = tooLarge(DEFAULT_BODY_LIMIT);

  // Mutations need the bearer token; reads are open. GET /api/auth checks a token without changing anything.
  api.use("*", async (c, next) => {
    const isAuthCheck = c.req.path === "/api/auth";
    if (!isAuthCheck && ["GET", "HEAD", "OPTIONS"].includes(c.req.method)) return await next();
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !tokensEqual(match[1].trim(), deps.token)) {
      throw new ApiError(
        401,
        "unauthorized",
        match
          ? "wrong API token"
          : "this request needs `Authorization: Bearer <token>` (see <data dir>/token)",
      );
    }
    await next();
  });
  api.use("*", async (c, next) => {
    const isImport = c.req.path.endsWith("/tasks/import");
    if (!isImport && c.req.raw.body && !["GET", "HEAD"].includes(c.req.method)) {
      const type = c.req.header("content-type") ?? "";
      const length = c.req.header("content-length");
      // Without a Content-Type, only a declared length or chunked transfer says a body was sent.
      const sent = type
        ? length !== "0"
        : (length ?? "0") !== "0" || c.req.header("transfer-encoding") !== undefined;
      if (sent && !/^application\/([\w.-]+\+)?json/i.test(type)) {
        throw new ApiError(
          400,
          "unsupported_media_type",
          `request body must be JSON (Content-Type: application/json), got "${type || "none"}"`,
        );
      }
    }
    // A world file names every entity when it lists them: as large as an import.
    const isWorldFile = c.req.path === "/api/world";
    const isJson = /^application\/json/i.test(c.req.header("content-type") ?? "");
    const limit = isImport && !isJson
      ? streamedImportLimit
      : isImport || isWorldFile
      ? importLimit
      : defaultLimit;
    return await limit(c, next);
  });

  api.route("/", metaRoutes(deps, buildOpenApiDocument()));
  api.route("/experiments", experimentRoutes(deps, "experiment"));
  api.route("/sweeps", experimentRoutes(deps, "sweep"));
  api.route("/demo", demoRoutes(deps));
  api.route("/tasks", taskRoutes(deps));
  api.route("/models", modelRoutes(deps));
  api.route("/world", worldRoutes(deps));
  api.route("/runs", runRoutes(deps));
  api.route("/results", resultRoutes(deps));
  api.route("/probes", probeRoutes(deps));
  api.route("/bench", benchRoutes(deps));
  api.route("/jobs", jobRoutes(deps));
  api.route("/events", eventRoutes(deps));
  api.all("*", (c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));

  const app = new Hono();
  // Before every route, the dashboard's included (main.ts mounts this app at "/").
  app.use("*", hostGuard(deps.host));
  app.route("/api", api);
  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError(handleError);
  return app;
}
