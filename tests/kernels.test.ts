/**
 * The WGSL kernel families against float64 CPU references written here as plain loops, on small odd
 * shapes (ragged edges, tensors at unaligned offsets inside shared buffers), plus bit-identical
 * determinism of the reductions. Runs on whatever adapter getGpu() finds (llvmpipe in CI).
 */
import assert from "node:assert/strict";
import { getGpu, type Gpu } from "../kernels/device.ts";
import {
  checked,
  createTensor,
  type Dispatch,
  readTensor,
  slice,
  submit,
  type Tensor,
  writeTensor,
} from "../kernels/runtime.ts";
import { planAdd, planFill, planGeluBackward, planGeluForward } from "../kernels/ops/elementwise.ts";
import {
  planAttentionBackward,
  planAttentionBackwardV2,
  planAttentionForward,
  planAttentionForwardV2,
} from "../kernels/ops/attention.ts";
import { planAttentionBackwardV3, planAttentionForwardV3 } from "../kernels/ops/attention-flash.ts";
import {
  planClassCrossEntropy,
  planLmCrossEntropy,
  STAT_CORRECT,
  STAT_COUNT,
  STAT_GRAD_NORM_SQ,
  STAT_LOSS,
  STAT_NONFINITE,
} from "../kernels/ops/crossentropy.ts";
import { gradNormPartials, planAdamW, planGradNorm } from "../kernels/ops/optimizer.ts";
import { planLayernormBackward, planLayernormForward } from "../kernels/ops/layernorm.ts";
import {
  groupPositionsByToken,
  planEmbeddingBackward,
  planEmbeddingForward,
} from "../kernels/ops/embedding.ts";

// ---------- helpers ----------

/** Deterministic pseudo-random numbers in [-scale, scale). */
function randoms(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** A tensor at an unaligned offset inside a larger buffer, so kernels must honour `base`. */
function placed(gpu: Gpu, data: Float32Array | Int32Array, label: string, pad = 37): Tensor {
  const whole = createTensor(gpu, pad + data.length + 5, label + " buffer");
  const t = slice(whole, pad, data.length, label);
  writeTensor(gpu, t, data);
  return t;
}

async function run(gpu: Gpu, dispatches: Dispatch | Dispatch[]): Promise<void> {
  await checked(gpu, () => submit(gpu, Array.isArray(dispatches) ? dispatches : [dispatches]));
}

function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

/** Asserts |got − want| ≤ atol + rtol·|want| everywhere; the message reports max abs and rel error. */
function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  what: string,
  atol = 1e-5,
  rtol = 1e-4,
): { maxAbs: number; maxRel: number } {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  let maxAbs = 0, maxRel = 0, worst = -1, worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= atol + rtol * Math.abs(want[i]))) {
      const excess = Number.isNaN(err) ? Infinity : err - atol - rtol * Math.abs(want[i]);
      if (worst < 0 || excess > worstExcess) [worst, worstExcess] = [i, excess];
    }
    if (Number.isNaN(err)) maxAbs = NaN;
    else maxAbs = Math.max(maxAbs, err);
    maxRel = Math.max(maxRel, err / Math.max(Math.abs(want[i]), 1e-12));
  }
  const summary = `${what}: max abs err ${maxAbs.toExponential(2)}, max rel err ${maxRel.toExponential(2)}`;
  assert.ok(worst < 0, `${summary}; worst at [${worst}]: got ${got[worst]}, want ${want[worst]}`);
  // The report keeps the worst error per kernel over all shapes.
  const kernel = what.replace(/ [A-Za-z]+=[\d.e+-]+/g, "");
  const prev = errorLog.get(kernel) ?? { maxAbs: 0, maxRel: 0 };
  errorLog.set(kernel, { maxAbs: Math.max(prev.maxAbs, maxAbs), maxRel: Math.max(prev.maxRel, maxRel) });
  return { maxAbs, maxRel };
}

function assertBitIdentical(a: Float32Array, b: Float32Array, what: string): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    assert.equal(ua[i], ub[i], `${what}: run 1 and run 2 differ at [${i}]: ${a[i]} vs ${b[i]}`);
  }
}

const errorLog = new Map<string, { maxAbs: number; maxRel: number }>();
const SHAPES = [1, 7, 33, 130];

// ---------- elementwise ----------

