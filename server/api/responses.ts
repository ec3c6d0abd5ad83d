/**
 * The success bodies of the lab's API as zod: the OpenAPI document's response schemas, and what
 * tests/helpers/openapi-check.ts holds every response of the API tests to. Where a contract interface
 * describes the same body, a compile-time check below keeps the two from disagreeing.
 */
import { z } from "zod";
import { JobStatus } from "../contract/jobs.ts";
import type { ModelListing } from "../contract/models.ts";
import { RUN_FILTERS, type RunFacets, type RunTableRow } from "../contract/runs.ts";
import type { CellSummary, MedianSummary } from "../contract/results.ts";
import type { MetricSeries as MetricSeriesShape } from "../contract/series.ts";
import type { TaskListing } from "../contract/tasks.ts";
import type { AttributeRecall as AttributeRecallShape, WorldTaskSummary } from "../contract/world.ts";
import { RESULT_COLUMNS } from "../contract/result-record.ts";

/** Timestamps travel as ISO 8601 text. */
const time = z.string().describe("ISO 8601 time");
/** A JSON column whose content its writer (a job, the pipeline) owns. */
const stored = z.unknown();
const id = z.number().int();

export const Health = z.object({ ok: z.boolean(), db: z.string() }).meta({ id: "Health" });
export const Ok = z.object({ ok: z.literal(true) });
export const OpenApiDocument = z.record(z.string(), z.unknown());
export const Html = z.string();
export const Csv = z.string();
export const Deleted = z.object({ deleted: z.union([id, z.string()]) });

export const Job = z.object({
  id,
  type: z.string(),
  params: stored,
  status: JobStatus,
  progress: stored,
  leaseOwner: z.string().nullable(),
  leaseExpiresAt: time.nullable(),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  /** Where the last attempt ran: {host, owner, adapter}. */
  ranOn: stored,
  /** Jobs that must be done before this one is leased (a sweep waits for its sweep-cell jobs). */
  waitsFor: z.array(id),
  /** Not leased before this time (a job waiting for a pretraining looks again then). */
  runAfter: time.nullable(),
  /** The job that queued this one (a sweep's cells); cancelling it cancels them. */
  parentId: id.nullable(),
  state: stored,
  result: stored,
  error: z.string().nullable(),
  createdAt: time,
  startedAt: time.nullable(),
  finishedAt: time.nullable(),
  updatedAt: time,
}).meta({ id: "Job" });
export const JobCreated = z.object({ job: Job });

const JobBrief = z.object({ id, status: JobStatus, progress: stored, error: z.string().nullable() });

export const Experiment = z.object({
  id,
  kind: z.enum(["experiment", "sweep"]),
  name: z.string().nullable(),
  config: stored,
  status: JobStatus,
  jobId: id.nullable(),
  createdAt: time,
  finishedAt: time.nullable(),
}).meta({ id: "Experiment" });
export const ExperimentWithJob = Experiment.extend({ job: JobBrief.nullable() });
export const ExperimentCreated = z.object({ experiment: Experiment, job: Job });
export const ExperimentCancelled = Experiment.extend({ job: Job });

export const Run = z.object({
  id,
  experimentId: id.nullable(),
  jobId: id.nullable(),
  role: z.string(),
  modelSize: z.string(),
  /** The task it was trained on, as recorded with it (null: no task, or a run stored before runs kept it). */
  task: z.string().nullable(),
  status: z.string(),
  config: stored,
  startedAt: time,
  finishedAt: time.nullable(),
  seconds: z.number().nullable(),
}).meta({ id: "Run" });
export const RunWithMetricNames = Run.extend({ metricNames: z.array(z.string()) });

const nullableNumber = z.number().nullable();
export const Result = z.object({
  id,
  experimentId: id,
  task: z.string().nullable(),
  weakSize: z.string().nullable(),
  strongSize: z.string().nullable(),
  method: z.string().nullable(),
  seed: z.number().int().nullable(),
  weakAcc: nullableNumber,
  ceilingAcc: nullableNumber,
  studentAcc: nullableNumber,
  pgr: nullableNumber,
  gapTooSmall: z.boolean().nullable(),
  selectedStudentAcc: nullableNumber,
  selectedPgr: nullableNumber,
  selectedStep: z.number().int().nullable(),
  agreement: stored,
  oracleStudentAcc: nullableNumber,
  oraclePgr: nullableNumber,
  oracleStep: z.number().int().nullable(),
  full: stored,
  createdAt: time,
  /** GET /api/results: the experiment's settings apart from the defaults (contract settingsLabel), "" for none. */
  settings: z.string().optional(),
}).meta({ id: "Result" });

