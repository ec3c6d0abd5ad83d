/**
 * What the benchmarks report: `deno task bench --json` prints a BenchReport (or, with --profile, a
 * ProfileReport), and the server's bench job stores its kernel and training rows. Field names are a
 * contract with the dashboard and the job: add fields, never rename them.
 */
import type { TuneResult } from "../ops/matmul-autotune.ts";
import type { TorchBlas, TorchBlasProbe } from "./peers/blas.ts";

/** Adapter memory one model size needs for its training step (kernels/memory.ts), in bytes. */
export interface MemoryRow {
  name: string;
  width: number;
  layers: number;
  batchSize: number;
  contextLength: number;
  vocabSize: number;
  parameters: number;
  gradients: number;
  adamw: number;
  activations: number;
  total: number;
  largestTensor: string;
  largestBytes: number;
  /** Storage-binding windows the largest tensor is split into on this adapter (1: it fits one). */
  bindingWindows: number;
  /** Buffers each flat buffer (parameters, gradients, m, v) is sharded into under maxBufferSize (1: one). */
  flatShards: number;
  /** Every limit of this adapter the size breaks; empty: it fits. */
  problems: string[];
}

/** The kernel name of the fma ceiling's row (ceiling.ts), which every GFLOP/s figure is read against. */
export const CEILING_KERNEL = "fma ceiling";

/** The kernel name under which the bench job stores a training size's step (tokens/s in its details). */
export const TRAIN_STEP_KERNEL = "train step";

/** A GFLOP/s figure as a percentage of the fma ceiling on the same device (undefined where either is missing). */
export function ceilingPercent(
  gflops: number | null | undefined,
  ceiling: number | undefined,
): number | undefined {
  return gflops && ceiling ? (100 * gflops) / ceiling : undefined;
}

/** One kernel version at one shape. */
export interface KernelResult {
  /** "matmul NN", "attention forward", …: the family first. */
  kernel: string;
  /** "v4 (tiled 16×16)": see versionLabel in kernels/versions.ts. */
  version: string;
  shape: string;
  ms: number;
  gflops?: number;
  gbps?: number;
  timer: "gpu" | "wall";
}

/** One full training step (forward, backward, AdamW) of one GPT size. */
export interface TrainingResult {
  name: string;
  width: number;
  layers: number;
  contextLength: number;
  batchSize: number;
  vocabSize: number;
  params: number;
  tokensPerSecond: number;
  msPerStep: number;
  matmulShare: number;
  dispatchesPerStep: number;
  encodeMsPerStep: number;
}

/** A cls prediction at a sweep's evaluator shape (kernels/bench/evaluation.ts). */
export interface EvaluationResult {
  name: string;
  width: number;
  layers: number;
  rows: number;
  seqLen: number;
  vocabSize: number;
  /** The final block on each row's last token only (false: on every row). */
  lastRows: boolean;
  /** Wall time per batch, many batches in a row and one read-back. */
  msPerBatch: number;
  /** GPU time of one batch, its dispatches timed one by one. */
  gpuMs: number;
  examplesPerSecond: number;
  dispatches: number;
}

export interface TfjsMatmul {
  size: number;
  ms: number;
  gflops: number;
}

export interface TfjsTraining {
  width: number;
  layers: number;
  heads: number;
  tokensPerSecond: number;
  msPerStep: number;
  loss: number;
}

/** The JSON line the tfjs peer (peers/tfjs.ts) prints. */
export interface TfjsReport {
  backend: string;
  matmul: TfjsMatmul[];
  training: TfjsTraining[];
}

export interface TorchTraining {
  width: number;
  layers: number;
  threads: number;
  tokensPerSecond: number;
  msPerStep: number;
  loss: number;
}

/** What the peer subprocesses printed, or why one did not run. */
export interface PeerResults {
  tfjs?: TfjsReport;
  tfjsError?: string;
  torch?: { torch: string; blas?: TorchBlasProbe; training: TorchTraining[] };
  torchNote?: string;
}

export interface PeerMatmul {
  size: number;
  /** Our matmul (automatic version), wall ms per call over repeated calls in one submit. */
  oursMs: number;
  oursGflops: number;
  /** Our GPU-timestamp figure for the same dispatch (median), when timestamps exist. */
  oursGpuGflops?: number;
  tfjsGflops?: number;
  /** ours / tfjs, both timed by wall clock. */
  ratio?: number;
}

export interface PeerTraining {
  name: string;
  oursTokensPerSecond: number;
  tfjsTokensPerSecond?: number;
  torch1TokensPerSecond?: number;
  torch2TokensPerSecond?: number;
  ratioTfjs?: number;
  ratioTorch1?: number;
  ratioTorch2?: number;
}

export interface PeerReport {
  matmul: PeerMatmul[];
  training: PeerTraining[];
  /** Which BLAS the PyTorch peer ran on; on a reference-class one the torch ratios are left out. */
  torchBlas?: TorchBlas;
  notes: string[];
  raw: PeerResults;
}

export interface BenchReport {
  device: string;
  timer: "gpu" | "wall";
  /** 1-minute load average when the run started (the machine is shared). */
  loadAverage?: number;
  /** Matmul v4's (tiled) blocks per layout chosen by the per-adapter autotune (cached). */
  matmulTune?: TuneResult;
  kernels: KernelResult[];
  training: TrainingResult[];
  /** Predictions at a sweep's shape (with the training steps in the CLI). */
  evaluation?: EvaluationResult[];
  /** Adapter memory each training size needs (kernels/memory.ts), and whether it fits this adapter. */
  memory?: MemoryRow[];
  peers?: PeerReport;
}

/** One kernel of a training step, layer indices merged ("qkv.0", "qkv.1" → "qkv"). */
export interface ProfileRow {
  kernel: string;
  family: string;
  dispatches: number;
  ms: number;
  share: number;
  gflops?: number;
}

/** `deno task bench --profile W/L --json`. */
export interface ProfileReport {
  model: string;
  device: string;
  kernels: ProfileRow[];
  /** The adapter's fma ceiling (kernels/bench/ceiling.ts) the rows' GFLOP/s are read against. */
  ceilingGflops: number;
}