function geluRef(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

function geluGradRef(x: number): number {
  const s = Math.sqrt(2 / Math.PI);
  const t = Math.tanh(s * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * s * (1 + 3 * 0.044715 * x * x);
}

Deno.test("fill, add (separate and in place), gelu forward/backward on odd sizes", async () => {
  const gpu = await getGpu();
  for (const n of SHAPES) {
    const a = randoms(n, n, 3);
    const b = randoms(n, n + 100, 3);
    // Extreme inputs check the tanh clamp (no NaN) at the largest size.
    if (n === 130) a.set([60, -60, 1e4, -1e4, 0], 0);

    const t = placed(gpu, randoms(n, 1), "fill");
    await run(gpu, planFill(gpu, t, 2.5, "fill"));
    assertClose(await readTensor(gpu, t), new Float64Array(n).fill(2.5), `fill n=${n}`, 0, 0);

    const ta = placed(gpu, a, "a"), tb = placed(gpu, b, "b"), out = placed(gpu, new Float32Array(n), "out");
    await run(gpu, planAdd(gpu, out, ta, tb, n, "add"));
    const sum = toF64(a).map((x, i) => x + b[i]);
    assertClose(await readTensor(gpu, out), sum, `add n=${n}`, 1e-6, 1e-6);
    // In place: out is a.
    await run(gpu, planAdd(gpu, ta, ta, tb, n, "add in place"));
    assertClose(await readTensor(gpu, ta), sum, `add in place n=${n}`, 1e-6, 1e-6);
    // Out and a in one buffer at different offsets (one read_write binding, two offsets).
    const shared = createTensor(gpu, 3 * n + 11, "shared");
    const sa = slice(shared, 3, n, "sa"), sout = slice(shared, n + 9, n, "sout");
    writeTensor(gpu, sa, a);
    await run(gpu, planAdd(gpu, sout, sa, tb, n, "add shared buffer"));
    assertClose(await readTensor(gpu, sout), sum, `add shared buffer n=${n}`, 1e-6, 1e-6);

    const x = placed(gpu, a, "x"), y = placed(gpu, new Float32Array(n), "y");
    await run(gpu, planGeluForward(gpu, x, y, n, "gelu"));
    assertClose(await readTensor(gpu, y), toF64(a).map(geluRef), `gelu forward n=${n}`, 1e-5, 1e-4);
    const dy = placed(gpu, b, "dy"), dx = placed(gpu, randoms(n, 9), "dx");
    await run(gpu, planGeluBackward(gpu, x, dy, dx, n, "gelu backward"));
    const want = toF64(a).map((v, i) => b[i] * geluGradRef(v));
    assertClose(await readTensor(gpu, dx), want, `gelu backward n=${n}`, 1e-5, 1e-4);
  }
});

// ---------- embedding ----------

Deno.test("groupPositionsByToken groups positions by ascending token id with padding", () => {
  const g = groupPositionsByToken(Int32Array.from([5, 2, 5, 0, 2, 5]), 4);
  assert.deepEqual([...g.unique], [0, 2, 5, -1]);
  assert.deepEqual([...g.starts], [0, 1, 3, 6, 6]);
  assert.deepEqual([...g.positions], [3, 1, 4, 0, 2, 5]);
  assert.throws(() => groupPositionsByToken(Int32Array.from([1, 2, 3]), 2), /maxUnique/);
  assert.throws(() => groupPositionsByToken(Int32Array.from([1, -2]), 2), /position 1/);
});

Deno.test("embedding forward and deterministic backward (accumulate and overwrite) on odd shapes", async () => {
  const gpu = await getGpu();
  for (const [B, T, C, V] of [[1, 1, 1, 1], [3, 5, 7, 11], [2, 33, 9, 4], [4, 3, 130, 50]]) {
    const N = B * T;
    const tokens = Int32Array.from({ length: N }, (_, i) => (i * 7 + (i >> 1) * 3) % V);
    // wte and wpe inside one flat "params" buffer; dwte and dwpe inside one flat "grads" buffer.
    const wteOff = 3, wpeOff = wteOff + V * C + 5;
    const flat = randoms(wpeOff + T * C + 2, B * 1000 + C);
    const params = placed(gpu, flat, "params", 0);
    const wte = slice(params, wteOff, V * C, "wte"), wpe = slice(params, wpeOff, T * C, "wpe");
    const tokT = placed(gpu, tokens, "tokens");
    const out = placed(gpu, new Float32Array(N * C), "out");
    await run(gpu, planEmbeddingForward(gpu, { tokens: tokT, wte, wpe, out, B, T, C, label: "emb" }));
    const want = new Float64Array(N * C);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        want[n * C + c] = flat[wteOff + tokens[n] * C + c] + flat[wpeOff + (n % T) * C + c];
      }
    }
    assertClose(await readTensor(gpu, out), want, `embedding forward B=${B} T=${T} C=${C}`, 1e-6, 1e-6);

    const dx = randoms(N * C, 77 + C);
    const maxUnique = Math.min(V, N);
    const groups = groupPositionsByToken(tokens, maxUnique);
    const dxT = placed(gpu, dx, "dx");
    const uniqueT = placed(gpu, groups.unique, "unique");
    const startsT = placed(gpu, groups.starts, "starts");
    const positionsT = placed(gpu, groups.positions, "positions");
    const gradsInit = randoms(flat.length, 5);
    for (const accumulate of [true, false]) {
      const grads = placed(gpu, gradsInit, "grads");
      const dispatches = planEmbeddingBackward(gpu, {
        dx: dxT,
        unique: uniqueT,
        starts: startsT,
        positions: positionsT,
        grads,
        wteOffset: wteOff,
        wpeOffset: wpeOff,
        B,
        T,
        C,
        maxUnique,
        accumulate,
        label: "emb backward",
      });
      await run(gpu, dispatches);
      const ref = toF64(gradsInit);
      const present = new Set(tokens);
      for (const v of present) for (let c = 0; c < C; c++) if (!accumulate) ref[wteOff + v * C + c] = 0;
      for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) if (!accumulate) ref[wpeOff + t * C + c] = 0;
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          ref[wteOff + tokens[n] * C + c] += dx[n * C + c];
          ref[wpeOff + (n % T) * C + c] += dx[n * C + c];
        }
      }
      const got = await readTensor(gpu, grads);
      assertClose(got, ref, `embedding backward accumulate=${accumulate} B=${B} T=${T} C=${C}`, 1e-5, 1e-5);
      if (accumulate) {
        await run(gpu, dispatches.map((d) => d)); // second accumulation must equal 2× the sums
        const again = await readTensor(gpu, grads);
        const twice = ref.map((r, i) => r + (r - gradsInit[i]));
        assertClose(again, twice, `embedding backward twice B=${B} T=${T} C=${C}`, 1e-5, 1e-5);
      }
    }
  }
});

Deno.test("embedding forward writes NaN for an out-of-range token id instead of reading out of bounds", async () => {
  const gpu = await getGpu();
  const C = 3, V = 4;
  const wte = placed(gpu, randoms(V * C, 1), "wte"), wpe = placed(gpu, randoms(2 * C, 2), "wpe");
  const out = placed(gpu, new Float32Array(2 * C), "out");
  const tokens = placed(gpu, Int32Array.from([1, 4]), "tokens");
  await run(gpu, planEmbeddingForward(gpu, { tokens, wte, wpe, out, B: 1, T: 2, C, label: "emb bad id" }));
  const got = await readTensor(gpu, out);
  assert.ok(got.slice(0, C).every(Number.isFinite), "valid token row must be finite");
  assert.ok(got.slice(C).every(Number.isNaN), `row of id 4 ≥ V must be NaN, got ${[...got.slice(C)]}`);
});

// ---------- layernorm ----------

