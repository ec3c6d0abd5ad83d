/**
 * Several sizes pretrained at once, each in a Worker of its own (its own GPU device; on llvmpipe its own
 * rasterizer threads). One size's training leaves llvmpipe's threads idle a fifth of the time or more
 * (dispatch hand-offs, single-workgroup reductions, read-back waits); a second size fills those gaps. On
 * the 2-core machine mini and small pretrained in 209 s together against 295 s one after the other, each
 * to the same bits (README, performance). Sizes start largest first, so the lanes end close together.
 * A size already pretrained takes pretrainSize's cached path in its worker, as it would in process.
 */
import { LADDER } from "./ladder.ts";
import {
  PretrainInterrupted,
  type PretrainOptions,
  type PretrainProgress,
  type PretrainResult,
  type PretrainStart,
} from "./pretrain.ts";
import type { PretrainStatus } from "./model-store.ts";
import { type ErrorReport, reportedError, startDeviceWorker } from "./device-workers.ts";

/** Sizes trained at once by default: two fill a 2-core machine; more only share the same cores. */
export const PRETRAIN_CONCURRENCY = 2;

/** One size's pretraining as the pool runs it: pretrainSize's options, less the device (each has its own). */
export type PretrainRequest = Omit<PretrainOptions, "gpu"> & { dataDir: string };

/** A size's pretraining as a worker receives it: the options that cross threads (no callbacks, no signal). */
export type PretrainJob = Omit<PretrainRequest, "onStart" | "onProgress" | "onCheckpoint" | "signal">;

/** From the pool to a worker: run, abort (checkpoint and stop), or a checkpoint's callback has finished. */
export type ToPretrainWorker =
  | { type: "run"; job: PretrainJob }
  | { type: "abort" }
  | { type: "checkpointed" };

/** From a worker to the pool. */
export type FromPretrainWorker =
  | { type: "start"; info: PretrainStart }
  | { type: "progress"; progress: PretrainProgress }
  | { type: "checkpoint"; status: PretrainStatus }
  | { type: "done"; result: PretrainResult }
  | ErrorReport & { interruptedAt?: number }
  | { type: "ready" };

const WORKER = new URL("./pretrain-worker.ts", import.meta.url);

/** A request's token budget (for the order); an unknown size name counts 0 and fails in its worker, by name. */
const budget = ({ size, tokens }: PretrainRequest) =>
  tokens ?? (typeof size === "string" ? LADDER.find((s) => s.name === size) : size)?.tokens ?? 0;

/** A worker's error as pretrainSize would have thrown it: PretrainInterrupted stays one. */
function workerError(m: Extract<FromPretrainWorker, { type: "error" }>): Error {
  if (m.interruptedAt !== undefined) return new PretrainInterrupted(m.interruptedAt);
  return reportedError(m);
}

/**
 * pretrainSize in a worker of its own, with the same options and outcome: its callbacks are called here as
 * the worker reports (the worker waits for onCheckpoint, as pretrainSize awaits it; a callback that throws
 * fails it), an abort of `signal` makes it checkpoint and reject with its "interrupted" error, and an error
 * keeps its name and message.
 */
export async function pretrainInWorker(opts: PretrainRequest): Promise<PretrainResult> {
  const { onStart, onProgress, onCheckpoint, signal, ...job } = opts;
  // Workers start one at a time (device-workers.ts): this one once the one before it has its device.
  const worker = await startDeviceWorker(WORKER, "pretrain");
  const send = (m: ToPretrainWorker) => worker.postMessage(m);
  const abort = () => send({ type: "abort" });
  return await new Promise<PretrainResult>((resolve, reject) => {
    // A callback that throws fails the pretraining, as it would in process (the worker is then stopped).
    worker.onmessage = async (e: MessageEvent<FromPretrainWorker>) => {
      const m = e.data;
      try {
        if (m.type === "start") onStart?.(m.info);
        else if (m.type === "progress") onProgress?.(m.progress);
        else if (m.type === "checkpoint") {
          await onCheckpoint?.(m.status);
          send({ type: "checkpointed" });
        } else if (m.type === "done") resolve(m.result);
        else if (m.type === "error") reject(workerError(m));
      } catch (err) {
        reject(err);
      }
    };
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`pretraining worker failed: ${e.message}`));
    };
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort, { once: true });
    send({ type: "run", job });
  }).finally(() => {
    signal?.removeEventListener("abort", abort);
    worker.terminate();
  });
}

/**
 * Pretrains every request through `run` (default: each in a worker), `concurrency` at a time, largest token
 * budget first; results in the requests' order. The first failure stops the sizes running beside it (they
 * checkpoint, so they resume) and rejects with that failure; sizes not yet started do not start.
 */
export async function pretrainSizes<R extends PretrainRequest>(
  requests: R[],
  opts: { concurrency?: number; run?: (request: R) => Promise<PretrainResult> } = {},
): Promise<PretrainResult[]> {
  const run = opts.run ?? pretrainInWorker;
  const order = requests.map((_, i) => i).sort((a, b) => budget(requests[b]) - budget(requests[a]));
  const results: PretrainResult[] = new Array(requests.length);
  const stop = new AbortController();
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    for (let next = order.shift(); next !== undefined && !failure; next = order.shift()) {
      const request = requests[next];
      const signal = request.signal ? AbortSignal.any([request.signal, stop.signal]) : stop.signal;
      try {
        results[next] = await run({ ...request, signal });
      } catch (error) {
        failure ??= { error };
        stop.abort();
      }
    }
  };
  const lanes = Math.max(1, Math.min(opts.concurrency ?? PRETRAIN_CONCURRENCY, requests.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  if (failure) throw failure.error;
  return results;
}
