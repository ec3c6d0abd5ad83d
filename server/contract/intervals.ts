/** Confidence intervals that the pipeline computes and the dashboard draws alike. */
import type { Interval } from "./results.ts";

/**
 * Wilson score interval for an accuracy of k correct out of n:
 * (p̂ + z²/2n ± z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n), with z = 1.96 for 95 %.
 */
export function wilsonInterval(correct: number, n: number, z = 1.96): Interval {
  if (!(n > 0) || correct < 0 || correct > n) throw new Error(`wilsonInterval: need 0 ≤ correct ≤ n, n > 0`);
  const p = correct / n;
  const z2 = z * z;
  const center = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At p = 0 or 1 the bound is exactly 0 or 1 in exact arithmetic; rounding must not exclude p itself.
  return {
    lo: correct === 0 ? 0 : Math.max(0, center - half),
    hi: correct === n ? 1 : Math.min(1, center + half),
  };
}

/** The Wilson interval of a share of n (an accuracy, a recall, an agreement): its count is share · n, rounded. */
export function shareInterval(share: number, n: number): Interval {
  return wilsonInterval(Math.round(share * n), n);
}

/** "93.7% [92.0, 95.0]": a share in percent with its 95 % interval, as the CLI prints recalls; "-" for none. */
export function percentWithInterval(share: number | null, ci: Interval | null): string {
  if (share === null) return "-";
  const pct = (x: number) => (100 * x).toFixed(1);
  return `${pct(share)}%${ci ? ` [${pct(ci.lo)}, ${pct(ci.hi)}]` : ""}`;
}

/** How many draws make a suite median's interval (suiteMedianInterval); the dashboard quotes the number. */
export const SUITE_MEDIAN_DRAWS = 10_000;
