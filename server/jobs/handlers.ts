/**
 * Registers the job handlers every worker knows. Importing this module is what makes a process able to run
 * jobs: `toy-train` (demo and tests), `bench` and `pretrain` here; the W2S pipeline's `w2s` and `sweep`
 * come from server/jobs/lab_handlers.ts, which registers itself: the server and `lab worker` import both.
 */
import { benchHandler } from "./bench.ts";
import { pretrainHandler } from "./pretrain.ts";
import { registerJobHandler } from "./registry.ts";
import { toyTrainHandler } from "./toy_train.ts";

registerJobHandler("toy-train", toyTrainHandler);
registerJobHandler("bench", benchHandler);
registerJobHandler("pretrain", pretrainHandler);
