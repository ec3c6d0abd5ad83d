/**
 * Linear probes: L2-regularized logistic regression on frozen features, in float64 on the CPU, trained
 * to convergence (the openai weak-to-strong `linear_probe` option and the paper's saliency probes).
 * Features are standardized per dimension (mean 0, sd 1; constant dimensions are only centered); the
 * objective, over standardized features z_i and soft or hard targets t_i ∈ [0, 1], is
 *   J(w, b) = (1/n) Σ −[t_i log σ(w·z_i + b) + (1 − t_i) log(1 − σ(w·z_i + b))] + (λ/2)‖w‖²
 * (bias not regularized). Minimized by Newton's method with a backtracking line search (Cholesky on
 * the (d+1)² Hessian) up to NEWTON_MAX_DIM features, by L-BFGS above; both stop when the largest
 * gradient component is below the tolerance. The returned weights are mapped back to raw features.
 */

import type { Label } from "./metrics.ts";

export interface ProbeOptions {
  /** λ in the objective above; default 1/n (scikit-learn's C = 1 in mean form). */
  l2?: number;
  maxIterations?: number;
  /** Stop when max |∂J| ≤ tolerance. */
  tolerance?: number;
  method?: "auto" | "newton" | "lbfgs";
  /**
   * Fit p(−x) = 1 − p(x) exactly (comparisons: x is a feature difference, its sign the order of the
   * pair): every row is also used mirrored, (−x, 1 − t), so the fitted bias is 0.
   */
  antisymmetric?: boolean;
}

export interface LogisticProbe {
  /** Weights and bias on the raw (unstandardized) features: p = σ(weights·x + bias). */
  weights: Float64Array;
  bias: number;
  iterations: number;
  converged: boolean;
  /** max |∂J| at the returned point (standardized parametrization). */
  gradientMax: number;
  predictProba(features: readonly ArrayLike<number>[]): number[];
  predict(features: readonly ArrayLike<number>[]): Label[];
  accuracy(features: readonly ArrayLike<number>[], labels: readonly number[]): number;
}

const NEWTON_MAX_DIM = 256;

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** log(1 + e^x) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

class Objective {
  evaluations = 0;
  constructor(
    readonly z: Float64Array,
    readonly n: number,
    readonly d: number,
    readonly t: Float64Array,
    readonly l2: number,
  ) {}

  /** Logits for parameters theta = [w_0..w_{d−1}, b]. */
  logits(theta: Float64Array): Float64Array {
    const { z, n, d } = this;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = theta[d];
      const row = i * d;
      for (let j = 0; j < d; j++) s += theta[j] * z[row + j];
      out[i] = s;
    }
    return out;
  }

  /** J(theta); CE written as softplus(u) − t·u for stability. */
  value(theta: Float64Array): number {
    this.evaluations++;
    const u = this.logits(theta);
    let loss = 0;
    for (let i = 0; i < this.n; i++) loss += softplus(u[i]) - this.t[i] * u[i];
    let norm = 0;
    for (let j = 0; j < this.d; j++) norm += theta[j] * theta[j];
    return loss / this.n + 0.5 * this.l2 * norm;
  }

  gradient(theta: Float64Array, u = this.logits(theta)): Float64Array {
    const { z, n, d } = this;
    const g = new Float64Array(d + 1);
    for (let i = 0; i < n; i++) {
      const r = (sigmoid(u[i]) - this.t[i]) / n;
      const row = i * d;
      for (let j = 0; j < d; j++) g[j] += r * z[row + j];
      g[d] += r;
    }
    for (let j = 0; j < d; j++) g[j] += this.l2 * theta[j];
    return g;
  }

  /** Hessian (d+1)×(d+1), row-major. */
  hessian(u: Float64Array): Float64Array {
    const { z, n, d } = this;
    const m = d + 1;
    const h = new Float64Array(m * m);
    const x = new Float64Array(m);
    for (let i = 0; i < n; i++) {
      const s = sigmoid(u[i]);
      const weight = (s * (1 - s)) / n;
      if (weight === 0) continue;
      for (let j = 0; j < d; j++) x[j] = z[i * d + j];
      x[d] = 1;
      for (let a = 0; a < m; a++) {
        const wa = weight * x[a];
        if (wa === 0) continue;
        for (let b = 0; b <= a; b++) h[a * m + b] += wa * x[b];
      }
    }
    for (let a = 0; a < m; a++) for (let b = 0; b < a; b++) h[b * m + a] = h[a * m + b];
    for (let j = 0; j < d; j++) h[j * m + j] += this.l2;
    return h;
  }
}