function layernormRef(x: Float32Array, gamma: Float32Array, beta: Float32Array, N: number, C: number) {
  const y = new Float64Array(N * C), mean = new Float64Array(N), rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[n * C + c];
    const m = s / C;
    let q = 0;
    for (let c = 0; c < C; c++) q += (x[n * C + c] - m) ** 2;
    const r = 1 / Math.sqrt(q / C + 1e-5);
    for (let c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - m) * r * gamma[c] + beta[c];
    mean[n] = m;
    rstd[n] = r;
  }
  return { y, mean, rstd };
}

/** dx, dgamma, dbeta of y = layernorm(x) for upstream dy, from the definition (float64). */
function layernormBackwardRef(dy: Float32Array, x: Float32Array, gamma: Float32Array, N: number, C: number) {
  const { mean, rstd } = layernormRef(x, gamma, new Float32Array(C), N, C);
  const dx = new Float64Array(N * C), dgamma = new Float64Array(C), dbeta = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    let sg = 0, sgx = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (x[n * C + c] - mean[n]) * rstd[n];
      const g = dy[n * C + c] * gamma[c];
      sg += g;
      sgx += g * xhat;
      dgamma[c] += dy[n * C + c] * xhat;
      dbeta[c] += dy[n * C + c];
    }
    for (let c = 0; c < C; c++) {
      const xhat = (x[n * C + c] - mean[n]) * rstd[n];
      dx[n * C + c] = rstd[n] * (dy[n * C + c] * gamma[c] - sg / C - xhat * sgx / C);
    }
  }
  return { dx, dgamma, dbeta };
}

Deno.test("layernorm forward and backward on odd shapes; column sums deterministic", async () => {
  const gpu = await getGpu();
  for (const [N, C] of [[1, 1], [7, 33], [33, 7], [130, 130], [3, 300]]) {
    const x = randoms(N * C, N + C);
    for (let i = 0; i < x.length; i++) x[i] += 0.7 * ((i % C) / C); // a non-zero row mean
    const gOff = 5, bOff = 5 + C + 3;
    const flat = randoms(bOff + C + 4, 3 * C);
    const gamma = flat.slice(gOff, gOff + C), beta = flat.slice(bOff, bOff + C);
    const params = placed(gpu, flat, "params");
    const xT = placed(gpu, x, "x"), yT = placed(gpu, new Float32Array(N * C), "y");
    const meanT = placed(gpu, new Float32Array(N), "mean"), rstdT = placed(gpu, new Float32Array(N), "rstd");
    await run(
      gpu,
      planLayernormForward(gpu, {
        x: xT,
        params,
        gammaOffset: gOff,
        betaOffset: bOff,
        y: yT,
        mean: meanT,
        rstd: rstdT,
        N,
        C,
        label: "ln",
      }),
    );
    const ref = layernormRef(x, gamma, beta, N, C);
    const shape = `N=${N} C=${C}`;
    assertClose(await readTensor(gpu, yT), ref.y, `layernorm forward y ${shape}`, 1e-5, 1e-4);
    assertClose(await readTensor(gpu, meanT), ref.mean, `layernorm forward mean ${shape}`, 1e-6, 1e-5);
    assertClose(await readTensor(gpu, rstdT), ref.rstd, `layernorm forward rstd ${shape}`, 1e-5, 1e-4);

    // Fused residual: x = stream + branch is written (the f32 sum, exactly) and normalized.
    const stream = randoms(N * C, 2 * N + C), branch = x.map((v, i) => v - stream[i]);
    const sum = stream.map((v, i) => Math.fround(v + branch[i]));
    for (const version of ["v1", "v2"] as const) {
      const xOut = placed(gpu, new Float32Array(N * C), "x out");
      const yFused = placed(gpu, new Float32Array(N * C), "y fused");
      await run(
        gpu,
        planLayernormForward(gpu, {
          x: xOut,
          residual: { stream: placed(gpu, stream, "stream"), branch: placed(gpu, branch, "branch") },
          params,
          gammaOffset: gOff,
          betaOffset: bOff,
          // Its own outputs: the backward below needs the plain run's mean and rstd.
          y: yFused,
          mean: placed(gpu, new Float32Array(N), "mean fused"),
          rstd: placed(gpu, new Float32Array(N), "rstd fused"),
          N,
          C,
          label: "ln fused",
          version,
        }),
      );
      assert.deepEqual(
        await readTensor(gpu, xOut),
        sum,
        `fused residual x = stream + branch ${version} ${shape}`,
      );
      const fusedRef = layernormRef(sum, gamma, beta, N, C);
      assertClose(
        await readTensor(gpu, yFused),
        fusedRef.y,
        `fused layernorm y ${version} ${shape}`,
        1e-5,
        1e-4,
      );
    }

    const dy = randoms(N * C, 11 * N);
    const dxInit = randoms(N * C, 12);
    const gradsInit = randoms(2 * C + 20, 13);
    const dgOff = 2, dbOff = C + 9;
    const back = layernormBackwardRef(dy, x, gamma, N, C);
    for (const accumulateDx of [false, true]) {
      const dyT = placed(gpu, dy, "dy"),
        dxT = placed(gpu, dxInit, "dx"),
        grads = placed(gpu, gradsInit, "grads");
      const dispatches = planLayernormBackward(gpu, {
        dy: dyT,
        x: xT,
        mean: meanT,
        rstd: rstdT,
        params,
        gammaOffset: gOff,
        dx: dxT,
        accumulateDx,
        grads,
        dgammaOffset: dgOff,
        dbetaOffset: dbOff,
        N,
        C,
        label: "ln backward",
      });
      await run(gpu, dispatches);
      const wantDx = back.dx.map((d, i) => accumulateDx ? d + dxInit[i] : d);
      // dx cancels large terms (g − mean(g) − xhat·mean(g·xhat)): compare on the scale of rstd·|g|.
      assertClose(
        await readTensor(gpu, dxT),
        wantDx,
        `layernorm backward dx acc=${accumulateDx} ${shape}`,
        2e-5,
        1e-4,
      );
      const wantGrads = toF64(gradsInit);
      for (let c = 0; c < C; c++) {
        wantGrads[dgOff + c] += back.dgamma[c];
        wantGrads[dbOff + c] += back.dbeta[c];
      }
      const got = await readTensor(gpu, grads);
      assertClose(got, wantGrads, `layernorm backward dgamma/dbeta ${shape}`, 1e-5, 1e-4);
      if (accumulateDx) {
        await run(gpu, planFill(gpu, grads, 0, "zero"));
        await run(gpu, dispatches);
        const first = await readTensor(gpu, grads);
        await run(gpu, planFill(gpu, grads, 0, "zero"));
        await run(gpu, dispatches);
        assertBitIdentical(first, await readTensor(gpu, grads), `layernorm dgamma/dbeta ${shape}`);
      }
    }
  }
});

