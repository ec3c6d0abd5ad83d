/**
 * Several sizes pretrained at once, each in a Worker of its own (its own GPU device; on llvmpipe its own
 * rasterizer threads). One size's training leaves llvmpipe's threads idle a fifth of the time or more
 * (dispatch hand-offs, single-workgroup reductions, read-back waits); a second size fills those gaps. On
 * the 2-core machine mini and small pretrained in 209 s together against 295 s one after the other, each
 * to the same bits (README, performance). Sizes start largest first, so the lanes end close together.
 * A size already pretrained takes pretrainSize's cached path in its worker, as it would in process.
 */
import { LADDER } from "./ladder.ts";
import type { PretrainOptions, PretrainProgress, PretrainResult } from "./pretrain.ts";

/** Sizes trained at once by default: two fill a 2-core machine; more only share the same cores. */
export const PRETRAIN_CONCURRENCY = 2;

/** A size's pretraining as a worker receives it: PretrainOptions without callbacks, signal or device. */
export type PretrainJob = Omit<PretrainOptions, "onStart" | "onProgress" | "onCheckpoint" | "signal" | "gpu">;

/** From the pool to a worker. */
export type ToPretrainWorker = { type: "run"; job: PretrainJob } | { type: "abort" };

/** From a worker to the pool. */
export type FromPretrainWorker =
  | { type: "progress"; progress: PretrainProgress }
  | { type: "done"; result: PretrainResult }
  | { type: "error"; name: string; message: string };

const WORKER = new URL("./pretrain-worker.ts", import.meta.url);

/** A job's token budget (for the order); an unknown size name counts 0 and fails in its worker, by name. */
const budget = (job: PretrainJob) =>
  (typeof job.size === "string" ? LADDER.find((s) => s.name === job.size) : job.size)?.tokens ?? 0;

/** One job in a worker of its own; aborting asks it to checkpoint and stop, as pretrainSize does. */
function runInWorker(
  job: PretrainJob,
  onProgress: (p: PretrainProgress) => void,
  signal?: AbortSignal,
): Promise<PretrainResult> {
  const worker = new Worker(WORKER, { type: "module", name: "pretrain" });
  const abort = () => worker.postMessage({ type: "abort" } satisfies ToPretrainWorker);
  return new Promise<PretrainResult>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<FromPretrainWorker>) => {
      const m = e.data;
      if (m.type === "progress") return onProgress(m.progress);
      if (m.type === "done") resolve(m.result);
      else reject(Object.assign(new Error(m.message), { name: m.name }));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`pretraining worker failed: ${e.message}`));
    };
    signal?.addEventListener("abort", abort, { once: true });
    worker.postMessage({ type: "run", job } satisfies ToPretrainWorker);
  }).finally(() => {
    signal?.removeEventListener("abort", abort);
    worker.terminate();
  });
}

/**
 * Pretrains every job, `concurrency` at a time, largest token budget first; results in the jobs' order.
 * `onProgress` gets each job's progress with its index. The first failure rejects once the jobs running
 * beside it have finished (none is cut off mid-checkpoint); jobs not yet started do not start.
 */
export async function pretrainSizes(
  jobs: PretrainJob[],
  opts: {
    concurrency?: number;
    signal?: AbortSignal;
    onProgress?: (index: number, p: PretrainProgress) => void;
  } = {},
): Promise<PretrainResult[]> {
  const order = jobs.map((_, i) => i).sort((a, b) => budget(jobs[b]) - budget(jobs[a]));
  const results: PretrainResult[] = new Array(jobs.length);
  let failure: unknown;
  const lane = async () => {
    for (let next = order.shift(); next !== undefined && failure === undefined; next = order.shift()) {
      const index = next;
      try {
        results[index] = await runInWorker(jobs[index], (p) => opts.onProgress?.(index, p), opts.signal);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  const lanes = Math.max(1, Math.min(opts.concurrency ?? PRETRAIN_CONCURRENCY, jobs.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  if (failure !== undefined) throw failure;
  return results;
}