function maxAbs(v: Float64Array): number {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Solves H x = g for symmetric positive (semi)definite H by Cholesky, with a tiny ridge if needed. */
function solveSpd(h: Float64Array, g: Float64Array): Float64Array {
  const m = g.length;
  for (let ridge = 0;; ridge = ridge === 0 ? 1e-12 : ridge * 100) {
    const l = new Float64Array(m * m);
    let ok = true;
    for (let i = 0; i < m && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let s = h[i * m + j] + (i === j ? ridge : 0);
        for (let k = 0; k < j; k++) s -= l[i * m + k] * l[j * m + k];
        if (i === j) {
          if (!(s > 0)) {
            ok = false;
            break;
          }
          l[i * m + i] = Math.sqrt(s);
        } else l[i * m + j] = s / l[j * m + j];
      }
    }
    if (!ok) {
      if (ridge > 1) throw new Error("probe: Hessian is not positive definite");
      continue;
    }
    const y = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = g[i];
      for (let k = 0; k < i; k++) s -= l[i * m + k] * y[k];
      y[i] = s / l[i * m + i];
    }
    const x = new Float64Array(m);
    for (let i = m - 1; i >= 0; i--) {
      let s = y[i];
      for (let k = i + 1; k < m; k++) s -= l[k * m + i] * x[k];
      x[i] = s / l[i * m + i];
    }
    return x;
  }
}

/** Backtracking (Armijo) step along `direction` from theta; returns the new point or null if none helps. */
function lineSearch(
  f: Objective,
  theta: Float64Array,
  value: number,
  gradient: Float64Array,
  direction: Float64Array,
): { theta: Float64Array; value: number } | null {
  const slope = dot(gradient, direction);
  if (!(slope < 0)) return null;
  for (let step = 1; step > 1e-20; step *= 0.5) {
    const next = theta.map((x, i) => x + step * direction[i]);
    const v = f.value(next);
    if (v <= value + 1e-4 * step * slope) return { theta: next, value: v };
  }
  return null;
}

function newton(f: Objective, maxIterations: number, tolerance: number) {
  let theta: Float64Array = new Float64Array(f.d + 1);
  let value = f.value(theta);
  let gradient: Float64Array = f.gradient(theta);
  let iterations = 0;
  while (iterations < maxIterations && maxAbs(gradient) > tolerance) {
    iterations++;
    const u = f.logits(theta);
    const direction = solveSpd(f.hessian(u), gradient).map((x) => -x);
    const moved = lineSearch(f, theta, value, gradient, direction);
    if (!moved) break;
    ({ theta, value } = moved);
    gradient = f.gradient(theta);
  }
  return { theta, gradient, iterations };
}

function lbfgs(f: Objective, maxIterations: number, tolerance: number, memory = 10) {
  let theta: Float64Array = new Float64Array(f.d + 1);
  let value = f.value(theta);
  let gradient: Float64Array = f.gradient(theta);
  const history: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  let iterations = 0;
  while (iterations < maxIterations && maxAbs(gradient) > tolerance) {
    iterations++;
    // Two-loop recursion: direction = −H_k · gradient.
    const q = gradient.slice();
    const alphas: number[] = [];
    for (let k = history.length - 1; k >= 0; k--) {
      const a = history[k].rho * dot(history[k].s, q);
      alphas[k] = a;
      for (let i = 0; i < q.length; i++) q[i] -= a * history[k].y[i];
    }
    if (history.length > 0) {
      const last = history[history.length - 1];
      const scale = dot(last.s, last.y) / dot(last.y, last.y);
      for (let i = 0; i < q.length; i++) q[i] *= scale;
    }
    for (let k = 0; k < history.length; k++) {
      const b = history[k].rho * dot(history[k].y, q);
      for (let i = 0; i < q.length; i++) q[i] += history[k].s[i] * (alphas[k] - b);
    }
    let moved = lineSearch(f, theta, value, gradient, q.map((x) => -x));
    if (!moved) {
      history.length = 0; // restart along the steepest descent direction
      moved = lineSearch(f, theta, value, gradient, gradient.map((x) => -x));
      if (!moved) break;
    }
    const nextGradient = f.gradient(moved.theta);
    const s = moved.theta.map((x, i) => x - theta[i]);
    const y = nextGradient.map((x, i) => x - gradient[i]);
    const sy = dot(s, y);
    if (sy > 1e-300) {
      history.push({ s, y, rho: 1 / sy });
      if (history.length > memory) history.shift();
    }
    ({ theta, value } = moved);
    gradient = nextGradient;
  }
  return { theta, gradient, iterations };
}