// ---------- attention ----------

interface AttnShape {
  B: number;
  T: number;
  C: number;
  H: number;
  lengths: number[];
}

function attentionRef(qkv: ArrayLike<number>, s: AttnShape) {
  const { B, T, C, H } = s, hs = C / H, scale = 1 / Math.sqrt(hs);
  const out = new Float64Array(B * T * C), probs = new Float64Array(B * H * T * T);
  // Log-sum-exp of each row's allowed scores (NaN for a row with no allowed key).
  const lse = new Float64Array(B * H * T).fill(NaN);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const keys = Math.min(i + 1, Math.max(0, Math.min(T, s.lengths[b])));
        const p = probs.subarray(((b * H + h) * T + i) * T, ((b * H + h) * T + i + 1) * T);
        let max = -Infinity;
        for (let j = 0; j < keys; j++) {
          let dot = 0;
          for (let d = 0; d < hs; d++) {
            dot += qkv[(b * T + i) * 3 * C + h * hs + d] * qkv[(b * T + j) * 3 * C + C + h * hs + d];
          }
          p[j] = dot * scale;
          max = Math.max(max, p[j]);
        }
        let sum = 0;
        for (let j = 0; j < keys; j++) sum += p[j] = Math.exp(p[j] - max);
        if (keys > 0) lse[(b * H + h) * T + i] = max + Math.log(sum);
        for (let j = 0; j < keys; j++) p[j] /= sum;
        for (let d = 0; d < hs; d++) {
          let acc = 0;
          for (let j = 0; j < keys; j++) acc += p[j] * qkv[(b * T + j) * 3 * C + 2 * C + h * hs + d];
          out[(b * T + i) * C + h * hs + d] = acc;
        }
      }
    }
  }
  return { out, probs, lse };
}

/** Gradient of Σ out·dout w.r.t. qkv by the chain rule through scores S and softmax P (float64). */
function attentionBackwardRef(qkv: ArrayLike<number>, dout: ArrayLike<number>, s: AttnShape): Float64Array {
  const { B, T, C, H } = s, hs = C / H, scale = 1 / Math.sqrt(hs);
  const { probs } = attentionRef(qkv, s);
  const dqkv = new Float64Array(B * T * 3 * C);
  const at = (b: number, t: number, part: number, h: number, d: number) =>
    (b * T + t) * 3 * C + part * C + h * hs + d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const p = probs.subarray(((b * H + h) * T + i) * T);
        const dP = new Float64Array(T);
        for (let j = 0; j < T; j++) {
          if (p[j] === 0) continue;
          for (let d = 0; d < hs; d++) {
            dP[j] += dout[(b * T + i) * C + h * hs + d] * qkv[at(b, j, 2, h, d)];
            dqkv[at(b, j, 2, h, d)] += p[j] * dout[(b * T + i) * C + h * hs + d];
          }
        }
        // Softmax Jacobian: dS_j = Σ_k dP_k P_k (δ_jk − P_j).
        for (let j = 0; j < T; j++) {
          let dS = 0;
          for (let k = 0; k < T; k++) dS += dP[k] * p[k] * ((j === k ? 1 : 0) - p[j]);
          for (let d = 0; d < hs; d++) {
            dqkv[at(b, i, 0, h, d)] += dS * scale * qkv[at(b, j, 1, h, d)];
            dqkv[at(b, j, 1, h, d)] += dS * scale * qkv[at(b, i, 0, h, d)];
          }
        }
      }
    }
  }
  return dqkv;
}

Deno.test("attention CPU reference backward matches central finite differences", () => {
  const shape: AttnShape = { B: 2, T: 3, C: 4, H: 2, lengths: [3, 2] };
  const qkv = toF64(randoms(2 * 3 * 12, 3, 1.5));
  const dout = toF64(randoms(2 * 3 * 4, 4));
  const grad = attentionBackwardRef(qkv, dout, shape);
  const loss = (x: Float64Array) => attentionRef(x, shape).out.reduce((acc, o, i) => acc + o * dout[i], 0);
  const fd = new Float64Array(qkv.length);
  for (let i = 0; i < qkv.length; i++) {
    const plus = qkv.slice(), minus = qkv.slice();
    plus[i] += 1e-6;
    minus[i] -= 1e-6;
    fd[i] = (loss(plus) - loss(minus)) / 2e-6;
  }
  assertClose(grad, fd, "attention reference vs finite differences", 1e-7, 1e-6);
});

const ATTENTION_SHAPES: AttnShape[] = [
  { B: 1, T: 1, C: 1, H: 1, lengths: [1] },
  { B: 3, T: 5, C: 8, H: 2, lengths: [5, 2, 0] },
  { B: 2, T: 7, C: 9, H: 3, lengths: [7, 4] },
  { B: 2, T: 33, C: 6, H: 1, lengths: [33, 17] },
  { B: 1, T: 13, C: 130, H: 5, lengths: [9] },
];

