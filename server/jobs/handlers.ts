/**
 * Registers the job handlers every worker knows. Importing this module is what makes a process able to run
 * jobs: `toy-train` (demo and tests), `bench` and `pretrain` here; the W2S pipeline's `w2s` and `sweep`
 * come from server/jobs/lab_handlers.ts, which registers itself and is loaded by `loadLabHandlers()`.
 */
import { benchHandler } from "./bench.ts";
import { pretrainHandler } from "./pretrain.ts";
import { registeredJobTypes, registerJobHandler } from "./registry.ts";
import { toyTrainHandler } from "./toy_train.ts";

registerJobHandler("toy-train", toyTrainHandler);
registerJobHandler("bench", benchHandler);
registerJobHandler("pretrain", pretrainHandler);

/**
 * Loads server/jobs/lab_handlers.ts when it exists (it registers `w2s` and `sweep`); the server and
 * `lab worker` call this so that those jobs run as soon as the file lands. Returns the registered types.
 */
export async function loadLabHandlers(): Promise<string[]> {
  const url = new URL("./lab_handlers.ts", import.meta.url);
  try {
    await Deno.stat(url);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return registeredJobTypes();
    throw err;
  }
  // A computed specifier: the file is optional, so type checking must not require it.
  await import(url.href);
  return registeredJobTypes();
}
