/**
 * Shapes of the API's answers as the dashboard reads them: the contract's shapes (server/contract/), and the
 * server's drizzle rows, JSON-encoded.
 */
import type { JobProgress, JobStatus } from "../../server/contract/jobs.ts";
import type { Agreement, ExperimentResult } from "../../server/contract/results.ts";
import type { RunRow } from "../../server/contract/runs.ts";

export interface Job {
  id: number;
  type: string;
  params: Record<string, unknown>;
  status: JobStatus;
  progress: JobProgress | null;
  attempts: number;
  maxAttempts: number;
  /** Where the last attempt ran (null before a worker took it). */
  ranOn?: { host: string; owner: string; adapter: string | null } | null;
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

/** A stored run; `name` (what it is) where it comes from GET /api/runs. */
export type Run = RunRow & { name?: string };

export interface ResultRow {
  id: number;
  experimentId: number;
  /** From GET /api/results: the experiment's settings apart from the defaults ("" for none). */
  settings?: string;
  task: string | null;
  weakSize: string | null;
  strongSize: string | null;
  method: string | null;
  seed: number | null;
  weakAcc: number | null;
  ceilingAcc: number | null;
  studentAcc: number | null;
  pgr: number | null;
  /** Null on rows stored before the flag was. */
  gapTooSmall: boolean | null;
  selectedStudentAcc: number | null;
  selectedPgr: number | null;
  selectedStep: number | null;
  agreement: Agreement | null;
  oracleStudentAcc: number | null;
  oraclePgr: number | null;
  oracleStep: number | null;
  /** The whole experiment result as the pipeline returned it (runs' curves left out). */
  full: Partial<ExperimentResult> | null;
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