for (const version of ["v1", "v2"] as const) {
  Deno.test(`attention ${version} forward/backward with padding (incl. a length-0 row) on odd shapes; deterministic`, async () => {
    const gpu = await getGpu();
    const forward = version === "v1"
      ? (s: Parameters<typeof planAttentionForward>[1]) => [planAttentionForward(gpu, s)]
      : (s: Parameters<typeof planAttentionForward>[1]) => planAttentionForwardV2(gpu, s);
    const backward = version === "v1" ? planAttentionBackward : planAttentionBackwardV2;
    for (const shape of ATTENTION_SHAPES) {
      const { B, T, C, H } = shape, N = B * T;
      const qkv = randoms(N * 3 * C, N + C, 1.2);
      const dout = randoms(N * C, 2 * N + C);
      const qkvT = placed(gpu, qkv, "qkv");
      const lengths = placed(gpu, Int32Array.from(shape.lengths), "lengths");
      const out = placed(gpu, randoms(N * C, 1), "out");
      const probs = placed(gpu, randoms(B * H * T * T, 2), "probs");
      await run(gpu, forward({ qkv: qkvT, lengths, out, probs, B, T, C, H, label: "attn" }));
      const ref = attentionRef(qkv, shape);
      const tag = `B=${B} T=${T} C=${C} H=${H}`;
      assertClose(await readTensor(gpu, out), ref.out, `attention forward out ${tag}`, 1e-5, 1e-4);
      // Masked probabilities must be exactly 0 (absolute tolerance 0 where the reference is 0).
      const gotProbs = await readTensor(gpu, probs);
      ref.probs.forEach((p, i) => {
        if (p === 0) assert.equal(gotProbs[i], 0, `attention probs [${i}] must be exactly 0 (masked) ${tag}`);
      });
      assertClose(gotProbs, ref.probs, `attention forward probs ${tag}`, 1e-6, 1e-4);

      const doutT = placed(gpu, dout, "dout");
      const dqkv = placed(gpu, randoms(N * 3 * C, 5), "dqkv"); // garbage: must be overwritten
      const back = backward(gpu, {
        dout: doutT,
        qkv: qkvT,
        probs,
        lengths,
        dqkv,
        B,
        T,
        C,
        H,
        label: "attn bw",
      });
      await run(gpu, back);
      const first = await readTensor(gpu, dqkv);
      assertClose(
        first,
        attentionBackwardRef(qkv, dout, shape),
        `attention backward dqkv ${tag}`,
        1e-5,
        1e-4,
      );
      await run(gpu, back);
      assertBitIdentical(first, await readTensor(gpu, dqkv), `attention backward ${tag}`);
    }
  });
}

// v3 (flash) saves lse instead of probs: checked against the reference's log-sum-exp; head sizes up
// to 128 (the largest it supports), several tilings incl. partial last blocks, and both the scalar
// path (tensors at odd offsets, pad 37) and the vec4 path (offsets, C and hs multiples of 4, pad 40).
interface FlashCase {
  shape: AttnShape;
  tiling?: { lanes?: number; rowsPerLane?: number };
  pad?: number;
}
const FLASH_CASES: FlashCase[] = [
  ...ATTENTION_SHAPES.slice(0, 4).map((shape) => ({ shape })),
  { shape: ATTENTION_SHAPES[4], tiling: { rowsPerLane: 1 } }, // hs 26 (one row per lane keeps compiles short)
  { shape: { B: 2, T: 37, C: 128, H: 2, lengths: [37, 20] }, pad: 40 },
  { shape: { B: 3, T: 21, C: 24, H: 3, lengths: [21, 0, 9] }, pad: 40 },
  { shape: { B: 3, T: 21, C: 24, H: 3, lengths: [21, 0, 9] }, pad: 40, tiling: { lanes: 4, rowsPerLane: 3 } },
  { shape: { B: 2, T: 11, C: 256, H: 2, lengths: [0, 10] }, pad: 40, tiling: { lanes: 4 } },
  { shape: { B: 3, T: 9, C: 8, H: 2, lengths: [9, 3, 1] }, tiling: { lanes: 1, rowsPerLane: 1 } },
  { shape: { B: 2, T: 70, C: 12, H: 3, lengths: [70, 65] }, tiling: { lanes: 64, rowsPerLane: 2 } },
];

Deno.test("attention v3 (flash) forward out and lse, backward dqkv with padding (incl. a length-0 row) on odd shapes; deterministic", async () => {
  const gpu = await getGpu();
  for (const { shape, tiling, pad = 37 } of FLASH_CASES) {
    const { B, T, C, H } = shape, N = B * T;
    const qkv = randoms(N * 3 * C, N + C, 1.2);
    const dout = randoms(N * C, 2 * N + C);
    const qkvT = placed(gpu, qkv, "qkv", pad);
    const lengths = placed(gpu, Int32Array.from(shape.lengths), "lengths");
    const out = placed(gpu, randoms(N * C, 1), "out", pad); // garbage: must be overwritten
    const lse = placed(gpu, randoms(B * H * T, 2), "lse");
    const common = { lengths, B, T, C, H, ...tiling };
    const forward = planAttentionForwardV3(gpu, { ...common, qkv: qkvT, out, lse, label: "attn v3" });
    await run(gpu, forward);
    const ref = attentionRef(qkv, shape);
    const tag = `B=${B} T=${T} C=${C} H=${H} pad ${pad} tiling ${JSON.stringify(tiling ?? "default")}`;
    const gotOut = await readTensor(gpu, out);
    assertClose(gotOut, ref.out, `attention v3 forward out ${tag}`, 1e-5, 1e-4);
    const gotLse = await readTensor(gpu, lse);
    ref.lse.forEach((want, r) => {
      // A row with no allowed key saves FLT_MAX, which makes every recomputed probability 0.
      if (Number.isNaN(want)) {
        assert.equal(gotLse[r], 3.4028234663852886e38, `lse [${r}] of an empty row ${tag}`);
      }
    });
    assertClose(
      gotLse.filter((_, r) => !Number.isNaN(ref.lse[r])),
      ref.lse.filter((v) => !Number.isNaN(v)),
      `attention v3 lse ${tag}`,
      1e-5,
      1e-5,
    );
    await run(gpu, forward);
    assertBitIdentical(gotOut, await readTensor(gpu, out), `attention v3 forward ${tag}`);

    const doutT = placed(gpu, dout, "dout", pad);
    const dqkv = placed(gpu, randoms(N * 3 * C, 5), "dqkv"); // garbage: must be overwritten
    const back = planAttentionBackwardV3(gpu, {
      ...common,
      dout: doutT,
      qkv: qkvT,
      out,
      lse,
      dqkv,
      label: "attn v3 bw",
    });
    await run(gpu, back);
    const first = await readTensor(gpu, dqkv);
    assertClose(
      first,
      attentionBackwardRef(qkv, dout, shape),
      `attention v3 backward dqkv ${tag}`,
      1e-5,
      1e-4,
    );
    await run(gpu, back);
    assertBitIdentical(first, await readTensor(gpu, dqkv), `attention v3 backward ${tag}`);
  }
});

