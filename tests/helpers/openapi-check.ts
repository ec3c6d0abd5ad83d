/**
 * Holds every response an app gives to the API's OpenAPI document: the status must be one the operation
 * documents, a success body must parse with the operation's response schema and equal what it parsed to
 * (zod objects drop unknown keys, so an undocumented field shows as a difference), an error body must be
 * the documented error shape. `checkResponses(app)` wraps app.request; the problems it finds throw.
 */
import type { Hono } from "hono";
import type { z } from "zod";
import { buildOpenApiDocument, OPERATIONS } from "../../server/api/openapi.ts";
import type { Operation } from "../../server/api/operation.ts";
import { ErrorBody } from "../../server/api/schemas.ts";

const DOCUMENT = buildOpenApiDocument() as {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
};

/** The operation a request reaches, or undefined for paths the API does not route. */
export function operationFor(method: string, pathname: string): Operation | undefined {
  if (!pathname.startsWith("/api/")) return undefined;
  const path = pathname.slice("/api".length);
  const candidates = OPERATIONS.filter((op) => op.method === method.toLowerCase());
  return candidates.find((op) => op.path === path) ??
    candidates.find((op) => new RegExp(`^${op.path.replace(/\{\w+\}/g, "[^/]+")}$`).test(path));
}

/** Where `actual` (the JSON sent) and `parsed` (what the schema kept of it) first differ, or undefined. */
export function firstDifference(actual: unknown, parsed: unknown, at = "body"): string | undefined {
  if (typeof actual !== "object" || actual === null || typeof parsed !== "object" || parsed === null) {
    return Object.is(actual, parsed) ? undefined : `${at}: sent ${JSON.stringify(actual)}`;
  }
  const keys = new Set([...Object.keys(actual), ...Object.keys(parsed)]);
  for (const key of keys) {
    const a = (actual as Record<string, unknown>)[key], p = (parsed as Record<string, unknown>)[key];
    if (!(key in parsed)) return `${at}.${key}: not in the documented schema`;
    if (!(key in actual)) return `${at}.${key}: documented, not sent`;
    const inner = firstDifference(a, p, `${at}.${key}`);
    if (inner) return inner;
  }
  return undefined;
}

function bodyProblem(schema: z.ZodType, body: unknown): string | undefined {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    return parsed.error.issues.map((i) => `body.${i.path.join(".")}: ${i.message}`).join("; ");
  }
  return firstDifference(body, parsed.data);
}

/** What is wrong with a response to `method pathname` by the document; undefined when it conforms. */
export async function responseProblem(method: string, pathname: string, res: Response) {
  const op = operationFor(method, pathname);
  if (!op) return undefined;
  const documented = DOCUMENT.paths[op.path][op.method].responses;
  if (!(String(res.status) in documented)) {
    return `status ${res.status} is not documented (${Object.keys(documented).join(", ")})`;
  }
  if (op.produces === "text/event-stream") return undefined; // a stream never ends: readers test it
  const type = res.headers.get("content-type") ?? "";
  if (res.status >= 400) return bodyProblem(ErrorBody, await res.json());
  if (op.produces) {
    if (!type.startsWith(op.produces)) return `content-type ${type}, documented ${op.produces}`;
    return bodyProblem(op.response, await res.text());
  }
  if (!type.startsWith("application/json")) return `content-type ${type}, documented application/json`;
  return bodyProblem(op.response, await res.json());
}

/** Makes `app.request` throw on a response that breaks the document (naming the operation and field). */
export function checkResponses<App extends Hono>(app: App): App {
  const request = app.request;
  app.request = async (input, init, ...rest) => {
    const res = await request(input, init, ...rest);
    const url = new URL(input instanceof Request ? input.url : String(input), "http://localhost");
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    const problem = await responseProblem(method, url.pathname, res.clone());
    if (problem) throw new Error(`${method} ${url.pathname} → ${res.status}: ${problem}`);
    return res;
  };
  return app;
}
