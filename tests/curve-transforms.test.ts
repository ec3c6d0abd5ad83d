/**
 * The curve controls' pure transforms and the overlay figure, against values computed by hand in the
 * comments: EMA smoothing (even and uneven spacing), the extremes-keeping downsampler, the mean with its
 * min–max band, the x axes, and the SVG's and CSV's coordinates.
 */
import assert from "node:assert/strict";
import {
  downsampleExtremes,
  emaSmooth,
  meanBand,
  medianSpacing,
  stepToX,
  type XY,
} from "../web/lib/curve-transforms.ts";
import { niceTicks, overlayCsv, type OverlayFigure, overlaySvg } from "../web/lib/overlay-figure.ts";

const xy = (xs: number[], ys: number[]): XY[] => xs.map((x, i) => ({ x, y: ys[i] }));
const close = (actual: number[], expected: number[]) => {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) < 1e-12, `[${i}] ${a} vs ${expected[i]}`));
};

Deno.test("EMA: debiased, so the first value is kept; evenly spaced points", () => {
  // smoothing 0.5: m = 0, .5, .75; w = .5, .75, .875 → s = 0, 2/3, 6/7.
  close(emaSmooth(xy([0, 1, 2], [0, 1, 1]), 0.5).map((p) => p.y), [0, 2 / 3, 6 / 7]);
  close(emaSmooth(xy([0, 1, 2], [3, 1, 2]), 0).map((p) => p.y), [3, 1, 2]);
});

Deno.test("EMA: a point twice as far away keeps the weight of two steps (time-weighted)", () => {
  // x 0, 1, 3 with spacing 1: β = .5, .5, .25 → m₂ = .5·.25 + .75 = .875, w₂ = .75·.25 + .75 = .9375.
  close(emaSmooth(xy([0, 1, 3], [0, 1, 1]), 0.5, 1).map((p) => p.y), [0, 2 / 3, 0.875 / 0.9375]);
  // The default spacing is the median gap: gaps 1, 2 → 1.5.
  assert.equal(medianSpacing(xy([0, 1, 3], [0, 0, 0])), 1.5);
  // A missing value passes through and does not enter the mean.
  const withGap = emaSmooth(xy([0, 1, 2], [0, NaN, 1]), 0.5, 1);
  assert.ok(Number.isNaN(withGap[1].y));
  // From x 0 to 2: β = .25 → m = .75, w = .5·.25 + .75 = .875.
  close([withGap[2].y], [0.75 / 0.875]);
  assert.throws(() => emaSmooth([], 1), /smoothing must be in \[0, 1\), got 1/);
});

Deno.test("downsampling keeps each bucket's lowest and highest point, and both ends", () => {
  const ys = [0, 3, -1, 2, 5, 1, 4, -2, 0, 1];
  const points = xy(ys.map((_, i) => i), ys);
  // Inner points 1..8 in two buckets: {3, −1, 2, 5} → x 2 (−1), x 4 (5); {1, 4, −2, 0} → x 6 (4), x 7 (−2).
  assert.deepEqual(downsampleExtremes(points, 6).map((p) => p.x), [0, 2, 4, 6, 7, 9]);
  assert.equal(downsampleExtremes(points, 10), points, "short curves are left as they are");
  assert.throws(() => downsampleExtremes(points, 3), /maxPoints must be ≥ 4/);
});

Deno.test("mean band: mean, min and max over the curves that have each x", () => {
  const band = meanBand([xy([0, 10], [1, 4]), xy([0, 10, 20], [3, 2, 5]), xy([10], [NaN])]);
  assert.deepEqual(band, [
    { x: 0, mean: 2, min: 1, max: 3, n: 2 },
    { x: 10, mean: 3, min: 2, max: 4, n: 2 },
    { x: 20, mean: 5, min: 5, max: 5, n: 1 },
  ]);
});

Deno.test("x axes: examples need a batch size, seconds the run's time and last step", () => {
  const pace = { batchSize: 32, seconds: 90, finalStep: 30 };
  assert.equal(stepToX(10, "step", pace), 10);
  assert.equal(stepToX(10, "examples", pace), 320);
  assert.equal(stepToX(10, "seconds", pace), 30);
  assert.equal(stepToX(10, "examples", { ...pace, batchSize: null }), null);
  assert.equal(stepToX(10, "seconds", { ...pace, seconds: null }), null);
});

Deno.test("overlay SVG: points land where the scales put them; CSV holds every drawn point", () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  const fig: OverlayFigure = {
    title: "test_acc",
    xLabel: "step",
    yLabel: "accuracy",
    logY: false,
    width: 400,
    height: 262,
    curves: [{ label: "a <b>", color: "#1f77b4", points: xy([0, 10], [0, 1]), raw: xy([0, 10], [0.5, 1]) }],
  };
  const svg = overlaySvg(fig);
  // x 0..10 → 64..384 (400 − 16); one legend row: plot bottom 262 − 44 − 18 = 200, top 28; y 0..1 → 200..28.
  assert.match(svg, /<polyline data-label="a &lt;b&gt;" points="64\.0,200\.0 384\.0,28\.0"/);
  assert.match(svg, /points="64\.0,114\.0 384\.0,28\.0" fill="none" stroke="#1f77b4" stroke-opacity="0\.25"/);
  // Log y: 1 and 100 are two decades, the top and bottom of the plot.
  const log = overlaySvg({
    ...fig,
    logY: true,
    curves: [{ ...fig.curves[0], raw: undefined, points: xy([0, 10], [1, 100]) }],
  });
  assert.match(log, /points="64\.0,200\.0 384\.0,28\.0"/);
  assert.equal(overlayCsv(fig), "curve,step,value,raw,min,max\na <b>,0,0,0.5,,\na <b>,10,1,1,,\n");
});