Deno.test("attention v3 rejects a head size above 128 and a bad tiling by name", async () => {
  const gpu = await getGpu();
  const t = (n: number) => createTensor(gpu, n, "t");
  const spec = { qkv: t(3 * 258), lengths: t(1), out: t(258), lse: t(1), B: 1, T: 1, C: 258, H: 1 };
  assert.throws(() => planAttentionForwardV3(gpu, { ...spec, label: "wide" }), /wide: head size 258/);
  assert.throws(
    () => planAttentionForwardV3(gpu, { ...spec, C: 8, label: "odd", lanes: 12 }),
    /odd: lanes must be a power of two/,
  );
});

// ---------- cross-entropy ----------

function lmCrossEntropyRef(logits: Float32Array, targets: number[], V: number) {
  const rows = targets.length;
  const count = targets.filter((t) => t >= 0).length;
  const grad = new Float64Array(rows * V), rowLoss = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (targets[r] < 0) continue;
    const x = logits.subarray(r * V, (r + 1) * V);
    const max = Math.max(...x);
    const sum = x.reduce((acc, v) => acc + Math.exp(v - max), 0);
    rowLoss[r] = max + Math.log(sum) - x[targets[r]];
    for (let v = 0; v < V; v++) {
      grad[r * V + v] = (Math.exp(x[v] - max) / sum - (v === targets[r] ? 1 : 0)) / count;
    }
  }
  const loss = count > 0 ? rowLoss.reduce((a, b) => a + b, 0) / count : 0;
  return { grad, rowLoss, loss, count };
}

Deno.test("LM cross-entropy with ignored rows on odd shapes; deterministic; out-of-range target flagged", async () => {
  const gpu = await getGpu();
  const cases: [number, number][] = [[1, 1], [7, 130], [33, 7], [5, 300], [3, 11]];
  for (const [rows, V] of cases) {
    const logits = randoms(rows * V, rows * V, 4);
    // Every third row ignored; the last case ignores all rows (loss 0, no NaN).
    const targets = Array.from({ length: rows }, (_, r) => (r % 3 === 2 || V === 11) ? -1 : (r * 5 + 1) % V);
    const ref = lmCrossEntropyRef(logits, targets, V);
    const tag = `rows=${rows} V=${V}`;
    let firstStats: Float32Array | undefined, firstGrad: Float32Array | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const logitsT = placed(gpu, logits, "logits");
      const targetsT = placed(gpu, Int32Array.from(targets), "targets");
      const rowLoss = placed(gpu, new Float32Array(rows), "rowLoss");
      const stats = placed(gpu, Float32Array.from([9, 9, 0.5, 0, 9, 0, 0, 0]), "stats");
      await run(
        gpu,
        planLmCrossEntropy(gpu, { logits: logitsT, targets: targetsT, rowLoss, stats, rows, V, label: "ce" }),
      );
      const grad = await readTensor(gpu, logitsT), st = await readTensor(gpu, stats);
      if (attempt === 0) {
        assertClose(grad, ref.grad, `LM CE dlogits ${tag}`, 1e-7, 1e-4);
        assertClose(await readTensor(gpu, rowLoss), ref.rowLoss, `LM CE row loss ${tag}`, 1e-5, 1e-5);
        assertClose([st[STAT_LOSS]], [ref.loss], `LM CE loss ${tag}`, 1e-6, 1e-5);
        assert.equal(st[STAT_COUNT], ref.count, `LM CE count ${tag}`);
        assert.equal(st[STAT_NONFINITE], 0, `LM CE nonfinite flag ${tag}`);
        assert.equal(st[STAT_GRAD_NORM_SQ], 0.5, `LM CE must not touch other stats ${tag}`);
        [firstStats, firstGrad] = [st, grad];
      } else {
        assertBitIdentical(firstStats!, st, `LM CE stats ${tag}`);
        assertBitIdentical(firstGrad!, grad, `LM CE dlogits ${tag}`);
      }
    }
  }
  // A target id ≥ V: counted, flagged non-finite, and the other rows' gradients stay finite.
  const V = 5, rows = 3;
  const logitsT = placed(gpu, randoms(rows * V, 1), "logits");
  const stats = placed(gpu, new Float32Array(8), "stats");
  const rowLoss = placed(gpu, new Float32Array(rows), "rowLoss");
  const targetsT = placed(gpu, Int32Array.from([1, 5, -1]), "targets");
  await run(
    gpu,
    planLmCrossEntropy(gpu, { logits: logitsT, targets: targetsT, rowLoss, stats, rows, V, label: "ce bad" }),
  );
  const st = await readTensor(gpu, stats);
  assert.equal(st[STAT_NONFINITE], 1, "target 5 with V = 5 must set the non-finite flag");
  assert.equal(st[STAT_COUNT], 2, "an out-of-range target still counts as a target");
  assert.ok((await readTensor(gpu, logitsT)).every(Number.isFinite), "dlogits must stay finite");
});

interface ClassCase {
  logits: number[];
  targets: number[];
  valid: number[];
}

/** Soft-label CE over valid rows; `hard0[r]` (1 = class 0) gives the aux target mixed in with alpha. */
function classRef(c: ClassCase, alpha: number, hard0?: number[]) {
  const B = c.valid.length, count = c.valid.filter((v) => v).length;
  const grad = new Float64Array(2 * B), rowLoss = new Float64Array(B);
  let correct = 0;
  for (let r = 0; r < B; r++) {
    if (!c.valid[r]) continue;
    const [l0, l1] = [c.logits[2 * r], c.logits[2 * r + 1]];
    let [t0, t1] = [c.targets[2 * r], c.targets[2 * r + 1]];
    if ((l1 > l0 ? 1 : 0) === (t1 > t0 ? 1 : 0)) correct++;
    if (hard0) [t0, t1] = [(1 - alpha) * t0 + alpha * hard0[r], (1 - alpha) * t1 + alpha * (1 - hard0[r])];
    const lse = Math.log(Math.exp(l0) + Math.exp(l1));
    rowLoss[r] = -(t0 * (l0 - lse) + t1 * (l1 - lse));
    grad[2 * r] = (Math.exp(l0 - lse) * (t0 + t1) - t0) / count;
    grad[2 * r + 1] = (Math.exp(l1 - lse) * (t0 + t1) - t1) / count;
  }
  return { grad, rowLoss, loss: rowLoss.reduce((a, b) => a + b, 0) / Math.max(count, 1), count, correct };
}