/** Trains a probe on rows of features and targets in [0, 1] (soft probabilities or hard 0/1 labels). */
export function trainLogisticProbe(
  features: readonly ArrayLike<number>[],
  targets: readonly number[],
  opts: ProbeOptions = {},
): LogisticProbe {
  if (targets.length !== features.length) {
    throw new Error(`probe: ${features.length} feature rows but ${targets.length} targets`);
  }
  if (opts.antisymmetric) {
    const mirrored = features.map((row) => Float64Array.from(row, (x) => -x));
    return trainLogisticProbe([...features, ...mirrored], [...targets, ...targets.map((t) => 1 - t)], {
      ...opts,
      // The mirrored rows repeat the data: the penalty stays that of n rows.
      l2: opts.l2 ?? 1 / Math.max(1, features.length),
      antisymmetric: false,
    });
  }
  const n = features.length;
  if (n === 0) throw new Error("probe: no training examples");
  const d = features[0].length;
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (features[i].length !== d) {
      throw new Error(`probe: row ${i} has ${features[i].length} features, row 0 has ${d}`);
    }
    if (!(targets[i] >= 0 && targets[i] <= 1)) {
      throw new Error(`probe: target ${i} is ${targets[i]}, not in [0, 1]`);
    }
    t[i] = targets[i];
  }
  const means = new Float64Array(d);
  const scales = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += features[i][j];
    means[j] = s / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (features[i][j] - means[j]) ** 2;
    const sd = Math.sqrt(v / n);
    if (!Number.isFinite(sd)) throw new Error(`probe: feature ${j} is not finite`);
    scales[j] = sd > 1e-12 ? sd : 1;
  }
  const z = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) z[i * d + j] = (features[i][j] - means[j]) / scales[j];
  }

  const l2 = opts.l2 ?? 1 / n;
  if (!(l2 >= 0)) throw new Error(`probe: l2 must be ≥ 0, got ${l2}`);
  const tolerance = opts.tolerance ?? 1e-9;
  const method = opts.method === "auto" || !opts.method
    ? (d <= NEWTON_MAX_DIM ? "newton" : "lbfgs")
    : opts.method;
  const objective = new Objective(z, n, d, t, l2);
  const { theta, gradient, iterations } = method === "newton"
    ? newton(objective, opts.maxIterations ?? 100, tolerance)
    : lbfgs(objective, opts.maxIterations ?? 2000, tolerance);

  const weights = new Float64Array(d);
  let bias = theta[d];
  for (let j = 0; j < d; j++) {
    weights[j] = theta[j] / scales[j];
    bias -= weights[j] * means[j];
  }
  const gradientMax = maxAbs(gradient);
  const predictProba = (rows: readonly ArrayLike<number>[]) =>
    rows.map((row) => {
      if (row.length !== d) throw new Error(`probe: expected ${d} features, got ${row.length}`);
      let s = bias;
      for (let j = 0; j < d; j++) s += weights[j] * row[j];
      return sigmoid(s);
    });
  const predict = (rows: readonly ArrayLike<number>[]) =>
    predictProba(rows).map((p): Label => (p > 0.5 ? 1 : 0));
  return {
    weights,
    bias,
    iterations,
    converged: gradientMax <= tolerance,
    gradientMax,
    predictProba,
    predict,
    accuracy(rows, labels) {
      if (labels.length !== rows.length) {
        throw new Error(`probe: ${rows.length} rows but ${labels.length} labels`);
      }
      const predictions = predict(rows);
      return predictions.filter((p, i) => p === labels[i]).length / rows.length;
    },
  };
}
