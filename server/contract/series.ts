/** Names of the metric series the jobs write per run and the dashboard's charts read. */
export const METRIC_SERIES = {
  trainLoss: "train_loss",
  valLoss: "val_loss",
  valAcc: "val_acc",
  /** A student's (or bootstrap step's) validation score: agreement with its supervisor's labels. */
  valAgreement: "val_agreement_with_supervisor",
  testAcc: "test_acc",
  lr: "lr",
  alpha: "alpha",
  knowledge: "knowledge",
} as const;

/**
 * The series a role's validation score is written under: accuracy for roles that see ground truth
 * (weak, ceiling), agreement with the supervisor's labels for those that learn from a supervisor.
 */
export function validationSeries(role: string): string {
  return role === "student" || role === "bootstrap" ? METRIC_SERIES.valAgreement : METRIC_SERIES.valAcc;
}

/** One point of a served metric series: a row, or the mean of a bucket of rows with their min and max. */
export interface SeriesPoint {
  step: number;
  value: number;
  min: number;
  max: number;
}

/** One named series of a run as served, cut to at most the requested number of points. */
export interface MetricSeries {
  points: SeriesPoint[];
  /** Rows stored for the series in the requested step range. */
  rows: number;
  downsampled: boolean;
}

/** GET /api/runs/:id/metrics. */
export interface RunMetrics {
  runId: number;
  series: Record<string, MetricSeries>;
}
