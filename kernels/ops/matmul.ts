/**
 * matmul: C[b] = alpha · op(A[b]) · op(B[b]) (+ bias) (+ beta · C[b]), row-major, batched.
 *
 * One general kernel serves every matrix product of the model, forward and backward:
 *   NN  y  = x · W        (A = x  M×K, B = W  K×N)
 *   NT  dx = dy · Wᵀ      (B stored N×K)
 *   TN  dW = xᵀ · dy      (A stored K×M), accumulated with beta = 1
 * Layouts become strides: element (m, k) of op(A) is A[m·sAm + k·sAk], so the inner loop has no
 * branch on the layout. Ragged edges: out-of-range rows/columns are clamped for loads and masked
 * for stores; the K tail is a separate bounds-checked loop.
 *
 * Buffers: a (read), b (read), bias (read, N floats; bound to a dummy when unused), c (read-write).
 * Params: element offsets of each tensor inside its binding, strides, batch strides, alpha, beta.
 * Epilogues (spec.epilogue, any version), fusing the elementwise op that follows a product:
 *   gelu        C = pre-activation as usual, and aux = GELU(C) (the MLP's fc layer forward).
 *   gelu-grad   C = result · GELU'(aux), aux holding the pre-activation (the MLP's backward).
 *   aux has C's layout (ldc, batch strides) at its own offset, in a buffer other than C's.
 * Versions (spec.version; kernels/versions.ts numbers every family's; the benchmark puts them side by side):
 *   v1 naive    one output per invocation, 16×16 workgroup.
 *   v2 blocked  TM×TN outputs per invocation held in registers (no shared memory): each loaded value
 *               is reused TN or TM times. Dispatch: x = ⌈N / (TN·8)⌉, y = ⌈M / (TM·8)⌉, z = batch.
 *   v3 vec4     4×16 per invocation, B (or A and B for NT) read as vec4.
 *   v4 tiled    TM×TN per invocation (default 16×16), every load a vec4 along the operand's contiguous
 *               dimension, 4 k per iteration; the automatic choice wherever the operands' rows start
 *               4-aligned (any M, N, K: a ragged edge reads its last vec4 inside the row and is not
 *               stored; K % 4 ≠ 0 adds a masked tail iteration, generated only then).
 *               Stores are vec4s too where C's rows are 4-aligned (bias loaded once per column group).
 *               Dispatch: x = ⌈N / (TN·8)⌉, y = ⌈M / (TM·rows)⌉ (workgroup 8 × rows, default 8).
 *   v5 split-K  planMatmulSplitK: v4 over `splits` equal slices of K into a scratch buffer, then a
 *               reduction pass C = alpha · Σ slices (in slice order: deterministic) + beta · C. For
 *               products whose output has too few v4 workgroups to keep every CPU thread busy: the
 *               weight gradients dW = xᵀ · dy, where K is the batch's rows and M × N is small.
 *   v6 textures planMatmulTextures (matmul-texture.ts): v4's kernel and sums reading A and B from
 *               rgba32float textures packed first (texture-operand.ts); the same bits as v4. The model's
 *               products take it through planProduct where the autotune found textures faster.
 *   Without spec.version: v4 where the shapes allow, else v3, else v2.
 */
import type { Gpu } from "../device.ts";
import {
  bindTensor,
  createTensor,
  type Dispatch,
  grid1d,
  type Launch,
  plan,
  type Tensor,
} from "../runtime.ts";
import { GELU_COMMON } from "./elementwise.ts";
import type { KernelVersion } from "../versions.ts";

const STORE = /* wgsl */ `
fn store(batch: u32, m: u32, n: u32, acc: f32) {
  let i = params.c_off + batch_c(batch) + m * params.ldc + n;
  var v = params.alpha * acc;
  if (params.has_bias != 0u) { v += bias[params.bias_off + n]; }
  if (params.beta != 0.0) { v += params.beta * c[i]; }
  c[i] = v;
}
`;

/**
 * v4's (tiled) store of 4 adjacent columns as one vec4 (C bound as array<vec4<f32>>), used when
 * C's layout is 4-aligned: on llvmpipe every store, like every load, is a loop over the SIMD lanes, so
 * this quarters the epilogue's memory operations (a third of a K = 128 product's). The bias is loaded
 * once per column group by the caller. Same arithmetic order as `store`, so results are identical.
 */
const STORE4 = /* wgsl */ `
fn bias4(n: u32) -> vec4<f32> {
  if (params.has_bias == 0u) { return vec4(0.0); }
  let o = params.bias_off + min(n, params.N - 4u);
  return vec4(bias[o], bias[o + 1u], bias[o + 2u], bias[o + 3u]);
}
fn store4(batch: u32, m: u32, n: u32, acc: vec4<f32>, b4: vec4<f32>) {
  let i = (params.c_off + batch_c(batch) + m * params.ldc + n) / 4u;
  var v = params.alpha * acc + b4;
  if (params.beta != 0.0) { v += params.beta * c[i]; }
  c[i] = v;
}
`;

/**
 * v4's store of the last, partial column group of a row when N is not a multiple of 4 but C's rows
 * are 4-aligned (the LM head's logits): element by element into the vec4 array, no bias or epilogue.
 */
