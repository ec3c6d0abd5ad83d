/**
 * The HTTP-only schemas of the lab's API: path parameters, pagination, list queries, the error body and the
 * body of the one endpoint no other layer reads (POST /api/jobs). The request bodies the jobs and the
 * dashboard share live in server/contract/.
 */
import { z } from "zod";
import { fromText, int, PAGE_LIMIT_MAX, TASK_NAME, text } from "../contract/fields.ts";
import { JobStatus, JobType, ToyTrainParams } from "../contract/jobs.ts";
import { RunRole, RunTableFilters } from "../contract/runs.ts";

/** Query strings and path segments arrive as text: plain decimal digits, then checked like body numbers. */
const queryId = (label: string) => fromText(int(label, 1));

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
}).meta({ id: "Error" });

export const IdParam = z.object({ id: queryId("id") });
export const NameParam = z.object({ name: text("name").min(1, "name must not be empty") });

export const Page = z.object({
  limit: fromText(int("limit", 1, PAGE_LIMIT_MAX).default(100)),
  offset: fromText(int("offset", 0).default(0)),
});

export const ExperimentListQuery = Page.extend({ status: JobStatus.optional() });

/** Raw JSONL upload (Content-Type text/plain or application/x-ndjson): name and description in the query. */
export const TaskImportQuery = z.object({
  name: TASK_NAME.optional(),
  description: text("description").max(2000).optional(),
});

export const BenchResultsQuery = Page.extend({
  device: text("device").max(200).optional(),
  kernel: text("kernel").max(200).optional(),
});

/** Jobs that may be enqueued directly (the others are created by their own endpoints). */
export const JobCreate = z.discriminatedUnion("type", [
  z.object({ type: z.literal("toy-train"), params: ToyTrainParams.default(ToyTrainParams.parse({})) })
    .strict(),
], { error: 'type must be "toy-train" (other jobs start from their own endpoints)' }).meta({
  id: "JobCreate",
});

export const JobListQuery = Page.extend({
  status: JobStatus.optional(),
  type: JobType.optional(),
});

export const RunListQuery = Page.extend({
  experimentId: queryId("experimentId").optional(),
  jobId: queryId("jobId").optional(),
  role: RunRole.optional(),
  ...RunTableFilters,
});

export const MetricsQuery = z.object({
  /** Comma-separated series names (default: all series of the run). */
  names: text("names").max(1000).optional(),
  maxPoints: fromText(int("maxPoints", 2, 100_000).default(1000)),
  fromStep: fromText(int("fromStep", 0)).optional(),
  toStep: fromText(int("toStep", 0)).optional(),
}).refine((q) => q.fromStep === undefined || q.toStep === undefined || q.fromStep <= q.toStep, {
  message: "fromStep must be ≤ toStep",
  path: ["fromStep"],
});

export const ResultsQuery = Page.extend({
  experimentId: queryId("experimentId").optional(),
  task: text("task").max(64).optional(),
});

export const ProbesQuery = Page.extend({
  experimentId: queryId("experimentId").optional(),
  runId: queryId("runId").optional(),
});
