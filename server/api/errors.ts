/**
 * The API's one error shape, `{error: {code, message, details}}`, and the zod validator hook that produces it.
 * Handlers throw ApiError; anything else becomes a 500 without a stack trace (the stack goes to the log).
 */
import type { Context, ValidationTargets } from "hono";
import { HTTPException } from "hono/http-exception";
import { zValidator } from "@hono/zod-validator";
import type { z } from "zod";

export type ErrorStatus = 400 | 401 | 404 | 409 | 413 | 500;

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, details: details ?? null } };
}

/** 404 for `what` ("run 7"), with an optional hint after it (" (7 is a sweep: …)"). */
export const notFound = (what: string, hint = "") =>
  new ApiError(404, "not_found", `${what} not found${hint}`);

/** One readable line per zod issue: `body.weak: expected string, received number`. */
export function describeIssues(target: string, issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((issue) => {
    const path = issue.path.length > 0 ? `.${issue.path.join(".")}` : "";
    return `${target}${path}: ${issue.message}`;
  }).join("; ");
}

const TARGET_NAMES: Record<string, string> = { json: "body", query: "query", param: "path" };

/** The keys of an object schema (to list beside an unknown key); none for other schemas. */
function acceptedKeys(schema: z.ZodType): string[] {
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

/** An unknown top-level key's issue also says which keys the schema takes. */
function withAcceptedKeys(issue: z.core.$ZodIssue, accepted: string[]): z.core.$ZodIssue {
  if (issue.code !== "unrecognized_keys" || issue.path.length > 0 || accepted.length === 0) return issue;
  return { ...issue, message: `${issue.message}; accepted keys: ${accepted.join(", ")}` };
}

/** The 400 for a value a schema refused: one line per issue naming its field, the issues as details. */
export function invalidRequest(
  target: string,
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
): ApiError {
  const accepted = acceptedKeys(schema);
  const named = issues.map((issue) => withAcceptedKeys(issue, accepted));
  return new ApiError(400, "invalid_request", describeIssues(target, named), {
    issues: named.map((i) => ({ path: [target, ...i.path.map(String)], message: i.message, code: i.code })),
  });
}

/** zValidator with structured 400 errors naming each bad field. */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(
  target: Target,
  schema: Schema,
) {
  return zValidator(target, schema, (result, c: Context) => {
    if (!result.success) {
      const err = invalidRequest(TARGET_NAMES[target] ?? target, schema, result.error.issues);
      return c.json(errorBody(err.code, err.message, err.details), 400);
    }
  });
}

export function handleError(err: Error, c: Context): Response {
  if (err instanceof ApiError) return c.json(errorBody(err.code, err.message, err.details), err.status);
  if (err instanceof HTTPException) {
    const status = err.status;
    const code = status === 413
      ? "payload_too_large"
      : status === 401
      ? "unauthorized"
      : /JSON/.test(err.message)
      ? "bad_json"
      : "bad_request";
    const message = status === 413 ? "request body too large" : err.message || "bad request";
    return c.json(errorBody(code, message), status as ErrorStatus);
  }
  console.error(`internal error on ${c.req.method} ${c.req.path}:`, err);
  return c.json(errorBody("internal", "internal server error"), 500);
}
