/**
 * The HTTP-only schemas of the lab's API: path parameters, pagination, list queries, the error body and the
 * body of the one endpoint no other layer reads (POST /api/jobs). The request bodies the jobs and the
 * dashboard share live in server/contract/.
 */
import { z } from "zod";
import { TASK_NAME } from "../contract/fields.ts";
import { JobStatus, ToyTrainParams } from "../contract/jobs.ts";

/** Query strings arrive as text: numbers are coerced, then checked like body numbers. */
const queryInt = (label: string) =>
  z.coerce.number({ error: `${label} must be a number` }).int(`${label} must be an integer`);

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
}).meta({ id: "Error" });

export const IdParam = z.object({ id: queryInt("id").positive("id must be positive") });
export const NameParam = z.object({ name: z.string().min(1) });

export const Page = z.object({
  limit: queryInt("limit").min(1).max(1000).default(100),
  offset: queryInt("offset").min(0).default(0),
});

export const ExperimentListQuery = Page.extend({ status: JobStatus.optional() });

/** Raw JSONL upload (Content-Type text/plain or application/x-ndjson): name and description in the query. */
export const TaskImportQuery = z.object({
  name: TASK_NAME.optional(),
  description: z.string().max(2000).optional(),
});

export const BenchResultsQuery = Page.extend({
  device: z.string().optional(),
  kernel: z.string().optional(),
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
  type: z.string().max(64).optional(),
});

export const RunListQuery = Page.extend({
  experimentId: queryInt("experimentId").positive().optional(),
  jobId: queryInt("jobId").positive().optional(),
  role: z.string().max(32).optional(),
});

export const MetricsQuery = z.object({
  /** Comma-separated series names (default: all series of the run). */
  names: z.string().max(1000).optional(),
  maxPoints: queryInt("maxPoints").min(2, "maxPoints must be ≥ 2").max(100_000).default(1000),
  fromStep: queryInt("fromStep").min(0, "fromStep must be ≥ 0").optional(),
  toStep: queryInt("toStep").min(0, "toStep must be ≥ 0").optional(),
}).refine((q) => q.fromStep === undefined || q.toStep === undefined || q.fromStep <= q.toStep, {
  message: "fromStep must be ≤ toStep",
  path: ["fromStep"],
});

export const ResultsQuery = Page.extend({
  experimentId: queryInt("experimentId").positive().optional(),
  task: z.string().max(64).optional(),
});

export const ProbesQuery = Page.extend({
  experimentId: queryInt("experimentId").positive().optional(),
  runId: queryInt("runId").positive().optional(),
});
