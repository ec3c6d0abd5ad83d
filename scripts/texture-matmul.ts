/**
 * Where a matrix product's time goes on this adapter: one shape, one register block, its operands read from
 * storage buffers, from `rgba32float` textures, B from a uniform buffer (where it fits one binding), or
 * not at all (the same FMAs on loop-invariant values), and from an `r32float` texture with each lane a
 * column; beside the engine's own matmul (planMatmul, its autotuned choice), all in one run. The measurement
 * behind the README's paragraph on llvmpipe's ceiling; not a kernel of the engine (none is used in training).
 *
 *   deno run -A scripts/texture-matmul.ts [--shape M,K,N] [--block TM,TN] [--reps N]
 *
 * Each variant checks four entries of C against a float64 dot product before it is timed; GFLOP/s count
 * 2·M·N·K per product over the wall time of `reps` products in one submit.
 */
import { parseArgs } from "node:util";
import { getGpu } from "../kernels/device.ts";
import { planMatmul } from "../kernels/ops/matmul.ts";
import { createTensor, readTensor, writeTensor } from "../kernels/runtime.ts";
import { Timer } from "../kernels/bench/timer.ts";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "2048,128,512" },
    block: { type: "string", default: "8,16" },
    reps: { type: "string", default: "20" },
  },
});
const [M, K, N] = values.shape!.split(",").map(Number);
const [TM, TN] = values.block!.split(",").map(Number);
const reps = Number(values.reps);
if (
  ![M, K, N, TM, TN, reps].every((v) => Number.isInteger(v) && v > 0) || K % 4 || N % (TN * 8) ||
  M % (TM * 8) || TN % 4
) {
  console.error(
    "texture-matmul: --shape M,K,N and --block TM,TN need K % 4 = 0, N % (8·TN) = 0, M % (8·TM) = 0, TN % 4 = 0",
  );
  Deno.exit(2);
}
const gpu = await getGpu();
const device = gpu.device;
const A = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
const B = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));

type Variant = "buffers" | "uniform" | "textures" | "registers" | "lanes";
/** B in a uniform buffer: llvmpipe gathers its loads without the per-lane bounds-check loop of storage. */
const uniformBytes = device.limits.maxUniformBufferBindingSize;
const uniformFits = K * N * 4 <= uniformBytes;
const R = [...Array(TM).keys()];
const KK = [0, 1, 2, 3];

/** The TM×TN block per invocation, 4 k per iteration; `registers` loads once before the loop. */
function blockSource(variant: Exclude<Variant, "lanes">): string {
  const J = [...Array(TN / 4).keys()];
  const texture = variant === "textures" || variant === "registers";
  const a = (r: number) =>
    texture ? `textureLoad(ta, vec2<u32>(k4, m0 + ${r}u), 0)` : `ta[(m0 + ${r}u) * ${K / 4}u + k4]`;
  const b = (kk: number, j: number) =>
    texture
      ? `textureLoad(tb, vec2<u32>(n4 + ${j}u, k4 * 4u + ${kk}u), 0)`
      : `tb[(k4 * 4u + ${kk}u) * ${N / 4}u + n4 + ${j}u]`;
  const loads = [
    ...R.map((r) => `let a${r} = ${a(r)};`),
    ...KK.flatMap((kk) => J.map((j) => `let b${kk}_${j} = ${b(kk, j)};`)),
  ];
  const fmas = KK.flatMap((kk) =>
    R.flatMap((r) => J.map((j) => `acc${r}_${j} = fma(vec4(a${r}[${kk}]), b${kk}_${j}, acc${r}_${j});`))
  );
  const loop = variant === "registers"
    ? `let k4 = gid.x & 1u;\n  ${loads.join(" ")}\n  for (var i = 0u; i < ${K / 4}u; i++) {\n    ${
      fmas.join("\n    ")
    }\n  }`
    : `for (var k4 = 0u; k4 < ${K / 4}u; k4++) {\n    ${loads.join(" ")}\n    ${fmas.join("\n    ")}\n  }`;
  const bindings = texture
    ? "@group(0) @binding(0) var ta: texture_2d<f32>;\n@group(0) @binding(1) var tb: texture_2d<f32>;"
    : "@group(0) @binding(0) var<storage, read> ta: array<vec4<f32>>;\n" +
      (variant === "uniform"
        ? `@group(0) @binding(1) var<uniform> tb: array<vec4<f32>, ${K * N / 4}>;`
        : "@group(0) @binding(1) var<storage, read> tb: array<vec4<f32>>;");
  return `${bindings}
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = gid.x * ${TN / 4}u;
  let m0 = gid.y * ${TM}u;
  ${R.map((r) => J.map((j) => `var acc${r}_${j} = vec4<f32>(0.0);`).join(" ")).join("\n  ")}
  ${loop}
  ${
    R.map((r) => J.map((j) => `c[(m0 + ${r}u) * ${N / 4}u + n4 + ${j}u] = acc${r}_${j};`).join(" ")).join(
      "\n  ",
    )
  }
}`;
}

