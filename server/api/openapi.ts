/**
 * The OpenAPI 3 document, assembled from the operations each route file defines and serves (operation.ts):
 * request and response schemas are the zod the routes validate with and answer by (z.toJSONSchema).
 */
import { z } from "zod";
import type { Operation } from "./operation.ts";
import { experimentOperations } from "./routes/experiments.ts";
import { DEMO_OPERATION } from "./routes/demo.ts";
import { EVENT_OPERATION, JOB_OPERATIONS } from "./routes/jobs.ts";
import { META_OPERATIONS } from "./routes/meta.ts";
import { MODEL_OPERATIONS } from "./routes/models.ts";
import { RESULT_OPERATIONS } from "./routes/results.ts";
import { RUN_OPERATIONS } from "./routes/runs.ts";
import { TASK_OPERATIONS } from "./routes/tasks.ts";
import { WORLD_OPERATIONS } from "./routes/world.ts";
import { ErrorBody, IdParam } from "./schemas.ts";

/** Every operation the API serves, in the document's order. */
export const OPERATIONS: Operation[] = [
  ...Object.values(META_OPERATIONS),
  ...Object.values(experimentOperations("experiment")),
  ...Object.values(experimentOperations("sweep")),
  DEMO_OPERATION,
  ...Object.values(TASK_OPERATIONS),
  ...Object.values(MODEL_OPERATIONS),
  ...Object.values(WORLD_OPERATIONS),
  ...Object.values(RUN_OPERATIONS),
  ...Object.values(RESULT_OPERATIONS),
  ...Object.values(JOB_OPERATIONS),
  EVENT_OPERATION,
];

/** "get /runs/{id}/metrics" → "getRunsIdMetrics". */
export function operationId(op: Pick<Operation, "method" | "path">): string {
  return op.method + op.path.replace(/[{}]/g, "").replace(/[/.-](\w)/g, (_, ch: string) => ch.toUpperCase());
}

type JsonSchema = Record<string, unknown>;

export function buildOpenApiDocument(): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  /** Requests are described as sent (defaults optional), responses as the server writes them. */
  const toSchema = (schema: z.ZodType, io: "input" | "output" = "input"): JsonSchema => {
    const json = z.toJSONSchema(schema, {
      io,
      target: "openapi-3.0",
      unrepresentable: "any",
    }) as JsonSchema;
    const rewritten = singleBranchesInlined(
      JSON.parse(JSON.stringify(json).replaceAll("#/definitions/", "#/components/schemas/")),
    );
    const { definitions, $schema: _dialect, ...rest } = rewritten as {
      definitions?: Record<string, JsonSchema>;
      $schema?: string;
    };
    Object.assign(components, definitions ?? {});
    return rest;
  };
  const errorSchema = toSchema(ErrorBody, "output");
  const idSchema = (toSchema(IdParam) as { properties: Record<string, JsonSchema> }).properties.id;
  const errorResponse = (description: string) => ({
    description,
    content: { "application/json": { schema: errorSchema } },
  });

  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const parameters: unknown[] = [];
    for (const match of op.path.matchAll(/\{(\w+)\}/g)) {
      const isId = match[1] === "id";
      parameters.push({
        name: match[1],
        in: "path",
        required: true,
        schema: isId ? idSchema : { type: "string" },
      });
    }
    if (op.query) {
      const query = toSchema(op.query) as { properties?: Record<string, JsonSchema>; required?: string[] };
      for (const [name, schema] of Object.entries(query.properties ?? {})) {
        parameters.push({ name, in: "query", required: query.required?.includes(name) ?? false, schema });
      }
    }
    const mutating = op.method !== "get";
    const secured = mutating || op.auth === true;
    const operation: Record<string, unknown> = {
      tags: [op.tag],
      summary: op.summary,
      operationId: operationId(op),
      parameters,
      responses: {
        [op.created ? "201" : "200"]: {
          description: "OK",
          content: {
            [op.produces ?? "application/json"]: { schema: toSchema(op.response, "output") },
          },
        },
        "400": errorResponse("Invalid request (the message names each bad field)"),
        "403": errorResponse("Host header not allowed (LAB_ALLOWED_HOSTS)"),
        "404": errorResponse("Not found"),
        "500": errorResponse("Internal error (details in the server log)"),
        ...(secured ? { "401": errorResponse("Missing or wrong bearer token") } : {}),
        ...(mutating
          ? {
            "409": errorResponse("Conflict with the current state"),
            "413": errorResponse("Request body too large"),
          }
          : {}),
        ...Object.fromEntries(Object.entries(op.errors ?? {}).map(([s, why]) => [s, errorResponse(why)])),
      },
    };
    // An explicit empty list says an open read needs no token (rather than inheriting a default).
    operation.security = secured ? [{ bearer: [] }] : [];
    if (op.body) {
      const content: Record<string, unknown> = { "application/json": { schema: toSchema(op.body) } };
      if (op.rawJsonl) {
        content["application/x-ndjson"] = { schema: { type: "string" } };
        content["text/plain"] = { schema: { type: "string" } };
      }
      operation.requestBody = { required: true, content };
    }
    (paths[op.path] ??= {})[op.method] = operation;
  }

  return typedNullables({
    openapi: "3.0.3",
    info: {
      title: "Weak-to-strong lab API",
      version: "1.0.0",
      // The repository grants no license yet: say so rather than name one.
      license: { name: "UNLICENSED" },
      description:
        "Experiments, sweeps, tasks, models, the world, runs, metrics, results, benchmarks and the job queue " +
        "of the lab. " +
        "Reads are open; mutating requests need `Authorization: Bearer <token>` (printed on first start, " +
        "stored in <data dir>/token). Errors are `{error: {code, message, details}}`.",
    },
    servers: [{ url: "/api" }],
    paths,
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
  });
}

