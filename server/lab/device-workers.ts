/**
 * Workers that open a GPU device start one at a time in this process: each is created once the one before
 * it has its device (it posts `{ type: "ready" }`) or has failed. Both pools (pretrain-pool.ts,
 * sweep-pool.ts) start theirs here, so no two threads set up llvmpipe's EGL display at once: the suspect
 * of the one crash seen in two-lane runs ("Failed to make EGL context current: BadDisplay", README).
 */
import { getGpu } from "../../kernels/device.ts";
import { applyMachineTune } from "../../kernels/ops/matmul-autotune.ts";

/** An error as a worker posts it: a thrown Error's class does not cross threads, its name and message do. */
export interface ErrorReport {
  type: "error";
  name: string;
  message: string;
}

/** What a device worker says first: its device exists, or why it could not open one. */
export type DeviceWorkerStart = { type: "ready" } | ErrorReport;

/** The worker side: what was thrown, as the message that reports it. */
export function errorReport(err: unknown): ErrorReport {
  const error = err instanceof Error ? err : new Error(String(err));
  return { type: "error", name: error.name, message: error.message };
}

/** The pool side: a worker's report as an Error with the same name and message. */
export function reportedError(report: { name: string; message: string }): Error {
  return Object.assign(new Error(report.message), { name: report.name });
}

let previous: Promise<unknown> = Promise.resolve();

/** A worker of module `url`, resolved once it has its device; rejected with its start-up error. */
export function startDeviceWorker(url: URL, name: string): Promise<Worker> {
  const started = previous.catch(() => {}).then(() =>
    new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(url, { type: "module", name });
      const settle = (err?: Error) => {
        worker.removeEventListener("message", onMessage);
        worker.removeEventListener("error", onError);
        if (!err) return resolve(worker);
        worker.terminate();
        reject(err);
      };
      const onMessage = (e: MessageEvent<DeviceWorkerStart>) => {
        if (e.data.type === "ready") settle();
        else if (e.data.type === "error") {
          settle(reportedError(e.data));
        }
      };
      const onError = (e: ErrorEvent) => {
        e.preventDefault();
        settle(new Error(`${name} worker failed: ${e.message}`));
      };
      worker.addEventListener("message", onMessage);
      worker.addEventListener("error", onError);
    })
  );
  previous = started;
  return started;
}

/**
 * The worker side: opens this thread's device and applies the matmul blocks and operands cached for it
 * (a worker's module state starts from the defaults), then says so through `post` (or why it could not).
 */
export function announceDevice(post: (m: DeviceWorkerStart) => void): void {
  getGpu().then((gpu) => {
    applyMachineTune(gpu);
    post({ type: "ready" });
  }, (err) => post(errorReport(err)));
}
