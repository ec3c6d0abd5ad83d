/**
 * `toy-train`: the built-in demo and test job. Seeded logistic regression on a synthetic 2-D dataset (two
 * Gaussian blobs, class 1 around (1, 1) and class 0 around (−1, −1), unit variance, so the Bayes accuracy
 * is Φ(√2) ≈ 0.921) trained by minibatch SGD. It reports loss and accuracy every step, saves its weights
 * every `saveEvery` steps and resumes from them; minibatches depend only on (seed, step), so a resumed run
 * ends with exactly the weights of an uninterrupted one.
 */
import { and, eq } from "drizzle-orm";
import { mulberry32 } from "../../kernels/random.ts";
import { runs } from "../../db/schema.ts";
import { ToyTrainParams } from "../contract/jobs.ts";
import { markRunDone } from "./job-context.ts";
import type { JobContext } from "./registry.ts";

export interface ToyPoint {
  x: [number, number];
  y: 0 | 1;
}

export interface ToyWeights {
  w: [number, number];
  b: number;
}

interface ToyState extends ToyWeights {
  /** Steps completed. */
  step: number;
}

const BATCH_SIZE = 16;
const LEARNING_RATE = 0.5;

export function toyDataset(seed: number, samples: number): ToyPoint[] {
  const rand = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
  const points: ToyPoint[] = [];
  for (let i = 0; i < samples; i++) {
    const y = (i % 2) as 0 | 1;
    const center = y === 1 ? 1 : -1;
    points.push({ x: [center + normal(), center + normal()], y });
  }
  return points;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Mean binary cross-entropy and accuracy of the weights on the points. */
export function toyEvaluate(model: ToyWeights, points: ToyPoint[]): { loss: number; accuracy: number } {
  let loss = 0;
  let correct = 0;
  for (const { x, y } of points) {
    const p = sigmoid(model.w[0] * x[0] + model.w[1] * x[1] + model.b);
    loss -= y === 1 ? Math.log(Math.max(p, 1e-12)) : Math.log(Math.max(1 - p, 1e-12));
    if ((p >= 0.5 ? 1 : 0) === y) correct++;
  }
  return { loss: loss / points.length, accuracy: correct / points.length };
}

/** One SGD step on the minibatch that (seed, step) selects. */
export function toySgdStep(model: ToyWeights, points: ToyPoint[], seed: number, step: number): ToyWeights {
  const pick = mulberry32((seed * 1_000_003 + step) >>> 0);
  const grad = [0, 0, 0];
  for (let k = 0; k < BATCH_SIZE; k++) {
    const { x, y } = points[Math.floor(pick() * points.length)];
    const error = sigmoid(model.w[0] * x[0] + model.w[1] * x[1] + model.b) - y;
    grad[0] += error * x[0];
    grad[1] += error * x[1];
    grad[2] += error;
  }
  const scale = LEARNING_RATE / BATCH_SIZE;
  return { w: [model.w[0] - scale * grad[0], model.w[1] - scale * grad[1]], b: model.b - scale * grad[2] };
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export async function toyTrainHandler(ctx: JobContext): Promise<unknown> {
  const parsed = ToyTrainParams.safeParse(ctx.params ?? {});
  if (!parsed.success) {
    throw new Error(
      `invalid toy-train params: ${
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
      }`,
    );
  }
  const { steps, seed, stepDelayMs, samples, saveEvery } = parsed.data;
  const points = toyDataset(seed, samples);

  // One run row per job, found again on resume so that metrics keep one series.
  let [run] = await ctx.db.select().from(runs).where(and(eq(runs.jobId, ctx.jobId), eq(runs.role, "toy")));
  if (!run) {
    [run] = await ctx.db.insert(runs).values({
      jobId: ctx.jobId,
      role: "toy",
      modelSize: "toy",
      status: "running",
      config: parsed.data,
    }).returning();
  }

  const saved = await ctx.loadState<ToyState>();
  let model: ToyWeights = saved ? { w: saved.w, b: saved.b } : { w: [0, 0], b: 0 };
  const resumedFromStep = saved?.step ?? 0;
  const started = performance.now();

  for (let step = resumedFromStep; step < steps; step++) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    model = toySgdStep(model, points, seed, step);
    const { loss, accuracy } = toyEvaluate(model, points);
    ctx.metrics(run.id, [{ name: "loss", step, value: loss }, { name: "accuracy", step, value: accuracy }]);
    ctx.progress({ step: step + 1, total: steps, metrics: { loss, accuracy }, runIds: [run.id] });
    if ((step + 1) % saveEvery === 0 && step + 1 < steps) {
      await ctx.saveState({ step: step + 1, w: model.w, b: model.b } satisfies ToyState);
    }
    await abortableDelay(stepDelayMs, ctx.signal);
  }

  const final = toyEvaluate(model, points);
  await ctx.flushMetrics();
  await markRunDone(ctx.db, run.id);
  return {
    runId: run.id,
    steps,
    loss: final.loss,
    accuracy: final.accuracy,
    weights: model,
    resumedFromStep,
    secondsThisAttempt: (performance.now() - started) / 1000,
  };
}