/** Each lane one column (B an r32float texture, A the same for the 8 lanes of a row), TM×TN per invocation. */
function lanesSource(): string {
  const J = [...Array(TN).keys()];
  return `@group(0) @binding(0) var ta: texture_2d<f32>;
@group(0) @binding(1) var tb: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(8, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let n0 = wid.x * ${8 * TN}u + lid.x;
  let m0 = (wid.y * 8u + lid.y) * ${TM}u;
  ${R.map((r) => J.map((j) => `var acc${r}_${j} = 0.0;`).join(" ")).join("\n  ")}
  for (var k4 = 0u; k4 < ${K / 4}u; k4++) {
    ${R.map((r) => `let a${r} = textureLoad(ta, vec2<u32>(k4, m0 + ${r}u), 0);`).join(" ")}
    ${
    KK.flatMap((kk) =>
      J.map((j) => `let b${kk}_${j} = textureLoad(tb, vec2<u32>(n0 + ${8 * j}u, k4 * 4u + ${kk}u), 0).x;`)
    ).join(" ")
  }
    ${
    KK.flatMap((kk) =>
      R.flatMap((r) => J.map((j) => `acc${r}_${j} = fma(a${r}[${kk}], b${kk}_${j}, acc${r}_${j});`))
    ).join("\n    ")
  }
  }
  ${
    R.map((r) => J.map((j) => `c[(m0 + ${r}u) * ${N}u + n0 + ${8 * j}u] = acc${r}_${j};`).join(" ")).join(
      "\n  ",
    )
  }
}`;
}

function texture(
  data: Float32Array,
  rows: number,
  cols: number,
  format: "rgba32float" | "r32float",
): GPUTextureView {
  const width = format === "r32float" ? cols : cols / 4;
  const t = device.createTexture({
    size: [width, rows],
    format,
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
  });
  device.queue.writeTexture({ texture: t }, data, { bytesPerRow: cols * 4, rowsPerImage: rows }, [
    width,
    rows,
  ]);
  return t.createView();
}

function buffer(data: Float32Array, usage: number = GPUBufferUsage.STORAGE): GPUBufferBinding {
  const buffer = device.createBuffer({
    size: data.byteLength,
    usage: usage | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, data);
  return { buffer };
}

const c = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
const readback = device.createBuffer({
  size: M * N * 4,
  usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
});

/** `count` launches in one pass and one submit, then C read back: wall ms and C. */
async function launch(
  pipeline: GPUComputePipeline,
  group: GPUBindGroup,
  groups: [number, number],
  count: number,
) {
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  for (let i = 0; i < count; i++) pass.dispatchWorkgroups(...groups);
  pass.end();
  encoder.copyBufferToBuffer(c, 0, readback, 0, M * N * 4);
  const t0 = performance.now();
  device.queue.submit([encoder.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  return { ms: performance.now() - t0, out };
}

/**
 * The worst error of four entries of C against a float64 dot product; a variant that computes something
 * else (beyond float32 rounding of K terms of magnitude ≤ 1) stops the run, so no wrong kernel is timed.
 */
function worstError(out: Float32Array): number {
  let worst = 0;
  for (const [m, n] of [[0, 0], [M - 1, N - 1], [M >> 1, N >> 2], [7, 13]]) {
    let s = 0;
    for (let k = 0; k < K; k++) s += A[m * K + k] * B[k * N + n];
    worst = Math.max(worst, Math.abs(s - out[m * N + n]));
  }
  if (!(worst <= K * 1e-6)) {
    console.error(`texture-matmul: C is wrong (error ${worst} against float64, allowed ${K * 1e-6})`);
    Deno.exit(1);
  }
  return worst;
}

const gflops = (ms: number, count: number) => (2 * M * N * K * count) / (ms / 1000) / 1e9;

async function measure(variant: Variant): Promise<string> {
  const lanes = variant === "lanes";
  const module = device.createShaderModule({ code: lanes ? lanesSource() : blockSource(variant) });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const operands = variant === "buffers" || variant === "uniform"
    ? [buffer(A), buffer(B, variant === "uniform" ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE)]
    : [texture(A, M, K, "rgba32float"), texture(B, K, N, lanes ? "r32float" : "rgba32float")];
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: operands[0] }, { binding: 1, resource: operands[1] }, {
      binding: 2,
      resource: { buffer: c },
    }],
  });
  const groups: [number, number] = [N / TN / 8, M / TM / 8];
  const first = await launch(pipeline, group, groups, 1);
  const error = variant === "registers"
    ? "(not a product)"
    : `error ${worstError(first.out).toExponential(1)}`;
  const { ms } = await launch(pipeline, group, groups, reps);
  return `${variant.padEnd(10)} ${(ms / reps).toFixed(2).padStart(7)} ms ${
    gflops(ms, reps).toFixed(1).padStart(6)
  } GFLOP/s  ${error}`;
}

async function engine(): Promise<string> {
  const [a, b, out] = [
    createTensor(gpu, M * K, "A"),
    createTensor(gpu, K * N, "B"),
    createTensor(gpu, M * N, "C"),
  ];
  writeTensor(gpu, a, A);
  writeTensor(gpu, b, B);
  const d = planMatmul(gpu, { label: "engine", M, N, K, a, b, c: out });
  const timer = new Timer(gpu);
  await timer.wall([d], 1);
  const error = worstError(await readTensor(gpu, out));
  const ms = await timer.wall([d], reps);
  return `${"engine v4".padEnd(10)} ${ms.toFixed(2).padStart(7)} ms ${
    gflops(ms, 1).toFixed(1).padStart(6)
  } GFLOP/s  error ${error.toExponential(1)} (planMatmul, its autotuned block)`;
}

console.log(
  `${gpu.adapterName}: C = A·B, ${M}×${K} · ${K}×${N}, block ${TM}×${TN}, ${reps} products a submit`,
);
for (let round = 0; round < 2; round++) {
  for (const variant of ["buffers", "uniform", "textures", "registers", "lanes"] as const) {
    if (variant === "uniform" && !uniformFits) {
      console.log(
        `uniform    skipped: B is ${K * N * 4 / 1024} KiB, over the ${uniformBytes / 1024} KiB uniform ` +
          `binding (a shape with K·N·4 within it, e.g. --shape 2048,128,128)`,
      );
      continue;
    }
    console.log(await measure(variant));
  }
  console.log(await engine());
}
