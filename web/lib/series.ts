/**
 * Which chart a metric series belongs on. The names come from METRIC_SERIES in the API's schemas, the same
 * constants the pipeline writes with (server/jobs/experiment-jobs.ts, pretrain.ts); other jobs' names (the
 * demo job's "loss" and "accuracy") fall back to matching on "loss" and "acc".
 */
import { METRIC_SERIES } from "../../server/contract/series.ts";

export type SeriesKind = "loss" | "accuracy" | "schedule" | "other";

const KNOWN: Record<string, SeriesKind> = {
  [METRIC_SERIES.trainLoss]: "loss",
  [METRIC_SERIES.valLoss]: "loss",
  [METRIC_SERIES.valAcc]: "accuracy",
  [METRIC_SERIES.valAgreement]: "accuracy",
  [METRIC_SERIES.testAcc]: "accuracy",
  [METRIC_SERIES.knowledge]: "accuracy",
  [METRIC_SERIES.lr]: "schedule",
  [METRIC_SERIES.alpha]: "schedule",
};

export function seriesKind(name: string): SeriesKind {
  return KNOWN[name] ?? (/loss/i.test(name) ? "loss" : /acc/i.test(name) ? "accuracy" : "other");
}

/** The test-accuracy series of a run: the pipeline's name, else one named like it, else the only accuracy. */
export function testAccuracySeries(names: readonly string[]): string | undefined {
  if (names.includes(METRIC_SERIES.testAcc)) return METRIC_SERIES.testAcc;
  const accuracy = names.filter((n) => seriesKind(n) === "accuracy" && n !== METRIC_SERIES.knowledge);
  return accuracy.find((n) => /test/i.test(n)) ?? (accuracy.length === 1 ? accuracy[0] : undefined);
}

/** The pretraining loss series: training or validation. */
export function pretrainLossSeries(names: readonly string[], validation: boolean): string | undefined {
  const wanted = validation ? METRIC_SERIES.valLoss : METRIC_SERIES.trainLoss;
  if (names.includes(wanted)) return wanted;
  return names.find((n) => seriesKind(n) === "loss" && /val/i.test(n) === validation);
}
