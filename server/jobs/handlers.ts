/**
 * Registers the job handlers every worker knows; importing this module is what makes a process able to
 * run jobs (the server and `lab worker` import it): `toy-train` (a toy job for tests), `bench`, `pretrain`,
 * the weak-to-strong pipeline's `w2s`, `sweep` and its `sweep-cell`s, and `demo` (the lab's demo: pretraining, then a sweep).
 */
import { DEMO_JOB_TYPE, JOB_TYPES, type JobType, SWEEP_CELL_JOB } from "../contract/jobs.ts";
import { benchHandler } from "./bench-job.ts";
import { demoHandler } from "./demo-job.ts";
import { sweepCellHandler, sweepHandler, w2sHandler } from "./experiment-jobs.ts";
import { pretrainHandler } from "./pretrain-job.ts";
import { type JobHandler, registerJobHandler } from "./registry.ts";
import { toyTrainHandler } from "./toy-train-job.ts";

/** A handler for every job type of the contract (JOB_TYPES, which GET /api/jobs?type= accepts). */
const HANDLERS: Record<JobType, JobHandler> = {
  "toy-train": toyTrainHandler,
  bench: benchHandler,
  pretrain: pretrainHandler,
  w2s: w2sHandler,
  sweep: sweepHandler,
  [SWEEP_CELL_JOB]: sweepCellHandler,
  [DEMO_JOB_TYPE]: demoHandler,
};

for (const type of JOB_TYPES) registerJobHandler(type, HANDLERS[type]);
