/**
 * Pure transforms of a curve (points x → y) for the curve controls: time-weighted EMA smoothing, a
 * downsampler that keeps each bucket's extremes, the mean of several runs with their min–max band, and the
 * x axis a curve is drawn against. No DOM: tests/curve-transforms.test.ts checks them against hand values.
 */

export interface XY {
  x: number;
  y: number;
}

/** The median gap between successive x values (1 when there are fewer than two points). */
export function medianSpacing(points: XY[]): number {
  const gaps = points.slice(1).map((p, i) => p.x - points[i].x).filter((g) => g > 0).sort((a, b) => a - b);
  if (gaps.length === 0) return 1;
  const mid = gaps.length >> 1;
  return gaps.length % 2 ? gaps[mid] : (gaps[mid - 1] + gaps[mid]) / 2;
}

/**
 * Time-weighted, debiased EMA: a point `gap` after the previous one keeps weight `smoothing^(gap/spacing)`
 * of the running mean, so unevenly spaced evaluations smooth alike; dividing by the accumulated weight
 * removes the pull toward 0 at the start (the first smoothed value is the first raw value).
 *   m_i = β_i·m_{i−1} + (1 − β_i)·y_i,  w_i = β_i·w_{i−1} + (1 − β_i),  s_i = m_i / w_i,
 *   β_i = smoothing^((x_i − x_{i−1})/spacing), β_0 = smoothing.
 * Non-finite y values are passed through and do not enter the mean.
 */
export function emaSmooth(points: XY[], smoothing: number, spacing = medianSpacing(points)): XY[] {
  if (!(smoothing >= 0 && smoothing < 1)) {
    throw new Error(`smoothing must be in [0, 1), got ${smoothing}`);
  }
  let mean = 0, weight = 0, lastX: number | undefined;
  return points.map((p) => {
    if (!Number.isFinite(p.y)) return { x: p.x, y: p.y };
    const beta = lastX === undefined ? smoothing : smoothing ** (Math.max(0, p.x - lastX) / spacing);
    lastX = p.x;
    mean = beta * mean + (1 - beta) * p.y;
    weight = beta * weight + (1 - beta);
    return { x: p.x, y: weight > 0 ? mean / weight : p.y };
  });
}

/**
 * At most `maxPoints` points that keep the curve's spikes: the points are split into maxPoints/2 buckets
 * of equal count, and each bucket gives its lowest and its highest point, in x order. The first and the
 * last point are always kept.
 */
export function downsampleExtremes(points: XY[], maxPoints: number): XY[] {
  if (maxPoints < 4) throw new Error(`maxPoints must be ≥ 4, got ${maxPoints}`);
  if (points.length <= maxPoints) return points;
  const inner = points.slice(1, -1);
  const buckets = Math.floor((maxPoints - 2) / 2);
  const kept: XY[] = [points[0]];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * inner.length) / buckets),
      to = Math.floor(((b + 1) * inner.length) / buckets);
    if (to <= from) continue;
    let lo = from, hi = from;
    for (let i = from; i < to; i++) {
      if (inner[i].y < inner[lo].y) lo = i;
      if (inner[i].y > inner[hi].y) hi = i;
    }
    for (const i of lo === hi ? [lo] : [Math.min(lo, hi), Math.max(lo, hi)]) kept.push(inner[i]);
  }
  kept.push(points[points.length - 1]);
  return kept;
}

export interface BandPoint {
  x: number;
  mean: number;
  min: number;
  max: number;
  /** How many curves have a finite value at x. */
  n: number;
}

/** The mean of several curves at every x any of them has, with the min and max there (a min–max band). */
export function meanBand(curves: XY[][]): BandPoint[] {
  const at = new Map<number, number[]>();
  for (const curve of curves) {
    for (const p of curve) if (Number.isFinite(p.y)) (at.get(p.x) ?? at.set(p.x, []).get(p.x)!).push(p.y);
  }
  return [...at.entries()].sort(([a], [b]) => a - b).map(([x, ys]) => ({
    x,
    mean: ys.reduce((s, y) => s + y, 0) / ys.length,
    min: Math.min(...ys),
    max: Math.max(...ys),
    n: ys.length,
  }));
}

/** What the x axis counts. */
export type XAxis = "step" | "examples" | "seconds";

/** What a run says about turning steps into examples or seconds. */
export interface RunPace {
  /** Examples per optimizer step (the finetuning batch size). */
  batchSize: number | null;
  /** Wall-clock seconds of the whole run and the step it ended at. */
  seconds: number | null;
  finalStep: number | null;
}

/**
 * x of a step on the chosen axis, or null when the run does not record what that needs. Seconds assume an
 * even pace over the run (only the run's total is stored), so the axis says "≈".
 */
export function stepToX(step: number, axis: XAxis, pace: RunPace): number | null {
  if (axis === "step") return step;
  if (axis === "examples") return pace.batchSize ? step * pace.batchSize : null;
  return pace.seconds !== null && pace.finalStep ? (step / pace.finalStep) * pace.seconds : null;
}
