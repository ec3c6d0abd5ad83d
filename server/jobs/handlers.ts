/**
 * Registers the job handlers every worker knows; importing this module is what makes a process able to
 * run jobs (the server and `lab worker` import it): `toy-train` (a toy job for tests), `bench`, `pretrain`,
 * the weak-to-strong pipeline's `w2s`, `sweep` and its `sweep-cell`s, and `demo` (the lab's demo: pretraining, then a sweep).
 */
import { DEMO_JOB_TYPE } from "../contract/jobs.ts";
import { benchHandler } from "./bench-job.ts";
import { demoHandler } from "./demo-job.ts";
import { SWEEP_CELL_JOB, sweepCellHandler, sweepHandler, w2sHandler } from "./experiment-jobs.ts";
import { pretrainHandler } from "./pretrain-job.ts";
import { registerJobHandler } from "./registry.ts";
import { toyTrainHandler } from "./toy-train-job.ts";

registerJobHandler("toy-train", toyTrainHandler);
registerJobHandler("bench", benchHandler);
registerJobHandler("pretrain", pretrainHandler);
registerJobHandler("w2s", w2sHandler);
registerJobHandler("sweep", sweepHandler);
registerJobHandler(SWEEP_CELL_JOB, sweepCellHandler);
registerJobHandler(DEMO_JOB_TYPE, demoHandler);