const STORE4_TAIL = /* wgsl */ `
fn store_tail(batch: u32, m: u32, n: u32, acc: vec4<f32>) {
  let base = params.c_off + batch_c(batch) + m * params.ldc + n;
  for (var e = 0u; e < 4u; e++) {
    if (n + e < params.N) {
      let i = base + e;
      var v = params.alpha * acc[e];
      if (params.beta != 0.0) { v += params.beta * c[i / 4u][i % 4u]; }
      c[i / 4u][i % 4u] = v;
    }
  }
}
`;

/**
 * The store function and extra binding of each epilogue (see the header), scalar or vec4 stores. With
 * `auxTexture` (v6, vec4 stores, batch 1) gelu-grad reads aux from a texture, texel (n / 4, m), instead.
 */
function withEpilogue(code: string, epilogue: "gelu" | "gelu-grad", auxTexture = false): string {
  const vec = code.includes(STORE4);
  if (!vec && !code.includes(STORE)) throw new Error("matmul epilogue: the kernel's store function changed");
  if (auxTexture && (!vec || epilogue !== "gelu-grad")) {
    throw new Error("matmul: aux from a texture needs gelu-grad, vec4 stores");
  }
  const type = vec ? "vec4<f32>" : "f32";
  const aux = auxTexture
    ? "@group(0) @binding(5) var taux: texture_2d<f32>;"
    : epilogue === "gelu"
    ? `@group(0) @binding(5) var<storage, read_write> aux: array<${type}>;`
    : `@group(0) @binding(5) var<storage, read> aux: array<${type}>;`;
  const map = (f: string, x: string) =>
    vec ? `vec4(${f}(${x}.x), ${f}(${x}.y), ${f}(${x}.z), ${f}(${x}.w))` : `${f}(${x})`;
  const auxIndex = vec ? "params.aux_off / 4u + i - params.c_off / 4u" : "params.aux_off + i - params.c_off";
  const base = vec ? STORE4 : STORE;
  const store = epilogue === "gelu"
    ? base.replace("c[i] = v;", `c[i] = v;\n  aux[${auxIndex}] = ${map("gelu", "v")};`)
    : base.replace(
      "c[i] = v;",
      `let pre = ${
        auxTexture ? "textureLoad(taux, vec2(n / 4u, m), 0)" : `aux[${auxIndex}]`
      };\n  c[i] = v * ${map("gelu_grad", "pre")};`,
    );
  return code.replace(base, `${aux}\n${GELU_COMMON}${store}`);
}

const PARAMS = /* wgsl */ `
struct Params {
  M: u32, N: u32, K: u32, has_bias: u32,
  a_off: u32, b_off: u32, c_off: u32, bias_off: u32,
  a_sm: u32, a_sk: u32, b_sk: u32, b_sn: u32,
  ldc: u32, batch_a: u32, batch_b: u32, batch_c: u32,
  alpha: f32, beta: f32, split: u32, inner_a: u32,
  inner_b: u32, inner_c: u32, aux_off: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Batch z splits as (outer, inner) = (z / split, z % split): e.g. (sequence, head) for attention.
fn batch_a(z: u32) -> u32 { return (z / params.split) * params.batch_a + (z % params.split) * params.inner_a; }
fn batch_b(z: u32) -> u32 { return (z / params.split) * params.batch_b + (z % params.split) * params.inner_b; }
fn batch_c(z: u32) -> u32 { return (z / params.split) * params.batch_c + (z % params.split) * params.inner_c; }

${STORE}`;

const NAIVE = PARAMS + /* wgsl */ `
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  let batch = gid.z;
  if (m >= params.M || n >= params.N) { return; }
  let a0 = params.a_off + batch_a(batch) + m * params.a_sm;
  let b0 = params.b_off + batch_b(batch) + n * params.b_sn;
  var acc = 0.0;
  for (var k = 0u; k < params.K; k++) {
    acc += a[a0 + k * params.a_sk] * b[b0 + k * params.b_sk];
  }
  store(batch, m, n, acc);
}
`;

function blockedSource(tm: number, tn: number): string {
  const rows = [...Array(tm).keys()];
  const cols = [...Array(tn).keys()];
  const accDecl = rows.map((r) => `var acc${r}: array<f32, ${tn}>;`).join("\n  ");
  const aBase = rows.map((r) =>
    `let a${r} = params.a_off + batch_a(batch) + min(m0 + ${r}u, params.M - 1u) * params.a_sm;`
  ).join("\n  ");
  const bBase = cols.map((j) =>
    `let b${j} = params.b_off + batch_b(batch) + min(n0 + ${j}u, params.N - 1u) * params.b_sn;`
  ).join("\n  ");
  const step = (guard: string) => `
    let ka = k * params.a_sk;
    let kb = k * params.b_sk;
    ${rows.map((r) => `let x${r} = a[a${r} + ka];`).join(" ")}
    ${cols.map((j) => `let y${j} = b[b${j} + kb];`).join(" ")}
    ${guard}
    ${
    rows.map((r) => cols.map((j) => `acc${r}[${j}] = fma(x${r}, y${j}, acc${r}[${j}]);`).join(" ")).join(
      "\n    ",
    )
  }`;
  const stores = rows.map((r) =>
    `if (m0 + ${r}u < params.M) {\n    ${
      cols.map((j) => `if (n0 + ${j}u < params.N) { store(batch, m0 + ${r}u, n0 + ${j}u, acc${r}[${j}]); }`)
        .join("\n    ")
    }\n  }`
  ).join("\n  ");
  return PARAMS + /* wgsl */ `
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * ${tn}u;
  let m0 = gid.y * ${tm}u;
  let batch = gid.z;
  if (m0 >= params.M || n0 >= params.N) { return; }
  ${accDecl}
  ${aBase}
  ${bBase}
  for (var k = 0u; k < params.K; k++) {${step("")}
  }
  ${stores}
}
`;
}

