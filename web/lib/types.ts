/** Shapes of the API's answers, as the dashboard reads them (the server's drizzle rows, JSON-encoded). */
import type { z } from "zod";
import type { JobEventSchema } from "../../server/api/schemas.ts";
import type { Agreement } from "../../server/lab/metrics.ts";

export type JobEvent = z.infer<typeof JobEventSchema>;
export type JobStatus = JobEvent["status"];

export interface JobProgress {
  step?: number;
  total?: number;
  message?: string;
  metrics?: Record<string, number>;
  etaSeconds?: number;
  runIds?: number[];
  at?: string;
}

export interface Job {
  id: number;
  type: string;
  params: Record<string, unknown>;
  status: JobStatus;
  progress: JobProgress | null;
  attempts: number;
  maxAttempts: number;
  result: unknown;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface Experiment {
  id: number;
  kind: "experiment" | "sweep";
  name: string | null;
  config: Record<string, unknown>;
  status: JobStatus;
  jobId: number | null;
  createdAt: string;
  finishedAt: string | null;
  job: { id: number; status: JobStatus; progress: JobProgress | null; error: string | null } | null;
}

export interface Run {
  id: number;
  experimentId: number | null;
  jobId: number | null;
  role: string;
  modelSize: string;
  status: string;
  config: unknown;
  startedAt: string;
  finishedAt: string | null;
  seconds: number | null;
}

/** Agreement as the pipeline stores it (server/lab/metrics.ts); null where the subset is empty. */
export type { Agreement };

export interface ResultRow {
  id: number;
  experimentId: number;
  task: string | null;
  weakSize: string | null;
  strongSize: string | null;
  method: string | null;
  seed: number | null;
  weakAcc: number | null;
  ceilingAcc: number | null;
  studentAcc: number | null;
  pgr: number | null;
  agreement: Agreement | null;
  oracleStudentAcc: number | null;
  oraclePgr: number | null;
  oracleStep: number | null;
}

export interface ProbeRow {
  id: number;
  experimentId: number | null;
  runId: number | null;
  layer: number;
  kind: string;
  accuracy: number;
}

export interface ExperimentDetail extends Experiment {
  runs: Run[];
  results: ResultRow[];
  probes: ProbeRow[];
}

export interface ModelListing {
  name: string;
  width: number;
  layers: number;
  heads: number;
  contextLength: number;
  tokens: number;
  cpu: boolean;
  params: number;
  status: string;
  valLoss: number | null;
  /** Region recall of the knowledge world at the last evaluation. */
  knowledge?: number | null;
  step?: number | null;
  totalSteps?: number | null;
  checkpointPath: string | null;
  pretrainInfo: Record<string, unknown> | null;
  jobId: number | null;
}

export interface TaskListing {
  name: string;
  description: string;
  kind: string;
  builtin: boolean;
  exampleCount: number | null;
}

export interface BenchRow {
  id: number;
  jobId: number | null;
  device: string;
  kernel: string;
  version: string;
  shape: string;
  ms: number;
  gflops: number | null;
  gbps: number | null;
  createdAt: string;
}

export interface SeriesPoint {
  step: number;
  value: number;
  min: number;
  max: number;
}

export interface RunMetrics {
  runId: number;
  series: Record<string, { points: SeriesPoint[]; rows: number; downsampled: boolean }>;
}