/**
 * OpenAPI 3.0 reads `nullable` only beside a `type` (Redocly's nullable-type-sibling): a nullable union of
 * typed branches carries `nullable` in each branch instead, and a nullable reference to an object schema
 * (`allOf: [{$ref}]`) says `type: object` beside it.
 */
function typedNullables(doc: JsonSchema): JsonSchema {
  const schemas = ((doc as { components?: { schemas?: Record<string, JsonSchema> } }).components?.schemas) ??
    {};
  const typeOf = (ref: unknown) =>
    typeof ref === "string"
      ? (schemas[ref.replace("#/components/schemas/", "")] as { type?: string })?.type
      : undefined;
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (node === null || typeof node !== "object") return node;
    const object = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, visit(v)])) as Record<
      string,
      unknown
    >;
    if (object.nullable !== true || "type" in object) return object;
    const union = (object.anyOf ?? object.oneOf) as Record<string, unknown>[] | undefined;
    if (union?.every((branch) => "type" in branch)) {
      const key = object.anyOf ? "anyOf" : "oneOf";
      const { nullable: _, ...rest } = object;
      return { ...rest, [key]: union.map((branch) => ({ ...branch, nullable: true })) };
    }
    const all = object.allOf as { $ref?: string }[] | undefined;
    const refType = all?.length === 1 ? typeOf(all[0].$ref) : undefined;
    return refType ? { type: refType, ...object } : object;
  };
  return visit(doc) as JsonSchema;
}

/** A oneOf/anyOf of one branch is that branch (a one-member union, e.g. JobCreate's single job type). */
function singleBranchesInlined(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(singleBranchesInlined);
  if (node === null || typeof node !== "object") return node;
  const entries = Object.entries(node).map(([key, value]) => [key, singleBranchesInlined(value)] as const);
  const object = Object.fromEntries(entries) as Record<string, unknown>;
  for (const key of ["oneOf", "anyOf"]) {
    const branches = object[key];
    if (Array.isArray(branches) && branches.length === 1) {
      delete object[key];
      return { ...object, ...(branches[0] as Record<string, unknown>) };
    }
  }
  return object;
}