const VEC_PARAMS = PARAMS.replace(
  "@group(0) @binding(2) var<storage, read> b: array<f32>;",
  "@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;",
);

/**
 * v3 (vec4), for B with unit column stride (NN, TN): 4 rows × 16 columns per invocation, B read as
 * vec4 along n. Requires N, ldb and B's offsets to be multiples of 4.
 */
const VEC4_N = VEC_PARAMS + /* wgsl */ `
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * 16u;
  let m0 = gid.y * 4u;
  let batch = gid.z;
  if (m0 >= params.M || n0 >= params.N) { return; }
  var acc: array<array<vec4<f32>, 4>, 4>;
  var arow: array<u32, 4>;
  for (var r = 0u; r < 4u; r++) {
    arow[r] = params.a_off + batch_a(batch) + min(m0 + r, params.M - 1u) * params.a_sm;
  }
  let nv = params.N / 4u;
  var bcol: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) { bcol[j] = min(n0 / 4u + j, nv - 1u); }
  let bbase = (params.b_off + batch_b(batch)) / 4u;
  let bstep = params.b_sk / 4u;
  for (var k = 0u; k < params.K; k++) {
    let ka = k * params.a_sk;
    let x0 = a[arow[0] + ka]; let x1 = a[arow[1] + ka]; let x2 = a[arow[2] + ka]; let x3 = a[arow[3] + ka];
    let kb = bbase + k * bstep;
    let y0 = b[kb + bcol[0]]; let y1 = b[kb + bcol[1]]; let y2 = b[kb + bcol[2]]; let y3 = b[kb + bcol[3]];
    acc[0][0] = fma(vec4(x0), y0, acc[0][0]); acc[0][1] = fma(vec4(x0), y1, acc[0][1]);
    acc[0][2] = fma(vec4(x0), y2, acc[0][2]); acc[0][3] = fma(vec4(x0), y3, acc[0][3]);
    acc[1][0] = fma(vec4(x1), y0, acc[1][0]); acc[1][1] = fma(vec4(x1), y1, acc[1][1]);
    acc[1][2] = fma(vec4(x1), y2, acc[1][2]); acc[1][3] = fma(vec4(x1), y3, acc[1][3]);
    acc[2][0] = fma(vec4(x2), y0, acc[2][0]); acc[2][1] = fma(vec4(x2), y1, acc[2][1]);
    acc[2][2] = fma(vec4(x2), y2, acc[2][2]); acc[2][3] = fma(vec4(x2), y3, acc[2][3]);
    acc[3][0] = fma(vec4(x3), y0, acc[3][0]); acc[3][1] = fma(vec4(x3), y1, acc[3][1]);
    acc[3][2] = fma(vec4(x3), y2, acc[3][2]); acc[3][3] = fma(vec4(x3), y3, acc[3][3]);
  }
  for (var r = 0u; r < 4u; r++) {
    if (m0 + r >= params.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      for (var e = 0u; e < 4u; e++) {
        let n = n0 + j * 4u + e;
        if (n < params.N) { store(batch, m0 + r, n, acc[r][j][e]); }
      }
    }
  }
}
`;

/**
 * v3 (vec4), for A and B both contiguous along k (NT): 4 rows × 16 columns per invocation, both read
 * as vec4 along k; dot products accumulate. Requires K, lda, ldb and offsets to be multiples of 4.
 */
const VEC4_K = PARAMS.replace(
  "@group(0) @binding(1) var<storage, read> a: array<f32>;",
  "@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;",
).replace(
  "@group(0) @binding(2) var<storage, read> b: array<f32>;",
  "@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;",
) + /* wgsl */ `
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * 16u;
  let m0 = gid.y * 4u;
  let batch = gid.z;
  if (m0 >= params.M || n0 >= params.N) { return; }
  var acc: array<array<f32, 16>, 4>;
  var arow: array<u32, 4>;
  for (var r = 0u; r < 4u; r++) {
    arow[r] = (params.a_off + batch_a(batch) + min(m0 + r, params.M - 1u) * params.a_sm) / 4u;
  }
  var brow: array<u32, 16>;
  for (var j = 0u; j < 16u; j++) {
    brow[j] = (params.b_off + batch_b(batch) + min(n0 + j, params.N - 1u) * params.b_sn) / 4u;
  }
  let kv = params.K / 4u;
  for (var k = 0u; k < kv; k++) {
    let x0 = a[arow[0] + k]; let x1 = a[arow[1] + k]; let x2 = a[arow[2] + k]; let x3 = a[arow[3] + k];
    for (var j = 0u; j < 16u; j++) {
      let y = b[brow[j] + k];
      acc[0][j] += dot(x0, y); acc[1][j] += dot(x1, y); acc[2][j] += dot(x2, y); acc[3][j] += dot(x3, y);
    }
  }
  for (var r = 0u; r < 4u; r++) {
    if (m0 + r >= params.M) { break; }
    for (var j = 0u; j < 16u; j++) {
      if (n0 + j < params.N) { store(batch, m0 + r, n0 + j, acc[r][j]); }
    }
  }
}
`;

