/**
 * The OpenAPI 3 document, built from the same zod schemas the routes validate with (z.toJSONSchema), and
 * the list of operations it describes. tests/api.test.ts checks that every listed operation is routed.
 */
import { z } from "zod";
import { ExperimentCreate, SweepCreate } from "../contract/experiments.ts";
import { BenchCreate, JobEventSchema, PretrainCreate } from "../contract/jobs.ts";
import {
  BenchResultsQuery,
  ErrorBody,
  ExperimentListQuery,
  IdParam,
  JobCreate,
  JobListQuery,
  MetricsQuery,
  ProbesQuery,
  ResultsQuery,
  RunListQuery,
  TaskImportQuery,
} from "./schemas.ts";
import { TaskImportBody } from "../contract/tasks.ts";
import { WorldSpecSchema } from "../corpus/world-schema.ts";

export interface OperationDoc {
  method: "get" | "post" | "delete";
  /** OpenAPI path below /api, with {param} placeholders. */
  path: string;
  tag: string;
  summary: string;
  body?: z.ZodType;
  /** Also accepts raw JSONL (text/plain, application/x-ndjson). */
  rawJsonl?: boolean;
  query?: z.ZodType;
  /** 201 for creations. */
  created?: boolean;
  /** text/event-stream or text/csv instead of JSON. */
  produces?: string;
  /** A read that still needs the bearer token. */
  auth?: boolean;
}

export const OPERATIONS: OperationDoc[] = [
  { method: "get", path: "/health", tag: "meta", summary: "Liveness and database kind" },
  {
    method: "get",
    path: "/auth",
    tag: "meta",
    summary: "Checks the bearer token: 200 {ok: true} when accepted, 401 otherwise",
    auth: true,
  },
  { method: "get", path: "/openapi.json", tag: "meta", summary: "This document" },
  { method: "get", path: "/docs", tag: "meta", summary: "Interactive API reference", produces: "text/html" },
  {
    method: "get",
    path: "/experiments",
    tag: "experiments",
    summary: "List experiments",
    query: ExperimentListQuery,
  },
  {
    method: "post",
    path: "/experiments",
    tag: "experiments",
    summary: "Create a weak→strong experiment (enqueues a w2s job)",
    body: ExperimentCreate,
    created: true,
  },
  {
    method: "get",
    path: "/experiments/{id}",
    tag: "experiments",
    summary: "An experiment with runs, results, probes",
  },
  { method: "post", path: "/experiments/{id}/cancel", tag: "experiments", summary: "Cancel its job" },
  {
    method: "delete",
    path: "/experiments/{id}",
    tag: "experiments",
    summary: "Delete a finished experiment",
  },
  { method: "get", path: "/sweeps", tag: "sweeps", summary: "List sweeps", query: ExperimentListQuery },
  {
    method: "post",
    path: "/sweeps",
    tag: "sweeps",
    summary: "Create a sweep over tasks × pairs × methods × seeds (enqueues a sweep job)",
    body: SweepCreate,
    created: true,
  },
  { method: "get", path: "/sweeps/{id}", tag: "sweeps", summary: "A sweep with runs and results" },
  { method: "post", path: "/sweeps/{id}/cancel", tag: "sweeps", summary: "Cancel its job" },
  { method: "delete", path: "/sweeps/{id}", tag: "sweeps", summary: "Delete a finished sweep" },
  {
    method: "post",
    path: "/demo",
    tag: "sweeps",
    summary: "Run the demo (no body): pretrain nano, micro, mini and small where missing, then sweep every " +
      "world task over every pair (naive; auxconf at the largest gap; seeds 0, 1) as one demo job, stored " +
      "as a sweep named demo; answers {experiment, job}; 409 while a demo is queued or running",
    created: true,
  },
  {
    method: "get",
    path: "/tasks",
    tag: "tasks",
    summary: "Built-in, world and imported tasks, each with its format (classification or pairwise)",
  },
  { method: "get", path: "/tasks/{name}", tag: "tasks", summary: "One task (imported ones with a sample)" },
  {
    method: "post",
    path: "/tasks/import",
    tag: "tasks",
    summary: "Import a JSONL task: {txt, hard_label} per line (classification) or {prompt?, chosen, " +
      "rejected} per line (pairwise comparisons); a bad line rejects the file, naming its number",
    body: TaskImportBody,
    rawJsonl: true,
    query: TaskImportQuery,
    created: true,
  },
  { method: "delete", path: "/tasks/{name}", tag: "tasks", summary: "Delete an imported task" },
  {
    method: "get",
    path: "/models",
    tag: "models",
    summary: "The ladder with parameters and pretraining status",
  },
  { method: "get", path: "/models/{name}", tag: "models", summary: "One ladder size" },
  {
    method: "get",
    path: "/models/{name}/curves",
    tag: "models",
    summary: "Pretraining curves of a size (train_loss, val_loss, knowledge) from its status file",
  },
  {
    method: "post",
    path: "/models/{name}/pretrain",
    tag: "models",
    summary: "Start pretraining a size (enqueues a pretrain job)",
    body: PretrainCreate,
    created: true,
  },
  {
    method: "get",
    path: "/world",
    tag: "world",
    summary:
      "The lab's world: definition, statements, attributes, derived facts, tasks with split sizes and " +
      "the surface-cue check, and each pretrained size's recall per attribute at each snapshot",
  },
  {
    method: "post",
    path: "/world",
    tag: "world",
    summary: "Make a world file the lab's world (400 lists every problem with its field; 409 while a " +
      "pretrain, w2s, sweep or demo job is queued or running); answers the new world as GET does",
    body: WorldSpecSchema,
    created: true,
  },
  {
    method: "delete",
    path: "/world",
    tag: "world",
    summary: "Back to the default world (409 while a pretrain, w2s, sweep or demo job is queued or running)",
  },
  {
    method: "get",
    path: "/runs",
    tag: "runs",
    summary: "The runs table: every trained model (weak, ceiling, student, …) with its task, method, seed, " +
      "pair, status and final readings; filter per column or by text (q), sort by any column, page " +
      "(X-Total-Count holds the number of matching runs)",
    query: RunListQuery,
  },
  { method: "get", path: "/runs/{id}", tag: "runs", summary: "One run with its metric names" },
  {
    method: "get",
    path: "/runs/{id}/metrics",
    tag: "runs",
    summary: "Metric series, downsampled to maxPoints, within a step range",
    query: MetricsQuery,
  },
  {
    method: "get",
    path: "/results",
    tag: "results",
    summary: "Experiment results (accuracies, PGR, …)",
    query: ResultsQuery,
  },
  {
    method: "get",
    path: "/results/summary",
    tag: "results",
    summary: "Median PGR per task × method and per method, and the cells behind it (the CLI's sweep summary)",
    query: ResultsQuery,
  },
  {
    method: "get",
    path: "/results/export.csv",
    tag: "results",
    summary: "Results as CSV",
    query: ResultsQuery,
    produces: "text/csv",
  },
  {
    method: "get",
    path: "/results/export.json",
    tag: "results",
    summary: "Results as JSON",
    query: ResultsQuery,
  },
  {
    method: "get",
    path: "/probes",
    tag: "results",
    summary: "Linear-probe accuracies by layer",
    query: ProbesQuery,
  },
  {
    method: "post",
    path: "/bench",
    tag: "bench",
    summary: "Start a kernel benchmark (enqueues a bench job)",
    body: BenchCreate,
    created: true,
  },
  {
    method: "get",
    path: "/bench/results",
    tag: "bench",
    summary: "Kernel benchmark figures",
    query: BenchResultsQuery,
  },
  { method: "get", path: "/jobs", tag: "jobs", summary: "The job queue", query: JobListQuery },
  {
    method: "post",
    path: "/jobs",
    tag: "jobs",
    summary: "Enqueue a toy job (toy-train)",
    body: JobCreate,
    created: true,
  },
  { method: "get", path: "/jobs/{id}", tag: "jobs", summary: "One job with progress, state, result, error" },
  { method: "post", path: "/jobs/{id}/cancel", tag: "jobs", summary: "Cancel a queued or running job" },
  {
    method: "post",
    path: "/jobs/{id}/retry",
    tag: "jobs",
    summary: "Queue a failed or cancelled job again; it resumes from its saved state",
  },
  {
    method: "get",
    path: "/events",
    tag: "events",
    summary: "Live progress: server-sent events `snapshot`, then `job` (JobEvent) per change, `ping`",
    produces: "text/event-stream",
  },
];