export const ProbeResult = z.object({
  id,
  experimentId: id.nullable(),
  runId: id.nullable(),
  layer: z.number().int(),
  kind: z.string(),
  accuracy: z.number(),
  createdAt: time,
}).meta({ id: "ProbeResult" });

export const ExperimentDetail = ExperimentWithJob.extend({
  runs: z.array(Run),
  results: z.array(Result),
  probes: z.array(ProbeResult),
});

export const BenchResult = z.object({
  id,
  jobId: id.nullable(),
  device: z.string(),
  kernel: z.string(),
  version: z.string(),
  shape: z.string(),
  ms: z.number(),
  gflops: nullableNumber,
  gbps: nullableNumber,
  details: stored,
  createdAt: time,
}).meta({ id: "BenchResult" });

/** One flat export record: the columns of server/contract/result-record.ts. */
export const ResultRecord = z.object(
  Object.fromEntries(
    RESULT_COLUMNS.map((c) => [c, z.union([z.string(), z.number(), z.boolean()]).nullable()]),
  ),
).meta({ id: "ResultRecord" });

const MeanCi = z.object({ mean: nullableNumber, lo: nullableNumber, hi: nullableNumber });
export const ResultsSummary = z.object({
  cells: z.array(
    z.object({
      task: z.string(),
      weak: z.string(),
      strong: z.string(),
      method: z.string(),
      seeds: z.array(z.number()),
      weak_acc: MeanCi,
      ceiling_acc: MeanCi,
      student_acc: MeanCi,
      pgr: nullableNumber,
      pgr_ci: MeanCi,
      gap_too_small: z.boolean(),
      gap_noise: nullableNumber,
      agreement: stored,
      agreement_ci: z.record(
        z.enum(["all", "supervisor_correct", "supervisor_wrong"]),
        z.object({ lo: nullableNumber, hi: nullableNumber }).nullable(),
      ),
      oracle_student_acc: nullableNumber,
      oracle_pgr: nullableNumber,
      control_acc: MeanCi.nullable(),
      settings: z.string().optional(),
    }) satisfies z.ZodType<Pick<CellSummary, "task" | "weak" | "strong" | "seeds" | "gap_too_small">>,
  ),
  medians: z.array(
    z.object({
      task: z.string().nullable(),
      method: z.string(),
      median_pgr: nullableNumber,
      median_ci: z.object({ lo: nullableNumber, hi: nullableNumber }),
      cells: z.number().int(),
      skipped: z.number().int(),
      settings: z.string().optional(),
    }) satisfies z.ZodType<Pick<MedianSummary, "task" | "cells" | "skipped">>,
  ),
}).meta({ id: "ResultsSummary" });

export const MetricSeries = z.object({
  points: z.array(z.object({ step: z.number(), value: z.number(), min: z.number(), max: z.number() })),
  rows: z.number().int(),
  downsampled: z.boolean(),
}) satisfies z.ZodType<MetricSeriesShape>;
export const RunMetrics = z.object({
  runId: id,
  maxPoints: z.number().int(),
  series: z.record(z.string(), MetricSeries),
}).meta({ id: "RunMetrics" });
/** Pretraining curves: the status file keeps no bucket extremes, and they are never downsampled. */
export const PretrainCurves = z.object({
  runId: z.literal(0),
  series: z.record(
    z.string(),
    MetricSeries.extend({ points: z.array(z.object({ step: z.number(), value: z.number() })) }),
  ),
});

export const RunTableRowSchema = Run.extend({
  config: z.record(z.string(), z.unknown()).nullable(),
  name: z.string(),
  experimentKind: z.string().nullable(),
  experimentName: z.string().nullable(),
  method: z.string().nullable(),
  seed: nullableNumber,
  weak: z.string().nullable(),
  strong: z.string().nullable(),
  finalStep: nullableNumber,
  finalTestAcc: nullableNumber,
  finalValAcc: nullableNumber,
  validation: z.string().nullable(),
  lastMetrics: z.record(z.string(), z.number()),
}).meta({ id: "RunTableRow" }) satisfies z.ZodType<RunTableRow>;

export const RunFacetsSchema = z.object(
  Object.fromEntries(RUN_FILTERS.map(({ param }) => [param, z.array(z.string())])) as Record<
    keyof RunFacets,
    z.ZodArray<z.ZodString>
  >,
).meta({ id: "RunFacets" }) satisfies z.ZodType<RunFacets>;

export const TaskListingSchema = z.object({
  name: z.string(),
  description: z.string(),
  kind: z.string(),
  format: z.enum(["classification", "pairwise"]),
  builtin: z.boolean(),
  source: z.string(),
  exampleCount: z.number().int().nullable(),
}).meta({ id: "TaskListing" }) satisfies z.ZodType<TaskListing>;
export const TaskDetail = TaskListingSchema.extend({ sample: z.array(z.unknown()) });
/** An imported task, with the fields its lines had that the import read and those it left. */
export const TaskImported = TaskListingSchema.extend({
  fields: z.object({ used: z.array(z.string()), ignored: z.array(z.string()) }),
});