/** torch.quantile(values, q) with linear interpolation, then the hard labels of logconf. */
function logconfHardRef(c: ClassCase): number[] {
  const B = c.valid.length;
  const p0 = Array.from({ length: B }, (_, r) => 1 / (1 + Math.exp(c.logits[2 * r + 1] - c.logits[2 * r])));
  const validRows = [...Array(B).keys()].filter((r) => c.valid[r]);
  const q = validRows.reduce((a, r) => a + c.targets[2 * r + 1], 0) / validRows.length;
  const sorted = validRows.map((r) => p0[r]).sort((a, b) => a - b);
  const pos = q * (sorted.length - 1), lo = Math.floor(pos), hi = Math.ceil(pos);
  const threshold = sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
  return p0.map((p) => (p >= threshold ? 1 : 0));
}

async function runClass(gpu: Gpu, c: ClassCase, aux: boolean, alpha: number) {
  const B = c.valid.length;
  const logits = placed(gpu, Float32Array.from(c.logits), "class logits");
  const stats = placed(gpu, Float32Array.from([9, 9, 0.5, 0, 9, 0, 0, 0]), "stats");
  const rowLoss = placed(gpu, new Float32Array(B), "rowLoss");
  const d = planClassCrossEntropy(gpu, {
    logits,
    targets: placed(gpu, Float32Array.from(c.targets), "soft targets"),
    valid: placed(gpu, Int32Array.from(c.valid), "valid"),
    rowLoss,
    stats,
    B,
    label: "class ce",
    aux,
  });
  if (aux) d[0].setParams({ alpha });
  await run(gpu, d);
  return {
    grad: await readTensor(gpu, logits),
    stats: await readTensor(gpu, stats),
    rowLoss: await readTensor(gpu, rowLoss),
  };
}

function checkClass(
  got: Awaited<ReturnType<typeof runClass>>,
  want: ReturnType<typeof classRef>,
  tag: string,
) {
  assertClose(got.grad, want.grad, `class CE dlogits ${tag}`, 1e-7, 1e-4);
  assertClose(got.rowLoss, want.rowLoss, `class CE row loss ${tag}`, 1e-6, 1e-5);
  assertClose([got.stats[STAT_LOSS]], [want.loss], `class CE loss ${tag}`, 1e-6, 1e-5);
  assert.equal(got.stats[STAT_COUNT], want.count, `class CE count ${tag}`);
  assert.equal(got.stats[STAT_CORRECT], want.correct, `class CE correct ${tag}`);
  assert.equal(got.stats[STAT_NONFINITE], 0, `class CE nonfinite ${tag}`);
  assert.equal(got.stats[STAT_GRAD_NORM_SQ], 0.5, `class CE must not touch other stats ${tag}`);
}

Deno.test("class cross-entropy with soft targets, invalid rows, and the logconf aux target", async () => {
  const gpu = await getGpu();
  for (const B of [1, 7, 33, 130, 300]) {
    const raw = randoms(3 * B, B, 3);
    const c: ClassCase = {
      logits: [...raw.subarray(0, 2 * B)],
      targets: [...Array(B).keys()].flatMap((r) => {
        const p = (raw[2 * B + r] / 3 + 1) / 2;
        return [1 - p, p];
      }),
      valid: Array.from({ length: B }, (_, r) => (B > 1 && r % 4 === 1 ? 0 : 1)),
    };
    checkClass(await runClass(gpu, c, false, 0), classRef(c, 0), `B=${B}`);
    checkClass(await runClass(gpu, c, true, 0.3), classRef(c, 0.3, logconfHardRef(c)), `aux B=${B}`);
  }

  // Hand-computed quantiles. preds0 = σ(l0 − l1): [0,0] → 0.5, [1,0] → 0.731, [2,0] → 0.881, [-1,0] → 0.269.
  // A: five valid rows (two tied at 0.731), q = mean t1 = 0.75 → pos = 3 → threshold = 0.731 (the
  // second tied value): hard class 0 for rows 1, 2, 3. The invalid last row would move q and the
  // sorted values if it were counted.
  const tied: ClassCase = {
    logits: [0, 0, 1, 0, 1, 0, 2, 0, -1, 0, 5, -5],
    targets: [0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 1, 0],
    valid: [1, 1, 1, 1, 1, 0],
  };
  const hardTied = [0, 1, 1, 1, 0, 0];
  // argmax: logits → [0, 0, 0, 0, 1], targets → class 1 everywhere: only row 4 is correct.
  const wantTied = classRef(tied, 0.5, hardTied);
  assert.equal(wantTied.correct, 1);
  checkClass(await runClass(gpu, tied, true, 0.5), wantTied, "hand quantile with ties");
  // B: four valid rows, q = 0.5 → pos = 1.5 → threshold = (0.5 + 0.731)/2: row 0 (0.5) is class 1
  // under linear interpolation (it would be class 0 with the "lower" rule).
  const lerp: ClassCase = {
    logits: [0, 0, 1, 0, 2, 0, -1, 0, -9, 9],
    targets: [0.75, 0.25, 0.5, 0.5, 0.125, 0.875, 0.625, 0.375, 0, 1],
    valid: [1, 1, 1, 1, 0],
  };
  const wantLerp = classRef(lerp, 0.5, [0, 1, 1, 0, 0]);
  assert.equal(wantLerp.correct, 2); // rows 0 (tie → class 0 both) and 1 (target tie → class 0)
  checkClass(await runClass(gpu, lerp, true, 0.5), wantLerp, "hand quantile lerp");
  // alpha = 0 in aux mode is the plain soft-label loss.
  checkClass(await runClass(gpu, lerp, true, 0), classRef(lerp, 0), "aux alpha 0");
});

