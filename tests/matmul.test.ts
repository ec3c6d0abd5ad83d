/**
 * The general matmul against a float64 reference: every version (v1 naive, v2 blocked, v3 vec4, v4
 * tiled) × layout (NN, NT, TN) on odd shapes, with bias, accumulation (beta), alpha, batching and the
 * two-level batch used by attention; tensors placed at unaligned offsets inside larger buffers.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { checked, createTensor, readTensor, slice, submit, type Tensor } from "../kernels/runtime.ts";
import { type MatmulSpec, type MatmulVersion, planMatmul } from "../kernels/ops/matmul.ts";
import { randoms as uniform } from "./helpers/kernel-check.ts";

/** Seeded operands in [−0.5, 0.5). */
function randoms(n: number, seed: number): Float32Array {
  return uniform(n, seed, 0.5);
}

interface Case {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  batch?: number;
  bias?: boolean;
  beta?: number;
  alpha?: number;
}

/** Reference on packed operands: C[z] = alpha·op(A[z])·op(B[z]) + bias + beta·C0[z]. */
function reference(
  c: Case,
  A: Float32Array,
  B: Float32Array,
  bias: Float32Array,
  C0: Float32Array,
): Float64Array {
  const { M, N, K } = c;
  const batch = c.batch ?? 1;
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const a = c.transA ? A[z * M * K + k * M + m] : A[z * M * K + m * K + k];
          const b = c.transB ? B[z * K * N + n * K + k] : B[z * K * N + k * N + n];
          acc += a * b;
        }
        const i = z * M * N + m * N + n;
        out[i] = (c.alpha ?? 1) * acc + (c.bias ? bias[n] : 0) + (c.beta ?? 0) * C0[i];
      }
    }
  }
  return out;
}

/** A tensor at element offset `at` inside a larger buffer, so the kernel must use its base offset. */
function placed(
  gpu: Awaited<ReturnType<typeof getGpu>>,
  data: Float32Array,
  at: number,
  label: string,
): Tensor {
  const whole = new Float32Array(at + data.length + 13).fill(99);
  whole.set(data, at);
  return slice(createTensor(gpu, whole.length, label, whole), at, data.length, label);
}

