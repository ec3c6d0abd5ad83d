/**
 * Registers the job handlers every worker knows. Importing this module is what makes a process able to run
 * jobs; the lab pipeline adds its `pretrain`, `w2s`, `sweep` and `bench` handlers here.
 */
import { registerJobHandler } from "./registry.ts";
import { toyTrainHandler } from "./toy_train.ts";

registerJobHandler("toy-train", toyTrainHandler);
