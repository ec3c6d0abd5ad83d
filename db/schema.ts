/**
 * The lab's one database schema (Postgres dialect). The same tables serve the embedded PGlite store and a
 * Postgres server; drizzle-kit generates db/migrations from this file (`deno task db:generate`,
 * see db/drizzle.config.ts).
 */
import {
  bigint,
  boolean,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { sql } from "drizzle-orm";

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

/** One row per ladder size that has been touched (pretraining started or finished). */
export const models = pgTable("models", {
  name: text("name").primaryKey(),
  params: integer("params"),
  /** none | pretraining | ready | failed */
  status: text("status").notNull().default("none"),
  /** The size's directory relative to a data directory (model-store.ts modelKey): the same on every machine. */
  checkpointKey: text("checkpoint_key"),
  valLoss: doublePrecision("val_loss"),
  /** Pretraining facts: tokens seen, steps, seconds, corpus, seed. */
  pretrainInfo: jsonb("pretrain_info"),
  jobId: integer("job_id"),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Imported tasks (built-in ones live in code and are joined in by the API); their examples: task_examples. */
export const tasks = pgTable("tasks", {
  name: text("name").primaryKey(),
  kind: text("kind").notNull().default("imported"),
  description: text("description").notNull().default(""),
  /** Where the examples came from: an uploaded file name or "api". */
  source: text("source").notNull().default("api"),
  exampleCount: integer("example_count").notNull().default(0),
  createdAt: createdAt(),
}, (t) => [
  // Names that differ only in case read as one task; the index refuses them even when two imports race.
  uniqueIndex("tasks_name_lower_idx").on(sql`lower(${t.name})`),
]);

/** One row per example of an imported task, `idx` its 0-based place in the file (reads order by it). */
export const taskExamples = pgTable("task_examples", {
  taskName: text("task_name").notNull().references(() => tasks.name, { onDelete: "cascade" }),
  idx: integer("idx").notNull(),
  example: jsonb("example").notNull(),
}, (t) => [primaryKey({ columns: [t.taskName, t.idx] })]);

export const jobs = pgTable("jobs", {
  id: serial("id").primaryKey(),
  type: text("type").notNull(),
  params: jsonb("params").notNull().default({}),
  /** queued | running | done | failed | cancelled */
  status: text("status").notNull().default("queued"),
  progress: jsonb("progress"),
  leaseOwner: text("lease_owner"),
  leaseExpiresAt: timestamp("lease_expires_at", { withTimezone: true }),
  attempts: integer("attempts").notNull().default(0),
  maxAttempts: integer("max_attempts").notNull().default(3),
  /** Where the last attempt ran: {host, owner, adapter} (the worker writes it when it leases the job). */
  ranOn: jsonb("ran_on"),
  /** Jobs that must be done before this one is leased (a sweep waits for its cells). */
  waitsFor: integer("waits_for").array().notNull().default(sql`'{}'::integer[]`),
  /** Not leased before this time (a job waiting for a pretraining to finish looks again then). */
  runAfter: timestamp("run_after", { withTimezone: true }),
  /** The job that queued this one (a sweep's cells): cancelling the parent cancels it. */
  parentId: integer("parent_id"),
  /** What a handler needs to resume after its worker died (saved with saveState). */
  state: jsonb("state"),
  result: jsonb("result"),
  error: text("error"),
  createdAt: createdAt(),
  startedAt: timestamp("started_at", { withTimezone: true }),
  finishedAt: timestamp("finished_at", { withTimezone: true }),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  index("jobs_status_id_idx").on(t.status, t.id),
  index("jobs_updated_at_idx").on(t.updatedAt),
  index("jobs_parent_idx").on(t.parentId),
]);

/** A weak→strong experiment or a sweep: its validated config and the job that runs it. */
export const experiments = pgTable("experiments", {
  id: serial("id").primaryKey(),
  /** experiment | sweep */
  kind: text("kind").notNull(),
  name: text("name"),
  config: jsonb("config").notNull(),
  /** queued | running | done | failed | cancelled (mirrors its job) */
  status: text("status").notNull().default("queued"),
  jobId: integer("job_id").references(() => jobs.id, { onDelete: "set null" }),
  createdAt: createdAt(),
  finishedAt: timestamp("finished_at", { withTimezone: true }),
}, (t) => [index("experiments_kind_idx").on(t.kind, t.id)]);

/** One trained model inside an experiment (or a pretraining / demo job). */
export const runs = pgTable("runs", {
  id: serial("id").primaryKey(),
  experimentId: integer("experiment_id").references(() => experiments.id, { onDelete: "cascade" }),
  jobId: integer("job_id").references(() => jobs.id, { onDelete: "set null" }),
  /** weak | ceiling | student | bootstrap | pretrain | probe | toy */
  role: text("role").notNull(),
  modelSize: text("model_size").notNull(),
  /**
   * The task an experiment's role is trained on, written with the row (null for pretraining and toy runs,
   * and for runs stored before migration 0006: the API reads theirs from their experiment).
   */
  task: text("task"),
  status: text("status").notNull().default("running"),
  config: jsonb("config"),
  startedAt: timestamp("started_at", { withTimezone: true }).notNull().defaultNow(),
  finishedAt: timestamp("finished_at", { withTimezone: true }),
  seconds: doublePrecision("seconds"),
}, (t) => [index("runs_experiment_idx").on(t.experimentId), index("runs_job_idx").on(t.jobId)]);

/** Metric series: one narrow row per (run, name, step); the key is also the read index. */
export const metrics = pgTable("metrics", {
  runId: integer("run_id").notNull().references(() => runs.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  step: integer("step").notNull(),
  value: doublePrecision("value").notNull(),
}, (t) => [primaryKey({ columns: [t.runId, t.name, t.step] })]);

export const results = pgTable("results", {
  id: serial("id").primaryKey(),
  experimentId: integer("experiment_id").notNull().references(() => experiments.id, { onDelete: "cascade" }),
  task: text("task"),
  weakSize: text("weak_size"),
  strongSize: text("strong_size"),
  method: text("method"),
  seed: integer("seed"),
  /** The headline: every model's FINAL checkpoint (the paper's reading). */
  weakAcc: doublePrecision("weak_acc"),
  ceilingAcc: doublePrecision("ceiling_acc"),
  studentAcc: doublePrecision("student_acc"),
  pgr: doublePrecision("pgr"),
  /** Ceiling − weak within test noise: the PGR is not meaningful and medians leave it out. */
  gapTooSmall: boolean("gap_too_small"),
  /** Each model at its best validation point (the student's validation labels are the weak model's). */
  selectedStudentAcc: doublePrecision("selected_student_acc"),
  selectedPgr: doublePrecision("selected_pgr"),
  selectedStep: integer("selected_step"),
  /** The contract's Agreement (server/contract/results.ts): {all, supervisor_correct, supervisor_wrong}. */
  agreement: jsonb("agreement"),
  /** Ground-truth early stopping: the best test point along the curve, reported next to the final one. */
  oracleStudentAcc: doublePrecision("oracle_student_acc"),
  oraclePgr: doublePrecision("oracle_pgr"),
  oracleStep: integer("oracle_step"),
  full: jsonb("full"),
  createdAt: createdAt(),
}, (t) => [index("results_experiment_idx").on(t.experimentId)]);

export const probeResults = pgTable("probe_results", {
  id: serial("id").primaryKey(),
  experimentId: integer("experiment_id").references(() => experiments.id, { onDelete: "cascade" }),
  runId: integer("run_id").references(() => runs.id, { onDelete: "cascade" }),
  layer: integer("layer").notNull(),
  /** lp(weak) | lp(gt) | ft(weak)+lp(gt) | ft(gt) */
  kind: text("kind").notNull(),
  accuracy: doublePrecision("accuracy").notNull(),
  createdAt: createdAt(),
}, (t) => [index("probe_results_experiment_idx").on(t.experimentId)]);

export const benchResults = pgTable("bench_results", {
  id: serial("id").primaryKey(),
  jobId: integer("job_id").references(() => jobs.id, { onDelete: "set null" }),
  device: text("device").notNull(),
  kernel: text("kernel").notNull(),
  version: text("version").notNull(),
  shape: text("shape").notNull(),
  ms: doublePrecision("ms").notNull(),
  gflops: doublePrecision("gflops"),
  gbps: doublePrecision("gbps"),
  /** What else the benchmark measured: the timer, and for training rows tokens/s, ms/step, matmul share… */
  details: jsonb("details"),
  createdAt: createdAt(),
}, (t) => [index("bench_results_kernel_idx").on(t.kernel, t.device)]);

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({ dataType: () => "bytea" });

/**
 * The shared artifact store (db/artifacts.ts): a named file (its key, a path relative to a data directory)
 * points at a content-addressed blob. Only used with DATABASE_URL: every machine's worker reaches it.
 */
export const artifacts = pgTable("artifacts", {
  key: text("key").primaryKey(),
  /** sha-256 (hex) of the whole blob. */
  hash: text("hash").notNull(),
  size: bigint("size", { mode: "number" }).notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [index("artifacts_hash_idx").on(t.hash)]);

/** A blob's bytes in chunks, `idx` their 0-based order; shared by every key with the same content. */
export const artifactChunks = pgTable("artifact_chunks", {
  hash: text("hash").notNull(),
  idx: integer("idx").notNull(),
  bytes: bytea("bytes").notNull(),
}, (t) => [primaryKey({ columns: [t.hash, t.idx] })]);

export type Job = typeof jobs.$inferSelect;
export type Experiment = typeof experiments.$inferSelect;
export type Run = typeof runs.$inferSelect;
export type ResultRow = typeof results.$inferSelect;
