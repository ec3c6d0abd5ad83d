/**
 * matmul v6 (texture operands): v4's kernel (the same register block, the same sums in the same order,
 * so the same bits) reading A and B from `rgba32float` textures instead of storage buffers. Each product
 * first packs its two operands, a row-major matrix each, into textures: texel (x, y) is the vec4 of
 * columns 4x … 4x + 3 of row y, the operand's contiguous dimension along x (A along k for NN and NT, along
 * m for TN; B along n for NN and TN, along k for NT). So a product is three steps: pack A, pack B, the
 * product. A pack is a buffer-to-texture copy where WebGPU allows one (rows 256 bytes apart: a row stride
 * that is a multiple of 64 floats, as the model's widths 64, 128, 192 … give), else the PACK launch below.
 * On llvmpipe the copy is a memcpy: a 2048 × 256 operand took 0.7 ms against the launch's 4.5 ms on the
 * AVX2 host, and 64/2's training step went from 445 to 377 ms.
 *
 * Why: on llvmpipe every storage-buffer load whose address differs between invocations is a loop over
 * the SIMD lanes with a bounds check and branches, while a texel fetch is not. How much that costs depends
 * on the CPU: on an AVX2 EPYC (Zen 3) v4 ran a 2048 × 128 · 128 × 512 product at 3.2 GFLOP/s and the same
 * block from textures at 10.9; on an AVX-512 EPYC 1.0–1.2× (README, "Where llvmpipe's ceiling is"). The
 * packs read each operand once; the product reads it M/TM or N/TN times.
 *
 * Batch 1 only, operands whose rows start 4-aligned (v4's condition), and each operand's texture within
 * the device's maxTextureDimension2D (columns / 4 wide, rows high); planMatmulTextures refuses others, and
 * planProduct plans v4 for them. The textures are pooled per device by operand and size, so a model's
 * products add one copy of each distinct operand shape to adapter memory (not counted by memory.ts).
 */
import type { Gpu } from "../device.ts";
import { bindTensor, type Dispatch, plan, planTextureCopy, slice, type Tensor } from "../runtime.ts";
import { type MatmulSpec, planMatmul, planMatmulSplitK, planSplitKSum, splitKLayout } from "./matmul.ts";

/** Copies `rows` rows of `cols4` vec4s (row stride ld4 vec4s, from base4) into a texture, texel (x, y). */
const PACK = /* wgsl */ `
struct Params { rows: u32, cols4: u32, ld4: u32, base4: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= params.cols4 || gid.y >= params.rows) { return; }
  textureStore(dst, vec2(gid.x, gid.y), src[params.base4 + gid.y * params.ld4 + gid.x]);
}
`;

/** One operand as the product reads it: `rows` rows of `cols` contiguous elements, row stride `ld`. */
interface Operand {
  tensor: Tensor;
  rows: number;
  cols: number;
  ld: number;
}

/**
 * Textures by device, operand (A or B) and size. Products of one size share them: a product packs its
 * operands right before it reads them and launches run in queue order, so the next product's packs wait
 * for this one's reads. A and B never share (a product may have two operands of one size).
 */
const pools = new WeakMap<GPUDevice, Map<string, GPUTexture>>();