/**
 * v4 (tiled): a TM×TN register block per invocation with EVERY load a vec4, along whichever
 * dimension each operand is contiguous in: A along k (NN, NT) or along m (TN); B along n (NN, TN) or
 * along k (NT). K advances 4 at a time. On llvmpipe each divergent storage load is a per-lane scalar
 * loop, so speed is set by loaded elements per FMA, 1/TM + 1/TN per lane, not by the FMAs: larger
 * blocks than v3's 4×16 pay even when the accumulators spill. Requires K and the contiguous
 * dimensions, strides and offsets to be multiples of 4 (planMatmul checks; others fall back).
 */
export function tiledSource(
  tm: number,
  tn: number,
  aAlongK: boolean,
  bAlongN: boolean,
  wgRows = 8,
  vecStore = false,
  kTail = false,
  raggedStore = false,
  textures = false,
): string {
  if (tm % 4 !== 0 || tn % 4 !== 0) {
    throw new Error(`tiled matmul block ${tm}×${tn}: both must be multiples of 4`);
  }
  const R = [...Array(tm).keys()];
  const J = [...Array(tn / 4).keys()];
  const KK = [0, 1, 2, 3];
  const lines: string[] = [];
  const aValue = (r: number, kk: number) => (aAlongK ? `a${r}[${kk}]` : `a${kk}_${r >> 2}[${r & 3}]`);
  const bVec = (kk: number, j: number) =>
    bAlongN
      ? `b${kk}_${j}`
      : `vec4(b${4 * j}[${kk}], b${4 * j + 1}[${kk}], b${4 * j + 2}[${kk}], b${4 * j + 3}[${kk}])`;
  // Base indices (in vec4 units) of the rows/columns this invocation reads, clamped at ragged edges.
  // A ragged M (A along M) or N (B along N) reads its last vec4 past the edge, inside the row: the
  // row stride is a multiple of 4, and those rows or columns are never stored.
  // With textures (v6), an operand's texel (x, y) is the vec4 at column group x of its row y.
  if (aAlongK) {
    for (const r of R) {
      lines.push(
        textures
          ? `let ar${r} = min(m0 + ${r}u, params.M - 1u);`
          : `let ar${r} = (abase + min(m0 + ${r}u, params.M - 1u) * params.a_sm) / 4u;`,
      );
    }
  } else {
    for (const g of [...Array(tm / 4).keys()]) {
      lines.push(`let ac${g} = min(m0 / 4u + ${g}u, (params.M + 3u) / 4u - 1u);`);
    }
  }
  if (bAlongN) {
    for (const j of J) lines.push(`let bc${j} = min(n0 / 4u + ${j}u, (params.N + 3u) / 4u - 1u);`);
  } else {
    for (const c of [...Array(tn).keys()]) {
      lines.push(
        textures
          ? `let br${c} = min(n0 + ${c}u, params.N - 1u);`
          : `let br${c} = (bbase + min(n0 + ${c}u, params.N - 1u) * params.b_sn) / 4u;`,
      );
    }
  }
  /**
   * One iteration over k … k + 3. The tail (K not a multiple of 4, after the loop) clamps the rows it
   * reads along k to K − 1 and keeps the accumulators where k + kk ≥ K; a vec4 along k reads past K
   * inside the row, whose stride is a multiple of 4.
   */
  const iteration = (tail: boolean): string[] => {
    const row = (kk: number) => tail ? `min(k + ${kk}u, params.K - 1u)` : `(k + ${kk}u)`;
    const body: string[] = [];
    const aAt = (row: string, col: string) =>
      textures
        ? `textureLoad(ta, vec2(${col}, ${row}), 0)`
        : `a[(abase + ${row} * params.a_sk) / 4u + ${col}]`;
    const bAt = (row: string, col: string) =>
      textures
        ? `textureLoad(tb, vec2(${col}, ${row}), 0)`
        : `b[(bbase + ${row} * params.b_sk) / 4u + ${col}]`;
    if (aAlongK) {
      for (const r of R) {
        body.push(`let a${r} = ${textures ? `textureLoad(ta, vec2(k4, ar${r}), 0)` : `a[ar${r} + k4]`};`);
      }
    } else {
      for (const kk of KK) {
        for (const g of [...Array(tm / 4).keys()]) body.push(`let a${kk}_${g} = ${aAt(row(kk), `ac${g}`)};`);
      }
    }
    if (bAlongN) {
      for (const kk of KK) {
        for (const j of J) body.push(`let b${kk}_${j} = ${bAt(row(kk), `bc${j}`)};`);
      }
    } else {
      for (const c of [...Array(tn).keys()]) {
        body.push(`let b${c} = ${textures ? `textureLoad(tb, vec2(k4, br${c}), 0)` : `b[br${c} + k4]`};`);
      }
    }
    for (const kk of KK) {
      if (tail) body.push(`let in${kk} = k + ${kk}u < params.K;`);
      for (const r of R) {
        for (const j of J) {
          const product = `fma(vec4(${aValue(r, kk)}), ${bVec(kk, j)}, acc${r}_${j})`;
          body.push(`acc${r}_${j} = ${tail ? `select(acc${r}_${j}, ${product}, in${kk})` : product};`);
        }
      }
    }
    return body;
  };
  const tailBlock = kTail
    ? `if (k < params.K) {\n    let k4 = k / 4u;\n    ${iteration(true).join("\n    ")}\n  }`
    : "";
  const vecStores = J.map((j) => `let bias_${j} = bias4(n0 + ${4 * j}u);`).concat(
    R.map((r) =>
      `if (m0 + ${r}u < params.M) {\n    ${
        J.map((j) =>
          raggedStore
            ? `if (n0 + ${4 * j + 3}u < params.N) { store4(batch, m0 + ${r}u, n0 + ${
              4 * j
            }u, acc${r}_${j}, bias_${j}); }` +
              ` else if (n0 + ${4 * j}u < params.N) { store_tail(batch, m0 + ${r}u, n0 + ${
                4 * j
              }u, acc${r}_${j}); }`
            : `if (n0 + ${4 * j}u < params.N) { store4(batch, m0 + ${r}u, n0 + ${
              4 * j
            }u, acc${r}_${j}, bias_${j}); }`
        )
          .join("\n    ")
      }\n  }`
    ),
  ).join("\n  ");
  const stores = vecStore
    ? vecStores
    : R.map((r) =>
      `if (m0 + ${r}u < params.M) {\n    ${
        J.map((j) =>
          [0, 1, 2, 3].map((e) =>
            `if (n0 + ${4 * j + e}u < params.N) { store(batch, m0 + ${r}u, n0 + ${
              4 * j + e
            }u, acc${r}_${j}[${e}]); }`
          ).join("\n    ")
        ).join("\n    ")
      }\n  }`
    ).join("\n  ");
  let vecA = PARAMS.replace(
    "@group(0) @binding(1) var<storage, read> a: array<f32>;",
    textures
      ? "@group(0) @binding(1) var ta: texture_2d<f32>;"
      : "@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;",
  ).replace(
    "@group(0) @binding(2) var<storage, read> b: array<f32>;",
    textures
      ? "@group(0) @binding(2) var tb: texture_2d<f32>;"
      : "@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;",
  );
  if (vecStore) {
    vecA = vecA.replace(
      "@group(0) @binding(4) var<storage, read_write> c: array<f32>;",
      "@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;",
    ).replace(STORE, raggedStore ? STORE4 + STORE4_TAIL : STORE4);
  }
  return vecA + /* wgsl */ `
@compute @workgroup_size(8, ${wgRows})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * ${tn}u;
  let m0 = gid.y * ${tm}u;
  let batch = gid.z;
  if (m0 >= params.M || n0 >= params.N) { return; }
  let abase = params.a_off + batch_a(batch);
  let bbase = params.b_off + batch_b(batch);
  ${R.map((r) => J.map((j) => `var acc${r}_${j} = vec4(0.0);`).join(" ")).join("\n  ")}
  ${lines.join("\n  ")}
  var k = 0u;
  for (; k + 4u <= params.K; k += 4u) {
    let k4 = k / 4u;
    ${iteration(false).join("\n    ")}
  }
  ${tailBlock}
  ${stores}
}
`;
}

