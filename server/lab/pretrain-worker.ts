/**
 * The worker side of pretrain-pool.ts (pretrainInWorker): pretrains the one size it is sent, posting its
 * start, progress and checkpoints (waiting at each checkpoint until the pool's callback has finished), then
 * its result or its error; an abort message interrupts it the way pretrainSize's signal does (a checkpoint,
 * then an "interrupted" error).
 */
import type { FromPretrainWorker, ToPretrainWorker } from "./pretrain-pool.ts";
import { PretrainInterrupted, pretrainSize } from "./pretrain.ts";
import { announceDevice, errorReport } from "./device-workers.ts";

interface WorkerScope {
  postMessage(message: FromPretrainWorker): void;
  onmessage: ((e: MessageEvent<ToPretrainWorker>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;
const controller = new AbortController();
/** Resolves the checkpoint the pool is handling, when it says it has finished. */
let checkpointed: (() => void) | undefined;

// The device first, then "ready" (device-workers.ts: the next worker starts after this one's device).
announceDevice((m) => scope.postMessage(m));

scope.onmessage = async (e) => {
  const m = e.data;
  if (m.type === "abort") return controller.abort();
  if (m.type === "checkpointed") return checkpointed?.();
  try {
    const result = await pretrainSize({
      ...m.job,
      signal: controller.signal,
      onStart: (info) => scope.postMessage({ type: "start", info }),
      onProgress: (progress) => scope.postMessage({ type: "progress", progress }),
      onCheckpoint: (status) =>
        new Promise<void>((resolve) => {
          checkpointed = resolve;
          scope.postMessage({ type: "checkpoint", status });
        }),
    });
    scope.postMessage({ type: "done", result });
  } catch (err) {
    const interruptedAt = err instanceof PretrainInterrupted ? err.step : undefined;
    scope.postMessage({ ...errorReport(err), interruptedAt });
  }
};