const Snapshot = z.object({
  ref: z.string(),
  pct: z.number(),
  step: z.number().int(),
  tokens: z.number(),
  recall: nullableNumber,
  /** Entities asked; null when the snapshot's report has no counts. */
  n: z.number().int().nullable(),
  /** The recall's 95 % Wilson interval over those entities. */
  ci: z.object({ lo: z.number(), hi: z.number() }).nullable(),
});
const PretrainCorpus = z.object({
  realShare: z.number(),
  leakage: z.boolean(),
  splitSeeds: z.array(z.number()),
  excluded: z.object({
    wordnetSynsets: z.number(),
    wordnetLemmas: z.number(),
    paragraphsBySource: z.record(z.string(), z.number()),
  }),
});
const OwnModelInfo = z.object({
  sha256: z.string(),
  tokenizer: z.string(),
  tokenizerFiles: z.string(),
  memory: z.object({
    seqLen: z.number().int(),
    leastBytes: z.number(),
    defaultBatch: z.number().int(),
    microBatch: z.number().int().optional(),
    plan: z.string().optional(),
    defaultBatchBytes: z.number(),
    problems: z.array(z.string()),
  }),
  addedAt: time,
}).meta({ id: "OwnModelInfo" });

export const ModelListingSchema = z.object({
  name: z.string(),
  width: z.number().int(),
  layers: z.number().int(),
  heads: z.number().int(),
  contextLength: z.number().int(),
  tokens: z.number(),
  cpu: z.boolean(),
  params: z.number().int(),
  status: z.string(),
  brokenReason: z.string().nullable(),
  valLoss: nullableNumber,
  knowledge: nullableNumber,
  /** The region recall's 95 % Wilson interval over the entities asked; null where none is known. */
  knowledgeCi: z.object({ lo: z.number(), hi: z.number() }).nullable(),
  step: nullableNumber,
  totalSteps: nullableNumber,
  checkpointPath: z.string().nullable(),
  corpus: PretrainCorpus.nullable(),
  snapshots: z.array(Snapshot),
  pretrainInfo: stored,
  jobId: id.nullable(),
  /** "ladder": a size of the lab's ladder; "imported": a registered Hugging Face GPT-2 folder. */
  source: z.enum(["ladder", "imported"]),
  imported: OwnModelInfo.nullable(),
}).meta({ id: "ModelListing" }) satisfies z.ZodType<ModelListing>;

/** POST /models/import: the registered model as the listing shows it. */
export const OwnModelImported = z.object({ model: ModelListingSchema }).meta({ id: "OwnModelImported" });

/** A 95 % interval whose ends are always finite (a Wilson interval). */
const IntervalSchema = z.object({ lo: z.number(), hi: z.number() });
const AttributeRecall = z.object({
  attribute: z.string(),
  n: z.number().int(),
  accuracy: z.number(),
  ci: IntervalSchema,
  majority: z.number(),
  candidates: z.number(),
  buckets: z.array(
    z.object({ label: z.string(), n: z.number(), accuracy: nullableNumber, ci: IntervalSchema.nullable() }),
  ),
}) satisfies z.ZodType<AttributeRecallShape>;
const WorldTask = z.object({
  name: z.string(),
  description: z.string(),
  difficulty: z.enum(["easy", "medium", "hard"]),
  type: z.enum(["attribute", "derived", "relation", "preference"]),
  splits: z.object({ train1: z.number(), train2: z.number(), validation: z.number(), test: z.number() }),
  surfaceCue: z.object({ accuracy: z.number(), low: z.number(), high: z.number(), atChance: z.boolean() }),
}) satisfies z.ZodType<WorldTaskSummary>;
export const WorldOverview = z.object({
  key: z.string(),
  /** The world file itself: its schema is the request body of POST /world. */
  spec: z.record(z.string(), z.unknown()),
  entities: z.number().int(),
  statements: z.number().int(),
  attributes: z.array(
    z.object({
      name: z.string(),
      values: z.array(z.string()),
      invented: z.boolean(),
      meanStated: z.number(),
    }),
  ),
  derived: z.array(z.object({ name: z.string(), of: z.string(), map: z.record(z.string(), z.string()) })),
  tasks: z.array(WorldTask),
  models: z.array(z.object({
    size: z.string(),
    snapshots: z.array(
      z.object({ pct: z.number(), tokens: z.number(), attributes: z.array(AttributeRecall) }),
    ),
  })),
}).meta({ id: "WorldOverview" });