// ---------- optimizer ----------

Deno.test("gradient norm: two-pass sum of squares on odd sizes, bit-identical reruns, non-finite flag", async () => {
  const gpu = await getGpu();
  for (const n of [1, 7, 33, 130, 4097, 9001]) {
    const g = randoms(n, n, 2);
    const grads = placed(gpu, g, "grads");
    const partials = placed(gpu, new Float32Array(gradNormPartials(n)), "partials");
    const stats = placed(gpu, Float32Array.from([1.5, 2, 0, 0, 0, 0, 0, 0]), "stats");
    const d = planGradNorm(gpu, { grads, n, stats, partials, label: "grad norm" });
    await run(gpu, d);
    const first = await readTensor(gpu, stats);
    const want = g.reduce((acc, x) => acc + x * x, 0);
    assertClose([first[STAT_GRAD_NORM_SQ]], [want], `grad norm² n=${n}`, 0, 1e-5);
    assert.deepEqual(
      [first[STAT_LOSS], first[STAT_COUNT], first[STAT_NONFINITE]],
      [1.5, 2, 0],
      `other stats n=${n}`,
    );
    await run(gpu, d);
    assertBitIdentical(first, await readTensor(gpu, stats), `grad norm n=${n}`);
  }
  for (const bad of [NaN, Infinity, -Infinity]) {
    const g = randoms(5000, 3);
    g[4321] = bad;
    const stats = placed(gpu, new Float32Array(8), "stats");
    const partials = placed(gpu, new Float32Array(gradNormPartials(g.length)), "partials");
    await run(
      gpu,
      planGradNorm(gpu, { grads: placed(gpu, g, "grads"), n: g.length, stats, partials, label: "gn" }),
    );
    assert.equal((await readTensor(gpu, stats))[STAT_NONFINITE], 1, `a gradient of ${bad} must set the flag`);
  }
});

interface AdamState {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/** torch.nn.utils.clip_grad_norm_ followed by one torch.optim.AdamW step, in float64. */
function adamwRef(
  s: AdamState,
  g: Float32Array,
  step: number,
  h: { lr: number; wd: number; maxNorm: number },
  decayEnd: number,
) {
  const [beta1, beta2, eps] = [0.9, 0.95, 1e-8];
  const norm = Math.sqrt(g.reduce((acc, x) => acc + x * x, 0));
  const coef = h.maxNorm > 0 ? Math.min(1, h.maxNorm / (norm + 1e-6)) : 1;
  const bc1 = 1 - beta1 ** step, bc2 = 1 - beta2 ** step;
  for (let i = 0; i < s.p.length; i++) {
    const gi = g[i] * coef;
    s.m[i] = beta1 * s.m[i] + (1 - beta1) * gi;
    s.v[i] = beta2 * s.v[i] + (1 - beta2) * gi * gi;
    if (i < decayEnd) s.p[i] -= h.lr * h.wd * s.p[i];
    s.p[i] -= h.lr * (s.m[i] / bc1) / (Math.sqrt(s.v[i] / bc2) + eps);
  }
}

Deno.test("AdamW: three clipped steps with decay on a prefix match torch semantics; skipped when non-finite", async () => {
  const gpu = await getGpu();
  for (const [n, decayEnd, maxNorm] of [[1, 1, 0], [33, 20, 0.5], [130, 0, 1e9], [4099, 4000, 2]]) {
    const p0 = randoms(n, n, 1);
    const state: AdamState = { p: toF64(p0), m: new Float64Array(n), v: new Float64Array(n) };
    // One flat optimizer-state buffer holding m and v (a single read_write binding, two offsets).
    const params = placed(gpu, p0, "params");
    const moments = createTensor(gpu, 2 * n + 70, "moments");
    const m = slice(moments, 3, n, "m"), v = slice(moments, n + 67, n, "v");
    const grads = placed(gpu, new Float32Array(n), "grads");
    const stats = placed(gpu, new Float32Array(8), "stats");
    const partials = placed(gpu, new Float32Array(gradNormPartials(n)), "partials");
    const norm = planGradNorm(gpu, { grads, n, stats, partials, label: "gn" });
    const hyper = { lr: 0.01, wd: 0.1, maxNorm };
    const adam = planAdamW(gpu, { params, grads, m, v, n, decayEnd, stats, label: "adamw" }, {
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weight_decay: hyper.wd,
      max_norm: maxNorm,
    });
    for (let step = 1; step <= 3; step++) {
      const g = randoms(n, 100 * step + n, 3);
      writeTensor(gpu, grads, g);
      adam.setParams({ lr: hyper.lr, bc1: 1 - 0.9 ** step, bc2: 1 - 0.95 ** step });
      await run(gpu, [...norm, adam]);
      adamwRef(state, g, step, hyper, decayEnd);
    }
    const tag = `n=${n} decayEnd=${decayEnd} maxNorm=${maxNorm}`;
    assertClose(await readTensor(gpu, params), state.p, `AdamW params ${tag}`, 1e-6, 1e-5);
    assertClose(await readTensor(gpu, m), state.m, `AdamW m ${tag}`, 1e-7, 1e-5);
    assertClose(await readTensor(gpu, v), state.v, `AdamW v ${tag}`, 1e-8, 1e-5);

    // A non-finite gradient: the flag is set and params, m, v stay bit-identical.
    const before = [await readTensor(gpu, params), await readTensor(gpu, m), await readTensor(gpu, v)];
    const bad = randoms(n, 7);
    bad[n - 1] = NaN;
    writeTensor(gpu, grads, bad);
    await run(gpu, [...norm, adam]);
    const after = [await readTensor(gpu, params), await readTensor(gpu, m), await readTensor(gpu, v)];
    before.forEach((b, i) =>
      assertBitIdentical(b, after[i], `AdamW skipped step ${["params", "m", "v"][i]} ${tag}`)
    );
  }
});

Deno.test("report of max errors", () => {
  const lines = [...errorLog].map(([k, e]) =>
    `${k.padEnd(48)} max abs ${e.maxAbs.toExponential(2)}  max rel ${e.maxRel.toExponential(2)}`
  );
  console.log(lines.join("\n"));
});
