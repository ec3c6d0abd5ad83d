/**
 * The worker side of pretrain-pool.ts: pretrains the one size it is sent, posting its progress, then its
 * result or its error; an abort message interrupts it the way pretrainSize's signal does (a checkpoint,
 * then an "interrupted" error).
 */
import type { FromPretrainWorker, ToPretrainWorker } from "./pretrain-pool.ts";
import { pretrainSize } from "./pretrain.ts";

interface WorkerScope {
  postMessage(message: FromPretrainWorker): void;
  onmessage: ((e: MessageEvent<ToPretrainWorker>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;
const controller = new AbortController();

scope.onmessage = async (e) => {
  const m = e.data;
  if (m.type === "abort") return controller.abort();
  try {
    const result = await pretrainSize({
      ...m.job,
      signal: controller.signal,
      onProgress: (progress) => scope.postMessage({ type: "progress", progress }),
    });
    scope.postMessage({ type: "done", result });
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    scope.postMessage({ type: "error", name: error.name, message: error.message });
  }
};
