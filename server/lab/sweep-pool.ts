/**
 * A sweep's lanes in workers (runInLanes in sweep.ts opens them): each lane a Worker with its own GPU
 * device (on llvmpipe its own rasterizer threads) that runs the groups of experiments it is sent. A sweep's
 * finetunes are small models on rows of a few tokens, so read-back waits and dispatch hand-offs leave
 * llvmpipe's threads idle much of the time; a second lane fills those gaps (README, performance).
 * What crosses threads is data: the worker reads the models and the role cache from the data directory
 * itself, asks this side for imported tasks (the store stays here), and reports every callback here, in
 * order, where the lane's callbacks (a job's recorder) and the sweep's run.
 */
import type { CurvePoint, ExperimentResult, Role, RoleRun } from "../contract/results.ts";
import type { TaskExample } from "../tasks/types.ts";
import { type ErrorReport, reportedError, startDeviceWorker } from "./device-workers.ts";
import type { LabCorpusOptions } from "./lab-corpus.ts";
import type { LaneCallbacks, SweepDeps, SweepLanes } from "./sweep.ts";
import type { ExperimentOptions, Progress } from "./w2s.ts";

/** Lanes at once by default: two fill a 2-core machine (README, performance). */
export const SWEEP_CONCURRENCY = 2;

/** Where a lane's worker finds what an experiment reads, as the process's own deps would. */
export interface SweepSource {
  dataDir: string;
  /** Imported models (own-models.ts) instead of the lab's ladder. */
  ladder?: readonly string[];
  /** The lab corpus's options, where not the default (tests' tiny worlds). */
  corpus?: LabCorpusOptions;
  /** The role cache's directory; absent: no cache. */
  cacheDir?: string;
}

export type ToSweepWorker =
  | { type: "run"; source: SweepSource; plan: readonly ExperimentOptions[]; indices: readonly number[] }
  | { type: "abort" }
  | { type: "task"; id: number; examples?: TaskExample[]; error?: string };

export type FromSweepWorker =
  | { type: "start"; opts: ExperimentOptions }
  | { type: "progress"; progress: Progress }
  | { type: "eval"; role: Role; size: string; point: CurvePoint }
  | { type: "run"; run: RoleRun }
  | { type: "experiment"; result: ExperimentResult; index: number; total: number }
  | { type: "task"; id: number; name: string }
  | { type: "ready" }
  | { type: "done"; results: ExperimentResult[] }
  | ErrorReport;

const WORKER = new URL("./sweep-worker.ts", import.meta.url);

/** Answers a worker's question for an imported task from the process's lookup (the store). */
async function answerTask(deps: SweepDeps, id: number, name: string): Promise<ToSweepWorker> {
  try {
    return { type: "task", id, examples: await deps.importedTasks?.(name) };
  } catch (err) {
    return { type: "task", id, error: (err as Error).message };
  }
}

/** Calls the callback a worker's message stands for (awaited, so a job's writes keep their order). */
async function deliver(m: FromSweepWorker, deps: SweepDeps, send: (m: ToSweepWorker) => void) {
  if (m.type === "start") deps.onStart?.(m.opts);
  else if (m.type === "progress") deps.onProgress?.(m.progress);
  else if (m.type === "eval") deps.onEval?.(m.role, m.size, m.point);
  else if (m.type === "run") await deps.onRun?.(m.run);
  else if (m.type === "experiment") await deps.onExperiment?.(m.result, m.index, m.total);
  else if (m.type === "task") send(await answerTask(deps, m.id, m.name));
}

/** One worker that runs the groups it is given, one at a time; `close` ends it. */
function workerLane(source: SweepSource, callbacks?: LaneCallbacks) {
  // Workers start one at a time (device-workers.ts): this one once the one before it has its device.
  const started = startDeviceWorker(WORKER, "sweep-lane");
  const run = async (plan: readonly ExperimentOptions[], deps: SweepDeps, indices: readonly number[]) => {
    if (deps.trainer) throw new Error("a trainer stand-in runs in this process, not in a sweep worker");
    return runIn(await started, source, plan, deps, indices);
  };
  const close = () => void started.then((worker) => worker.terminate(), () => {});
  return { run, callbacks, close };
}

/** Runs the plan's experiments at `indices` in `worker`, its callbacks delivered to `deps` in order. */
function runIn(
  worker: Worker,
  source: SweepSource,
  plan: readonly ExperimentOptions[],
  deps: SweepDeps,
  indices: readonly number[],
): Promise<ExperimentResult[]> {
  const send = (m: ToSweepWorker) => worker.postMessage(m);
  const abort = () => send({ type: "abort" });
  return new Promise<ExperimentResult[]>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      failed = true;
      abort();
      reject(err);
    };
    // One message at a time: a run's row is written before its experiment's result names it.
    let handled = Promise.resolve();
    worker.onmessage = (e: MessageEvent<FromSweepWorker>) => {
      const m = e.data;
      handled = handled.then(async () => {
        if (failed) return;
        if (m.type === "done") resolve(m.results);
        else if (m.type === "error") fail(reportedError(m));
        else await deliver(m, deps, send);
      }).catch(fail);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      fail(new Error(`sweep worker failed: ${e.message}`));
    };
    if (deps.signal?.aborted) abort();
    else deps.signal?.addEventListener("abort", abort, { once: true });
    send({ type: "run", source, plan, indices });
  }).finally(() => deps.signal?.removeEventListener("abort", abort));
}

/**
 * Lanes for runInLanes, each a worker reading from `source`; `callbacks(n)` gives lane n its own callbacks.
 * A lane's experiments are the ones the process would run with the same deps, to the same results.
 */
export function workerLanes(
  source: SweepSource,
  opts: { concurrency?: number; callbacks?: (n: number) => LaneCallbacks } = {},
): SweepLanes {
  return {
    concurrency: opts.concurrency ?? SWEEP_CONCURRENCY,
    open: (n) => workerLane(source, opts.callbacks?.(n)),
  };
}