export type MatmulVersion = KernelVersion<"matmul">;

export interface MatmulSpec {
  label: string;
  /** op(A) is M×K; A is stored M×K, or K×M when transA. */
  a: Tensor;
  /** op(B) is K×N; B is stored K×N, or N×K when transB. */
  b: Tensor;
  c: Tensor;
  bias?: Tensor;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** Row strides (elements); default: packed. */
  lda?: number;
  ldb?: number;
  ldc?: number;
  batch?: number;
  batchStrideA?: number;
  batchStrideB?: number;
  batchStrideC?: number;
  /**
   * Two-level batch: batch index z = outer · batchSplit + inner; strides above are per outer index and
   * these per inner index (e.g. sequences × heads over one qkv buffer).
   */
  batchSplit?: number;
  innerStrideA?: number;
  innerStrideB?: number;
  innerStrideC?: number;
  alpha?: number;
  /** 0 overwrites C; 1 accumulates into it. */
  beta?: number;
  version?: MatmulVersion;
  /** Fused elementwise op after the product (see the header); aux is GELU's output or input. */
  epilogue?: { kind: "gelu" | "gelu-grad"; aux: Tensor };
  /**
   * Register block (rows, columns) per invocation of v2 (blocked) and v4 (tiled); for v4 an optional
   * third entry is the workgroup's height in invocations (its width is 8).
   */
  block?: TiledBlock;
}

