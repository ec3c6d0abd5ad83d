/**
 * The worker side of sweep-pool.ts: runs the plan's experiments at the indices it is sent (runPlanned),
 * reading models and the role cache from its source itself (kept between groups, so a size loads once per
 * lane), asking the pool for imported tasks, and posting every callback, then the results or the error.
 * An abort message stops the group the way a sweep's signal does.
 */
import { ExperimentCache } from "./cache.ts";
import { announceDevice, errorReport } from "./device-workers.ts";
import { ladderModelSource, type ModelSource } from "./model-source.ts";
import { modelSourceFor } from "./own-models.ts";
import type { FromSweepWorker, SweepSource, ToSweepWorker } from "./sweep-pool.ts";
import { runPlanned } from "./sweep.ts";
import type { TaskExample } from "../tasks/types.ts";

interface WorkerScope {
  postMessage(message: FromSweepWorker): void;
  onmessage: ((e: MessageEvent<ToSweepWorker>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;
const post = (m: FromSweepWorker) => scope.postMessage(m);

let controller = new AbortController();
/** The pool's answers to this worker's task questions, by id. */
const asked = new Map<number, { resolve: (e?: TaskExample[]) => void; reject: (err: Error) => void }>();
let nextQuestion = 0;
let opened: { key: string; models: Promise<ModelSource>; cache?: ExperimentCache } | undefined;

function importedTask(name: string): Promise<TaskExample[] | undefined> {
  const id = nextQuestion++;
  return new Promise((resolve, reject) => {
    asked.set(id, { resolve, reject });
    post({ type: "task", id, name });
  });
}

/** The source's models and cache, opened once for every group this worker runs. */
function open(source: SweepSource) {
  const key = JSON.stringify(source);
  if (opened?.key !== key) {
    opened = {
      key,
      models: source.ladder
        ? modelSourceFor(source.dataDir, source.ladder)
        : Promise.resolve(ladderModelSource(source.dataDir, { corpus: source.corpus })),
      cache: source.cacheDir ? new ExperimentCache(source.cacheDir) : undefined,
    };
  }
  return opened;
}

// The device first, then "ready" (device-workers.ts: the next worker starts after this one's device).
announceDevice(post);

scope.onmessage = async (e) => {
  const m = e.data;
  if (m.type === "abort") return controller.abort(new Error("the sweep was stopped"));
  if (m.type === "task") {
    const question = asked.get(m.id);
    asked.delete(m.id);
    return m.error === undefined ? question?.resolve(m.examples) : question?.reject(new Error(m.error));
  }
  controller = new AbortController();
  try {
    const { models, cache } = open(m.source);
    const results = await runPlanned(m.plan, {
      models: await models,
      cache,
      importedTasks: importedTask,
      signal: controller.signal,
      onStart: (opts) => post({ type: "start", opts }),
      onProgress: (progress) => post({ type: "progress", progress }),
      onEval: (role, size, point) => post({ type: "eval", role, size, point }),
      onRun: (run) => post({ type: "run", run }),
      onExperiment: (result, index, total) => post({ type: "experiment", result, index, total }),
    }, m.indices);
    post({ type: "done", results });
  } catch (err) {
    post(errorReport(err));
  }
};