type JsonSchema = Record<string, unknown>;

export function buildOpenApiDocument(): JsonSchema {
  const components: Record<string, JsonSchema> = {};
  const toSchema = (schema: z.ZodType): JsonSchema => {
    const json = z.toJSONSchema(schema, {
      io: "input",
      target: "openapi-3.0",
      unrepresentable: "any",
    }) as JsonSchema;
    const rewritten = JSON.parse(JSON.stringify(json).replaceAll("#/definitions/", "#/components/schemas/"));
    const { definitions, $schema: _dialect, ...rest } = rewritten as {
      definitions?: Record<string, JsonSchema>;
      $schema?: string;
    };
    Object.assign(components, definitions ?? {});
    return rest;
  };
  const errorSchema = toSchema(ErrorBody);
  const idSchema = (toSchema(IdParam) as { properties: Record<string, JsonSchema> }).properties.id;
  toSchema(JobEventSchema);
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
      operationId: `${op.method}${
        op.path.replace(/[{}]/g, "").replace(/[/.-](\w)/g, (_, ch) => ch.toUpperCase())
      }`,
      parameters,
      responses: {
        [op.created ? "201" : "200"]: {
          description: "OK",
          content: {
            [op.produces ?? "application/json"]: {
              schema: op.path === "/events" ? toSchema(JobEventSchema) : {},
            },
          },
        },
        "400": errorResponse("Invalid request (the message names each bad field)"),
        "404": errorResponse("Not found"),
        ...(secured ? { "401": errorResponse("Missing or wrong bearer token") } : {}),
        ...(mutating
          ? {
            "409": errorResponse("Conflict with the current state"),
            "413": errorResponse("Request body too large"),
          }
          : {}),
      },
    };
    if (secured) operation.security = [{ bearer: [] }];
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

  return {
    openapi: "3.0.3",
    info: {
      title: "Weak-to-strong lab API",
      version: "1.0.0",
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
  };
}