function maxRelError(got: Float32Array, want: Float64Array): number {
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

const SHAPES: [number, number, number][] = [[1, 1, 1], [7, 33, 13], [130, 7, 33], [33, 130, 1], [8, 36, 16], [
  12,
  20,
  64,
], [64, 48, 132]];

async function check(
  c: Case,
  version: MatmulVersion | undefined,
  offset: number,
): Promise<string | undefined> {
  const gpu = await getGpu();
  const batch = c.batch ?? 1;
  const A = randoms(batch * c.M * c.K, c.M + 3 * c.K);
  const B = randoms(batch * c.K * c.N, 7 * c.N + c.K);
  const bias = randoms(c.N, 5);
  const C0 = randoms(batch * c.M * c.N, 11);
  const spec: MatmulSpec = {
    label: "test",
    a: placed(gpu, A, offset, "A"),
    b: placed(gpu, B, offset, "B"),
    c: placed(gpu, C0, offset, "C"),
    bias: c.bias ? placed(gpu, bias, offset + 1, "bias") : undefined,
    M: c.M,
    N: c.N,
    K: c.K,
    transA: c.transA,
    transB: c.transB,
    batch,
    alpha: c.alpha,
    beta: c.beta,
    version,
  };
  let dispatch;
  try {
    dispatch = await checked(gpu, () => planMatmul(gpu, spec));
  } catch (err) {
    // v3 and v4 refuse unaligned operands with a named error; every other refusal is a failure.
    if ((version === "v3" || version === "v4") && /matmul needs aligned shapes/.test(String(err))) {
      return undefined;
    }
    throw err;
  }
  await checked(gpu, () => submit(gpu, [dispatch]));
  const got = await readTensor(gpu, spec.c);
  const err = maxRelError(got, reference(c, A, B, bias, C0));
  const name =
    `${version ?? "auto"} M${c.M} N${c.N} K${c.K} ${c.transA ? "T" : "N"}${c.transB ? "T" : "N"} ` +
    `batch ${batch} bias ${!!c.bias} beta ${c.beta ?? 0} offset ${offset}`;
  return err <= 1e-5 ? undefined : `${name}: max rel error ${err.toExponential(2)}`;
}

Deno.test("matmul: every version and layout on odd shapes matches float64", async () => {
  const failures: string[] = [];
  let vec4Ran = 0;
  let tiledRan = 0;
  for (const version of ["v1", "v2", "v3", "v4"] as const) {
    for (const [M, N, K] of SHAPES) {
      for (const [transA, transB] of [[false, false], [false, true], [true, false]]) {
        const offset = version === "v3" || version === "v4" ? 4 : 3;
        const result = await check({ M, N, K, transA, transB }, version, offset);
        if (result) failures.push(result);
        if (version === "v3" && (N % 4 === 0 || K % 4 === 0)) vec4Ran++;
        if (version === "v4" && M % 4 === 0 && N % 4 === 0 && K % 4 === 0) tiledRan++;
      }
    }
  }
  assert.deepEqual(failures, [], failures.join("\n"));
  assert.ok(vec4Ran > 5, "v3 (vec4) must run on the aligned shapes");
  assert.ok(tiledRan >= 6, "v4 (tiled) must run on the 4-aligned shapes");
});

/**
 * Operands whose rows start 4-aligned (row strides ceil4 + 4) but whose M, N and K are ragged, as the
 * LM head's logits rows padded to a multiple of 4 with a vocabulary of 1538: v4 reads the last vec4
 * of a row past the edge and runs a masked K tail. Every padding element is NaN, so a padding value
 * that reaches a stored result fails the comparison.
 */
Deno.test("matmul: v4 on ragged M, N and K with 4-aligned row strides matches float64 (padding never read into C)", async () => {
  const gpu = await getGpu();
  const ceil4 = (n: number) => Math.ceil(n / 4) * 4;
  /** rows × cols packed data laid out with row stride ld in a NaN-filled buffer (4-aligned start). */
  const strided = (data: Float32Array, rows: number, cols: number, ld: number, label: string) => {
    const whole = new Float32Array(8 + rows * ld + 8).fill(NaN);
    for (let r = 0; r < rows; r++) whole.set(data.subarray(r * cols, (r + 1) * cols), 8 + r * ld);
    return slice(createTensor(gpu, whole.length, label, whole), 8, (rows - 1) * ld + cols, label);
  };
  const failures: string[] = [];
  const shapes: [number, number, number][] = [[5, 6, 3], [7, 33, 13], [130, 7, 33], [33, 10, 1], [
    17,
    16,
    1538,
  ], [
    1538,
    16,
    61,
  ]];
  for (const [M, N, K] of shapes) {
    for (const [transA, transB] of [[false, false], [false, true], [true, false]]) {
      // C rows 4-aligned (vec4 stores, the last group of a ragged row element by element) or not.
      for (
        const [version, ldc] of [["v4", ceil4(N) + 4], [undefined, ceil4(N) + 4], ["v4", N + 3]] as const
      ) {
        const c: Case = { M, N, K, transA, transB, beta: 1, alpha: 0.5 };
        const A = randoms(M * K, M + 3 * K), B = randoms(K * N, 7 * N + K), C0 = randoms(M * N, 11);
        const [aRows, aCols] = transA ? [K, M] : [M, K];
        const [bRows, bCols] = transB ? [N, K] : [K, N];
        const lda = ceil4(aCols) + 4, ldb = ceil4(bCols) + 4;
        const cPacked = new Float32Array((M - 1) * ldc + N);
        for (let m = 0; m < M; m++) cPacked.set(C0.subarray(m * N, (m + 1) * N), m * ldc);
        const cTensor = createTensor(gpu, cPacked.length, "C", cPacked);
        const dispatch = await checked(gpu, () =>
          planMatmul(gpu, {
            label: "ragged",
            a: strided(A, aRows, aCols, lda, "A"),
            b: strided(B, bRows, bCols, ldb, "B"),
            c: cTensor,
            M,
            N,
            K,
            transA,
            transB,
            lda,
            ldb,
            ldc,
            alpha: 0.5,
            beta: 1,
            version,
          }));
        await checked(gpu, () => submit(gpu, [dispatch]));
        const all = await readTensor(gpu, cTensor);
        const got = new Float32Array(M * N);
        for (let m = 0; m < M; m++) got.set(all.subarray(m * ldc, m * ldc + N), m * N);
        const err = maxRelError(got, reference(c, A, B, new Float32Array(N), C0));
        if (!(err <= 1e-5)) {
          failures.push(
            `${version ?? "auto"} M${M} N${N} K${K} ${transA ? "T" : "N"}${transB ? "T" : "N"}: ${err}`,
          );
        }
      }
    }
  }
  assert.deepEqual(failures, [], failures.join("\n"));
});

Deno.test("matmul: v4 products of few workgroups get shorter ones, with the same bits as the default height", async () => {
  const gpu = await getGpu();
  // A weight gradient's shape: C = 128 from the batch's rows, so one workgroup of 8 × 8 invocations
  // (16 × 16 blocks) covers it; shorter workgroups spread it over four.
  for (const [M, N, K, groups] of [[128, 128, 24, 4], [128, 384, 24, 6], [40, 128, 8, 2]] as const) {
    const A = randoms(K * M, M + K);
    const B = randoms(K * N, N + 3 * K);
    const C0 = randoms(M * N, 11);
    const results: Float32Array[] = [];
    for (const block of [undefined, [16, 16, 8] as [number, number, number]]) {
      const spec: MatmulSpec = {
        label: "dW",
        a: placed(gpu, A, 8, "A"),
        b: placed(gpu, B, 12, "B"),
        c: placed(gpu, C0, 4, "C"),
        M,
        N,
        K,
        transA: true,
        beta: 1,
        block,
      };
      const d = planMatmul(gpu, spec);
      const count = d.workgroups[0] * d.workgroups[1] * d.workgroups[2];
      assert.equal(count, block ? Math.ceil(N / 128) * Math.ceil(M / 128) : groups, `workgroups ${M}×${N}`);
      await checked(gpu, () => submit(gpu, [d]));
      const got = await readTensor(gpu, spec.c);
      const err = maxRelError(
        got,
        reference({ M, N, K, transA: true, beta: 1 }, A, B, new Float32Array(N), C0),
      );
      assert.ok(err <= 1e-5, `${M}×${N}×${K} ${block ? "height 8" : "default"}: max rel error ${err}`);
      results.push(got);
    }
    assert.deepEqual(results[0], results[1], `${M}×${N}×${K}: shorter workgroups change no bit`);
  }
});

Deno.test("matmul: bias, accumulation, alpha and batching", async () => {
  const failures: string[] = [];
  const cases: Case[] = [
    { M: 7, N: 9, K: 5, bias: true },
    { M: 7, N: 12, K: 8, bias: true, beta: 1 },
    { M: 5, N: 8, K: 12, transA: true, beta: 1, alpha: 0.5 },
    { M: 9, N: 8, K: 12, transB: true, batch: 3, alpha: -2 },
    { M: 1, N: 16, K: 33, transA: true, batch: 2, beta: 1 },
  ];
  for (const c of cases) {
    for (const version of [undefined, "v1", "v2", "v4"] as const) {
      const result = await check(c, version, 8);
      if (result) failures.push(result);
    }
  }
  assert.deepEqual(failures, [], failures.join("\n"));
});

Deno.test("matmul: two-level batch over (sequence, head) blocks of one buffer", async () => {
  const gpu = await getGpu();
  // qkv-like layout: S sequences × T rows × (H·d) columns; per (s, h): C = Q_sh · Q_shᵀ (T×T).
  const S = 2, T = 5, H = 3, d = 4;
  const W = H * d;
  const X = randoms(S * T * W, 3);
  for (const version of ["v1", "v2", "v3", "v4"] as const) {
    const x = createTensor(gpu, X.length, "x", X);
    const out = createTensor(gpu, S * H * T * T, "out");
    const dispatch = planMatmul(gpu, {
      label: "two-level",
      a: x,
      b: x,
      c: out,
      M: T,
      N: T,
      K: d,
      transB: true,
      lda: W,
      ldb: W,
      ldc: T,
      batch: S * H,
      batchSplit: H,
      batchStrideA: T * W,
      innerStrideA: d,
      batchStrideB: T * W,
      innerStrideB: d,
      batchStrideC: H * T * T,
      innerStrideC: T * T,
      version,
    });
    submit(gpu, [dispatch]);
    const got = await readTensor(gpu, out);
    let err = 0;
    for (let s = 0; s < S; s++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < T; i++) {
          for (let j = 0; j < T; j++) {
            let want = 0;
            for (let k = 0; k < d; k++) {
              want += X[(s * T + i) * W + h * d + k] * X[(s * T + j) * W + h * d + k];
            }
            err = Math.max(err, Math.abs(got[((s * H + h) * T + i) * T + j] - want));
          }
        }
      }
    }
    assert.ok(err <= 1e-6, `${version}: max abs error ${err}`);
  }
});