export const BLOCK_ROWS = 4;
export const BLOCK_COLS = 16;

/** Rows × columns per invocation, optionally the workgroup height (default 8; the width is 8). */
export type TiledBlock = [number, number] | [number, number, number];

/** Register block of v4 (tiled) per layout, when the caller gives none (see setTiledBlocks). */
const tiledBlocks: Record<string, TiledBlock> = { NN: [16, 16], NT: [16, 16], TN: [16, 16], TT: [16, 16] };

/** Overrides v4's (tiled) default block per layout ("NN", "NT", "TN"), e.g. from an autotune. */
export function setTiledBlocks(blocks: Partial<Record<string, TiledBlock>>): void {
  for (const [layout, block] of Object.entries(blocks)) if (block) tiledBlocks[layout] = block;
}

/**
 * The layout's block, narrowed for small N so the 8 invocations across a workgroup row (one SIMD
 * vector on llvmpipe) all get columns: attention's per-head products have N = T or head size. And a
 * product of few workgroups gets shorter ones (down to 2 rows of invocations, and only where that adds
 * workgroups) until it has FEW_GROUPS: llvmpipe runs a workgroup on one thread, so a weight gradient of
 * one or three workgroups (width 128 over 512 rows) left a thread idle for all or a third of it. Every
 * invocation still computes the same block with the same sums, so the bits do not change.
 */
function tiledBlock(layout: string, M: number, N: number, batch: number): TiledBlock {
  const [tm, tn, rows = 8] = tiledBlocks[layout];
  const narrow = Math.max(4, Math.floor(N / 32) * 4);
  const cols = Math.min(tn, narrow);
  const groups = (h: number) => Math.ceil(N / (cols * 8)) * Math.ceil(M / (tm * h)) * batch;
  let height = rows;
  while (height > 2 && height % 2 === 0 && groups(height) < FEW_GROUPS) height /= 2;
  // A height that adds no workgroups would only make each one smaller.
  while (height < rows && groups(2 * height) === groups(height)) height *= 2;
  return [tm, cols, height];
}

/** Fewer workgroups than this (two for each of llvmpipe's threads here), and tiledBlock makes them shorter. */
const FEW_GROUPS = 4;

const dummies = new WeakMap<GPUDevice, Tensor>();

function dummy(gpu: Gpu): Tensor {
  let t = dummies.get(gpu.device);
  if (!t) dummies.set(gpu.device, t = createTensor(gpu, 4, "unused"));
  return t;
}

/** Refuses tensors shorter than the elements the product reads or writes (`c` also bounds the aux). */
function checkLengths(s: MatmulSpec, need: { a: number; b: number; c: number }): void {
  const check = (t: Tensor, n: number, what: string) => {
    if (t.length < n) throw new Error(`${s.label}: ${what} ${t.label} has ${t.length} elements, needs ${n}`);
  };
  check(s.a, need.a, "A");
  check(s.b, need.b, "B");
  check(s.c, need.c, "C");
  if (s.bias) check(s.bias, s.N, "bias");
  if (s.epilogue) {
    check(s.epilogue.aux, need.c, "epilogue aux");
    if (s.epilogue.aux.buffer === s.c.buffer) {
      throw new Error(`${s.label}: the epilogue's aux ${s.epilogue.aux.label} must not share C's buffer`);
    }
  }
}

/** Refuses a version planMatmul does not plan, or one the operands' layout does not allow. */
function checkVersion(
  label: string,
  version: string,
  can: { textures: boolean; vec: boolean; tiled: boolean },
) {
  if (version === "v5") throw new Error(`${label}: matmul v5 (split-K) is planned by planMatmulSplitK`);
  if ((version === "v6") !== can.textures) {
    throw new Error(`${label}: matmul v6 (texture operands) is planned by planMatmulTextures`);
  }
  if (!["v1", "v2", "v3", "v4", "v6"].includes(version)) {
    throw new Error(
      `${label}: matmul version ${version} is unknown (v1, v2, v3, v4; v5 via planMatmulSplitK, v6 via ` +
        "planMatmulTextures)",
    );
  }
  if (version === "v3" && !can.vec) throw new Error(`${label}: v3 (vec4) matmul needs aligned shapes`);
  if ((version === "v4" || version === "v6") && !can.tiled) {
    throw new Error(`${label}: ${version} (tiled) matmul needs aligned shapes`);
  }
}

/**
 * One launch of matmul v1–v4 (spec.version, or the automatic choice). With `textures` (only from
 * planMatmulTextures, kernels/ops/matmul-texture.ts) it plans v6: v4's kernel reading A and B from those
 * texture views, which hold the operands' rows as packed there.
 */