function pooledTexture(gpu: Gpu, role: "A" | "B", width: number, rows: number): GPUTexture {
  let pool = pools.get(gpu.device);
  if (!pool) pools.set(gpu.device, pool = new Map());
  const key = `${role} ${width}×${rows}`;
  let texture = pool.get(key);
  if (!texture) {
    texture = gpu.device.createTexture({
      label: `matmul v6 ${key}`,
      size: [width, rows],
      format: "rgba32float",
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    pool.set(key, texture);
  }
  return texture;
}

/** Why an operand cannot be a texture (its rows not 4-aligned, or too wide or tall), or undefined. */
function unfit(gpu: Gpu, o: Operand): string | undefined {
  const width = Math.ceil(o.cols / 4);
  const max = gpu.device.limits.maxTextureDimension2D;
  if (width > max || o.rows > max) {
    return `needs a ${width} × ${o.rows} texture, over this device's maxTextureDimension2D (${max}); use v4`;
  }
  const base = bindTensor(gpu, o.tensor).base;
  if (base % 4 !== 0 || o.ld % 4 !== 0) {
    return `needs 4-aligned operand rows (offset ${base}, stride ${o.ld})`;
  }
}

/**
 * The step that packs an operand into its pooled texture, and the texture's view: a copy where WebGPU
 * allows one from the operand's layout (rows 256-byte apart, the last texel inside the buffer), else
 * the PACK launch. Both put the same texels in the texture.
 */
function packed(
  gpu: Gpu,
  label: string,
  role: "A" | "B",
  o: Operand,
): { view: GPUTextureView; dispatch: Dispatch } {
  const width = Math.ceil(o.cols / 4);
  const texture = pooledTexture(gpu, role, width, o.rows);
  const view = texture.createView();
  const bytes = 8 * width * 4 * o.rows;
  const offset = o.tensor.offset * 4;
  const last = offset + o.ld * 4 * (o.rows - 1) + width * 16;
  if ((o.ld * 4) % 256 === 0 && offset % 16 === 0 && last <= o.tensor.buffer.size) {
    const copy = {
      buffer: o.tensor.buffer,
      offset,
      bytesPerRow: o.ld * 4,
      texture,
      size: [width, o.rows] as [number, number],
    };
    return { view, dispatch: planTextureCopy(label, copy, bytes, "matmul") };
  }
  const src = bindTensor(gpu, o.tensor);
  const dispatch = plan(gpu, {
    label,
    code: PACK,
    params: { rows: o.rows, cols4: width, ld4: o.ld / 4, base4: src.base / 4 },
    bindings: [src.binding, view],
    workgroups: [Math.ceil(width / 8), Math.ceil(o.rows / 8)],
    family: "matmul",
    bytes,
  });
  return { view, dispatch };
}

/**
 * v6 (see the header): pack A, pack B, then the product, as three steps to run in that order (launches
 * may share a pass; a copy runs between passes). Takes everything planMatmul does but batches and a version.
 */
export function planMatmulTextures(gpu: Gpu, s: MatmulSpec): Dispatch[] {
  const why = whyNotTextures(gpu, s);
  if (why) throw new Error(`${s.label}: matmul v6 (texture operands) ${why}`);
  const [a, b] = operands(s);
  const A = packed(gpu, `${s.label} (pack A)`, "A", a);
  const B = packed(gpu, `${s.label} (pack B)`, "B", b);
  const product = planMatmul(gpu, { ...s, lda: a.ld, ldb: b.ld, version: "v6" }, { a: A.view, b: B.view });
  return [A.dispatch, B.dispatch, product];
}

/** A and B as the product reads them. */
function operands(s: MatmulSpec): [Operand, Operand] {
  const { M, N, K } = s;
  const transA = s.transA ?? false;
  const transB = s.transB ?? false;
  return [
    { tensor: s.a, ...(transA ? { rows: K, cols: M } : { rows: M, cols: K }), ld: s.lda ?? (transA ? M : K) },
    { tensor: s.b, ...(transB ? { rows: N, cols: K } : { rows: K, cols: N }), ld: s.ldb ?? (transB ? K : N) },
  ];
}

/** Why v6 cannot plan this product, or undefined when it can. */
function whyNotTextures(gpu: Gpu, s: MatmulSpec): string | undefined {
  if ((s.batch ?? 1) !== 1 || (s.batchSplit ?? 1) !== 1 || s.version) return "takes batch 1 and no version";
  const [a, b] = operands(s);
  const whyA = unfit(gpu, a);
  if (whyA) return `A ${whyA}`;
  const whyB = unfit(gpu, b);
  return whyB && `B ${whyB}`;
}

/** Where the engine's products read their operands from (setMatmulOperands; the autotune measures it). */
export type MatmulOperands = "buffers" | "textures";
let preferred: MatmulOperands = "buffers";

/** Makes every product planned through planProduct read textures (v6) where it can, or buffers (v4…). */
export function setMatmulOperands(where: MatmulOperands): void {
  preferred = where;
}

export function matmulOperands(): MatmulOperands {
  return preferred;
}

/**
 * One product of the model: v6's three launches where textures are preferred and the product allows them
 * (batch 1, no version asked for, 4-aligned rows, within the texture limits), else planMatmul's one. Both
 * give the same bits, so the choice changes speed only.
 */
export function planProduct(gpu: Gpu, s: MatmulSpec): Dispatch[] {
  if (preferred === "textures" && whyNotTextures(gpu, s) === undefined) return planMatmulTextures(gpu, s);
  return [planMatmul(gpu, s)];
}

/**
 * A split-K product (v5) of the model: where textures are preferred, each slice of K is its own v6
 * product into the scratch (slice z's rows of A and B, the sums v5's batched v4 makes), then v5's sum, so
 * the same bits as planMatmulSplitK, which plans it otherwise.
 */
export function planProductSplitK(
  gpu: Gpu,
  s: MatmulSpec & { splits: number; scratch?: Tensor },
): Dispatch[] {
  if (preferred !== "textures") return planMatmulSplitK(gpu, s);
  const { lda, ldb, scratch, slice: length } = splitKLayout(gpu, s);
  const slices = [...Array(s.splits).keys()].map((z): MatmulSpec => {
    // Slice z of K: rows z · length … of A (TN) or B (NN), or the same columns where the operand is along k.
    const aStart = z * length * (s.transA ? lda : 1);
    const bStart = z * length * (s.transB ? 1 : ldb);
    return {
      label: `${s.label} (slice ${z})`,
      a: slice(s.a, aStart, s.a.length - aStart),
      b: slice(s.b, bStart, s.b.length - bStart),
      c: slice(scratch, z * s.M * s.N, s.M * s.N),
      M: s.M,
      N: s.N,
      K: length,
      transA: s.transA,
      transB: s.transB,
      lda,
      ldb,
    };
  });
  if (slices.some((p) => whyNotTextures(gpu, p) !== undefined)) return planMatmulSplitK(gpu, s);
  return [...slices.flatMap((p) => planMatmulTextures(gpu, p)), planSplitKSum(gpu, s, scratch)];
}