/** GELU (tanh form) and its derivative in float64, written from the formula. */
function geluRef(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}
function geluGradRef(x: number): number {
  const u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3);
  const du = Math.sqrt(2 / Math.PI) * (1 + 3 * 0.044715 * x * x);
  return 0.5 * (1 + Math.tanh(u)) + 0.5 * x * (1 - Math.tanh(u) ** 2) * du;
}

Deno.test("matmul: GELU epilogues (fc forward: C and GELU(C); backward: C·GELU'(pre)) match float64", async () => {
  const gpu = await getGpu();
  const failures: string[] = [];
  for (const version of ["v2", "v4"] as const) {
    for (const c of [{ M: 8, N: 12, K: 16, bias: true }, { M: 12, N: 16, K: 8, transB: true }] as Case[]) {
      const A = randoms(c.M * c.K, c.M), B = randoms(c.K * c.N, c.N).map((x) => 4 * x);
      const bias = randoms(c.N, 5);
      const pre = randoms(c.M * c.N, 17).map((x) => 6 * x); // spans GELU's curved part
      const product = reference(c, A, B, bias, new Float32Array(c.M * c.N));
      const spec = (kind: "gelu" | "gelu-grad", out: Tensor, aux: Tensor): MatmulSpec => ({
        label: `epilogue ${kind}`,
        a: placed(gpu, A, 4, "A"),
        b: placed(gpu, B, 4, "B"),
        c: out,
        bias: c.bias ? placed(gpu, bias, 4, "bias") : undefined,
        M: c.M,
        N: c.N,
        K: c.K,
        transB: c.transB,
        version,
        epilogue: { kind, aux },
      });
      const tag = `${version} ${c.transB ? "NT" : "NN"}`;
      const fcOut = placed(gpu, new Float32Array(c.M * c.N), 8, "fc");
      const geluOut = placed(gpu, new Float32Array(c.M * c.N), 12, "gelu");
      await checked(gpu, () => submit(gpu, [planMatmul(gpu, spec("gelu", fcOut, geluOut))]));
      const errPre = maxRelError(await readTensor(gpu, fcOut), product);
      const errGelu = maxRelError(await readTensor(gpu, geluOut), product.map(geluRef));
      const preT = placed(gpu, pre, 4, "pre");
      const gradOut = placed(gpu, new Float32Array(c.M * c.N), 8, "dpre");
      await checked(gpu, () => submit(gpu, [planMatmul(gpu, spec("gelu-grad", gradOut, preT))]));
      const errGrad = maxRelError(
        await readTensor(gpu, gradOut),
        product.map((v, i) => v * geluGradRef(pre[i])),
      );
      for (
        const [what, err] of [["pre-activation", errPre], ["GELU", errGelu], ["GELU'", errGrad]] as const
      ) {
        if (!(err <= 1e-5)) failures.push(`${tag} ${what}: max rel error ${err}`);
      }
    }
  }
  assert.deepEqual(failures, [], failures.join("\n"));
  const t = createTensor(gpu, 64, "shared");
  assert.throws(
    () =>
      planMatmul(gpu, {
        label: "mm",
        a: t,
        b: t,
        c: slice(t, 0, 16, "c"),
        M: 4,
        N: 4,
        K: 4,
        epilogue: { kind: "gelu", aux: slice(t, 16, 16, "aux") },
      }),
    /aux aux must not share C's buffer/,
  );
});

Deno.test("matmul: operands too small for the shape are refused with the tensor's name", async () => {
  const gpu = await getGpu();
  const a = createTensor(gpu, 10, "activations");
  const b = createTensor(gpu, 12, "weights");
  const c = createTensor(gpu, 12, "out");
  assert.throws(
    () => planMatmul(gpu, { label: "mm", a, b, c, M: 3, N: 4, K: 4 }),
    /A activations has 10 elements, needs 12/,
  );
});