export function planMatmul(
  gpu: Gpu,
  s: MatmulSpec,
  textures?: { a: GPUTextureView; b: GPUTextureView; aux?: GPUTextureView },
): Launch {
  const { M, N, K } = s;
  const transA = s.transA ?? false;
  const transB = s.transB ?? false;
  const lda = s.lda ?? (transA ? M : K);
  const ldb = s.ldb ?? (transB ? K : N);
  const ldc = s.ldc ?? N;
  const batch = s.batch ?? 1;
  const batchA = s.batchStrideA ?? M * K;
  const batchB = s.batchStrideB ?? K * N;
  const batchC = s.batchStrideC ?? M * N;
  const split = s.batchSplit ?? 1;
  const innerA = s.innerStrideA ?? 0;
  const innerB = s.innerStrideB ?? 0;
  const innerC = s.innerStrideC ?? 0;
  if (batch % split !== 0) {
    throw new Error(`${s.label}: batch ${batch} is not a multiple of batchSplit ${split}`);
  }
  // The last element each tensor's last batch index reaches, from its offsets along the two batch levels.
  const last = (outer: number, inner: number) => (batch / split - 1) * outer + (split - 1) * inner;
  checkLengths(s, {
    a: last(batchA, innerA) + (transA ? (K - 1) * lda + M : (M - 1) * lda + K),
    b: last(batchB, innerB) + (transB ? (N - 1) * ldb + K : (K - 1) * ldb + N),
    c: last(batchC, innerC) + (M - 1) * ldc + N,
  });

  const a = bindTensor(gpu, s.a);
  const b = bindTensor(gpu, s.b);
  const bias = bindTensor(gpu, s.bias ?? dummy(gpu));
  const c = bindTensor(gpu, s.c);
  const aux = s.epilogue ? bindTensor(gpu, s.epilogue.aux) : undefined;
  const aSk = transA ? lda : 1;
  const bSk = transB ? 1 : ldb;
  const bSn = transB ? ldb : 1;
  const four = (...xs: number[]) => xs.every((x) => x % 4 === 0);
  // A batch stride only moves an operand when its batch index can be non-zero.
  const outer = (stride: number) => batch / split > 1 ? stride : 0;
  const inner = (stride: number) => split > 1 ? stride : 0;
  // vec4 loads need every address they touch to be a multiple of 4 elements.
  const vecN = bSn === 1 && four(N, bSk, b.base, batchB, innerB);
  const vecK = !transA && transB && four(K, lda, ldb, a.base, b.base, batchA, batchB, innerA, innerB);
  // v4 reads both operands as vec4 along their contiguous dimension, 4 k at a time.
  // Any M, N and K: the rows of each operand must start 4-aligned (a ragged edge is read past, inside
  // the row, and a K tail runs after the loop).
  const aRows = four(lda, a.base, outer(batchA), inner(innerA));
  const bRows = four(ldb, b.base, outer(batchB), inner(innerB));
  const aAlongK = !transA && aRows;
  const aAlongM = transA && aRows;
  const bAlongN = !transB && bRows;
  const bAlongK = transB && bRows;
  const tiled = (aAlongK || aAlongM) && (bAlongN || bAlongK);
  // v4 stores vec4s when every C (and aux) row start it writes is 4-aligned.
  // A ragged N stores its last column group element by element (no bias or epilogue there).
  const vecStore = four(ldc, c.base, outer(batchC), inner(innerC)) &&
    (aux === undefined || aux.base % 4 === 0) && (N % 4 === 0 || (!s.bias && !s.epilogue));
  const version = s.version ?? (tiled ? "v4" : vecN || vecK ? "v3" : "v2");
  checkVersion(s.label, version, { textures: textures !== undefined, vec: vecN || vecK, tiled });
  const tiledVersion = version === "v4" || version === "v6";
  const layout = `${transA ? "T" : "N"}${transB ? "T" : "N"}`;
  const [tm, tn, wgRows = 8] = version === "v3"
    ? [4, 16]
    : tiledVersion
    ? s.block ?? tiledBlock(layout, M, N, batch)
    : s.block ?? [BLOCK_ROWS, BLOCK_COLS];
  // tiledSource's vecStore, kTail, raggedStore and textures.
  const tiledFlags = [vecStore, K % 4 !== 0, vecStore && N % 4 !== 0, !!textures] as const;
  const kernel = version === "v1"
    ? NAIVE
    : version === "v3"
    ? (vecN ? VEC4_N : VEC4_K)
    : tiledVersion
    ? tiledSource(tm, tn, aAlongK, bAlongN, wgRows, ...tiledFlags)
    : blockedSource(tm, tn);
  if (textures?.aux && !vecStore) throw new Error(`${s.label}: aux from a texture needs vec4 stores`);
  const code = s.epilogue ? withEpilogue(kernel, s.epilogue.kind, textures?.aux !== undefined) : kernel;
  const workgroups: [number, number, number] = version === "v1"
    ? [Math.ceil(N / 16), Math.ceil(M / 16), batch]
    : [Math.ceil(N / (tn * 8)), Math.ceil(M / (tm * wgRows)), batch];
  return plan(gpu, {
    label: s.label,
    code,
    params: {
      M,
      N,
      K,
      has_bias: s.bias ? 1 : 0,
      a_off: a.base,
      b_off: b.base,
      c_off: c.base,
      bias_off: bias.base,
      a_sm: transA ? 1 : lda,
      a_sk: aSk,
      b_sk: bSk,
      b_sn: bSn,
      ldc,
      batch_a: batchA,
      batch_b: batchB,
      batch_c: batchC,
      split,
      inner_a: innerA,
      inner_b: innerB,
      inner_c: innerC,
      alpha: s.alpha ?? 1,
      beta: s.beta ?? 0,
      aux_off: aux?.base ?? 0,
    },
    bindings: [
      textures?.a ?? a.binding,
      textures?.b ?? b.binding,
      bias.binding,
      c.binding,
      ...(aux ? [textures?.aux ?? aux.binding] : []),
    ],
    workgroups,
    family: "matmul",
    flops: 2 * M * N * K * batch,
    bytes: 4 * batch * (M * K + K * N + M * N),
  });
}

