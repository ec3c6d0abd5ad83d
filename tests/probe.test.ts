// Logistic-regression probe (server/lab/probe.ts) against closed-form optima and the stationarity condition.
import assert from "node:assert/strict";
import { trainLogisticProbe } from "../server/lab/probe.ts";

const logit = (p: number) => Math.log(p / (1 - p));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function close(actual: number, expected: number, tol: number, what = "") {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} ≠ ${expected} (tol ${tol})`);
}

/** Solves λw = σ(−w) for w > 0 by bisection: the optimum of the symmetric 1-D problem below. */
function symmetricOptimum(l2: number): number {
  let lo = 0;
  let hi = 100;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (l2 * mid - sigmoid(-mid) < 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

for (const method of ["newton", "lbfgs"] as const) {
  Deno.test(`${method}: separable 1-D data with L2 has the optimum λw = σ(−w)`, () => {
    // x = ±1 (already standardized), t = [x > 0]: by symmetry b = 0 and every gradient term is σ(w) − 1.
    const w = symmetricOptimum(0.1);
    const probe = trainLogisticProbe([[-1], [-1], [1], [1]], [0, 0, 1, 1], { l2: 0.1, method });
    assert.ok(probe.converged);
    close(probe.weights[0], w, 1e-7, "w");
    close(probe.bias, 0, 1e-7, "b");
    // Shifted raw features x = 1, 3 (mean 2, sd 1): same slope, bias −2w.
    const shifted = trainLogisticProbe([[1], [1], [3], [3]], [0, 0, 1, 1], { l2: 0.1, method });
    close(shifted.weights[0], w, 1e-7, "w shifted");
    close(shifted.bias, -2 * w, 1e-6, "b shifted");
    assert.equal(shifted.accuracy([[0], [4], [1.9], [2.1]], [0, 1, 0, 1]), 1);
  });

  Deno.test(`${method}: unregularized binary feature recovers the empirical log-odds`, () => {
    // x = 0: 3 positives of 4 → σ(b) = 3/4; x = 1: 1 of 4 → σ(b + w) = 1/4. So b = ln 3, w = −2 ln 3.
    const x = [[0], [0], [0], [0], [1], [1], [1], [1]];
    const t = [1, 1, 1, 0, 1, 0, 0, 0];
    const probe = trainLogisticProbe(x, t, { l2: 0, method });
    close(probe.bias, Math.log(3), 1e-7, "b");
    close(probe.weights[0], -2 * Math.log(3), 1e-7, "w");
  });

  Deno.test(`${method}: 2-D additive log-odds are recovered exactly`, () => {
    // Cells (x1, x2) with positive rates 1/2, 3/4, 1/4, 1/2 → logit = ln3·x1 − ln3·x2.
    const rows: number[][] = [];
    const targets: number[] = [];
    const cells: [number, number, number][] = [[0, 0, 2], [1, 0, 3], [0, 1, 1], [1, 1, 2]];
    for (const [x1, x2, positives] of cells) {
      for (let k = 0; k < 4; k++) {
        rows.push([x1, x2]);
        targets.push(k < positives ? 1 : 0);
      }
    }
    const probe = trainLogisticProbe(rows, targets, { l2: 0, method });
    close(probe.weights[0], Math.log(3), 1e-7, "w1");
    close(probe.weights[1], -Math.log(3), 1e-7, "w2");
    close(probe.bias, 0, 1e-7, "b");
    close(probe.predictProba([[1, 0]])[0], 0.75, 1e-8, "p(1,0)");
  });

  Deno.test(`${method}: soft targets give σ(b) = 0.3, σ(b + w) = 0.8`, () => {
    const probe = trainLogisticProbe([[0], [0], [1], [1]], [0.3, 0.3, 0.8, 0.8], { l2: 0, method });
    close(probe.bias, logit(0.3), 1e-7, "b");
    close(probe.weights[0], logit(0.8) - logit(0.3), 1e-7, "w");
  });
}

Deno.test("gradient of the standardized objective vanishes at the optimum (5-D, L2), both methods agree", () => {
  let state = 7;
  const random = () => (state = (state * 16807) % 2147483647) / 2147483647;
  const n = 200;
  const d = 5;
  const rows = Array.from({ length: n }, () => Array.from({ length: d }, () => random() * 4 - 1 + random()));
  const targets = rows.map((
    r,
  ) => (sigmoid(r[0] - 2 * r[1] + 0.5 * r[3] + (random() - 0.5) * 3) > 0.5 ? 1 : 0));
  const l2 = 0.05;
  const newton = trainLogisticProbe(rows, targets, { l2, method: "newton" });
  const lbfgs = trainLogisticProbe(rows, targets, { l2, method: "lbfgs" });
  for (let j = 0; j < d; j++) close(lbfgs.weights[j], newton.weights[j], 1e-6, `w${j}`);
  close(lbfgs.bias, newton.bias, 1e-6, "b");

  // Independent gradient: standardize here, map the raw weights back, and evaluate ∂J.
  const means = Array.from({ length: d }, (_, j) => rows.reduce((s, r) => s + r[j], 0) / n);
  const sds = means.map((m, j) => Math.sqrt(rows.reduce((s, r) => s + (r[j] - m) ** 2, 0) / n));
  const w = Array.from(newton.weights, (wj, j) => wj * sds[j]);
  const b = newton.bias + means.reduce((s, m, j) => s + newton.weights[j] * m, 0);
  const gradient = new Array(d + 1).fill(0);
  rows.forEach((r, i) => {
    const z = r.map((x, j) => (x - means[j]) / sds[j]);
    const residual = sigmoid(z.reduce((s, zj, j) => s + w[j] * zj, b)) - targets[i];
    z.forEach((zj, j) => (gradient[j] += (residual * zj) / n));
    gradient[d] += residual / n;
  });
  for (let j = 0; j < d; j++) gradient[j] += l2 * w[j];
  for (const g of gradient) close(g, 0, 1e-7, "gradient");
  assert.ok(newton.accuracy(rows, targets) > 0.7);
});

Deno.test("probe input errors name what is wrong", () => {
  assert.throws(() => trainLogisticProbe([], []), /no training examples/);
  assert.throws(() => trainLogisticProbe([[1], [2]], [1]), /2 feature rows but 1 targets/);
  assert.throws(() => trainLogisticProbe([[1], [2, 3]], [1, 0]), /row 1 has 2 features/);
  assert.throws(() => trainLogisticProbe([[1], [2]], [1, 2]), /target 1 is 2/);
  const probe = trainLogisticProbe([[0], [1]], [0, 1], { l2: 1 });
  assert.throws(() => probe.predict([[1, 2]]), /expected 1 features/);
});

Deno.test("antisymmetric probe (comparisons): p(−x) = 1 − p(x), bias 0, where the plain fit has a bias", () => {
  // Differences whose labels lean to 1 regardless of x: the plain fit puts that lean in its bias.
  const features = [[1], [2], [-1], [-2], [0.5], [-0.5], [1.5], [-1.5]];
  const targets = [1, 1, 1, 0, 1, 1, 1, 0];
  const plain = trainLogisticProbe(features, targets);
  const mirrored = trainLogisticProbe(features, targets, { antisymmetric: true });
  assert.ok(Math.abs(plain.bias) > 0.3, `plain bias ${plain.bias}`);
  assert.ok(Math.abs(mirrored.bias) < 1e-9, `antisymmetric bias ${mirrored.bias}`);
  for (const x of [0.3, 1, 2.5]) {
    const [p, q] = mirrored.predictProba([[x], [-x]]);
    assert.ok(Math.abs(p + q - 1) < 1e-12);
  }
  // Every x > 0 is labelled 1 and two of the four x < 0 are labelled 0: the slope is positive.
  assert.ok(mirrored.weights[0] > 0);
});