const SPLIT_K_REDUCE = /* wgsl */ `
struct Params { M: u32, N: u32, splits: u32, ldc: u32, c_off: u32, p_off: u32, alpha: f32, beta: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.y * groups.x * 64u + gid.x;
  let size = params.M * params.N;
  if (i >= size) { return; }
  var acc = 0.0;
  for (var s = 0u; s < params.splits; s++) { acc += partial[params.p_off + s * size + i]; }
  let ci = params.c_off + (i / params.N) * params.ldc + i % params.N;
  var v = params.alpha * acc;
  if (params.beta != 0.0) { v += params.beta * c[ci]; }
  c[ci] = v;
}
`;

/**
 * How many slices v5 (split-K) cuts K into for a TN product: 2 where K is long beside the output
 * (weight gradients over the batch's rows), so v4's few output workgroups double and balance across
 * threads; 1 (plain v4) otherwise, where the slices would lose v4's 4-alignment, or for outputs
 * taller than wide (M > N), where splitting measured no faster than v4 (README, performance).
 */
export function splitKSlices(M: number, N: number, K: number): number {
  return K >= 1024 && K >= 2 * N && M <= N && K % 8 === 0 ? 2 : 1;
}

/**
 * v5 (split-K, see the header): the v4 products of each slice of K into `scratch` (splits · M · N
 * floats; allocated when not given, and may be shared by products that run one after another), then
 * the reduction into C. Batch 1, no bias or epilogue; K must split into slices that are multiples of 4.
 */
export function planMatmulSplitK(
  gpu: Gpu,
  s: MatmulSpec & { splits: number; scratch?: Tensor },
): Dispatch[] {
  const { lda, ldb, scratch, slice } = splitKLayout(gpu, s);
  const products = planMatmul(gpu, {
    ...s,
    K: slice,
    lda,
    ldb,
    c: scratch,
    ldc: s.N,
    alpha: 1,
    beta: 0,
    version: "v4",
    batch: s.splits,
    batchStrideA: slice * (s.transA ? lda : 1),
    batchStrideB: slice * (s.transB ? 1 : ldb),
    batchStrideC: s.M * s.N,
  });
  return [products, planSplitKSum(gpu, s, scratch)];
}

/**
 * v5's checks and layout: the operands' row strides, the scratch (allocated when not given), and the
 * length of each slice of K.
 */
export function splitKLayout(
  gpu: Gpu,
  s: MatmulSpec & { splits: number; scratch?: Tensor },
): { lda: number; ldb: number; scratch: Tensor; slice: number } {
  const { M, N, K, splits } = s;
  if (!Number.isInteger(splits) || splits < 1) {
    throw new Error(`${s.label}: split-K splits ${splits} must be a positive integer`);
  }
  if (K % (4 * splits) !== 0) {
    throw new Error(`${s.label}: split-K needs K (${K}) to be a multiple of 4 · splits (${4 * splits})`);
  }
  if ((s.batch ?? 1) !== 1 || s.bias || s.epilogue || s.version) {
    throw new Error(`${s.label}: split-K takes batch 1, no bias, no epilogue and no version`);
  }
  const scratch = s.scratch ?? createTensor(gpu, splits * M * N, `${s.label} split-K slices`);
  if (scratch.length < splits * M * N) {
    throw new Error(
      `${s.label}: split-K scratch ${scratch.label} has ${scratch.length} elements, needs ${splits * M * N}`,
    );
  }
  // Slice z of K starts slice · (stride along k) into each operand: a row of A (TN) or B (NN), or a column.
  const lda = s.lda ?? (s.transA ? M : K);
  const ldb = s.ldb ?? (s.transB ? K : N);
  return { lda, ldb, scratch, slice: K / splits };
}

/** v5's second pass: C = alpha · Σ the scratch's slices, in slice order, + beta · C. */
export function planSplitKSum(gpu: Gpu, s: MatmulSpec & { splits: number }, scratch: Tensor): Dispatch {
  const { M, N, splits } = s;
  const partial = bindTensor(gpu, scratch);
  const c = bindTensor(gpu, s.c);
  return plan(gpu, {
    label: `${s.label} (split-K sum)`,
    code: SPLIT_K_REDUCE,
    params: {
      M,
      N,
      splits,
      ldc: s.ldc ?? N,
      c_off: c.base,
      p_off: partial.base,
      alpha: s.alpha ?? 1,
      beta: s.beta ?? 0,
    },
    bindings: [partial.binding, c.binding],
    workgroups: grid1d(gpu, M * N, 64),
    family: "matmul",
    flops: splits * M * N,
    bytes: 4 * (splits + 2) * M * N,
  });
}
