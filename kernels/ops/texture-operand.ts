/**
 * Texture operands: a row-major matrix of a storage tensor copied into an `rgba32float` texture, texel
 * (x, y) the vec4 of columns 4x … 4x + 3 of row y, for kernels that read it with textureLoad: matmul v6
 * (A, B and gelu-grad's aux), attention v4 (qkv, dout), bias gradient v3 (dy), layernorm v4 (its row
 * inputs). Each gives the bits of the version it reads for. Why: on Mesa llvmpipe every storage-buffer load
 * whose address is not built from constants alone is a loop over the SIMD lanes with a bounds check and
 * branches, while a texel fetch is not; on an AVX2 EPYC (Zen 3) that made a product 2.5× and the attention
 * kernels 3–4× faster from textures (README, "Texture operands"). Stores cost the same either way, so
 * outputs stay in buffers. On other CPUs and on GPUs the gain differs, so the engine reads textures only
 * where the matmul autotune found them faster (setKernelOperands).
 *
 * An operand is packed right before the kernel that reads it: by a buffer-to-texture copy where WebGPU
 * allows one (rows 256 bytes apart, i.e. a row stride that is a multiple of 64 floats, as the model's
 * widths 64, 128, 192 … give; on llvmpipe a memcpy: a 2048 × 256 operand 0.7 ms against 4.5 ms by a
 * launch on the AVX2 host), else by the PACK launch. Both put the same texels in the texture.
 *
 * Textures are pooled per device by role and size: kernels of one role and size share one, which is safe
 * because each packs right before it reads and steps run in queue order, so the next pack of that role
 * waits for this reader. Roles that one kernel reads together must differ (matmul's "A" and "B"). A model
 * so adds one texture per distinct operand role and shape to adapter memory, which kernels/memory.ts does
 * not count.
 */
import type { Gpu } from "../device.ts";
import { bindTensor, type Dispatch, plan, planTextureCopy, type Tensor } from "../runtime.ts";

/** Where the engine's kernels read their matrix operands from: storage buffers, or textures. */
export type KernelOperands = "buffers" | "textures";
let preferred: KernelOperands = "buffers";

/**
 * Makes the model's products (planProduct: matmul v6) and attention (its default version: v4) read
 * textures where they can, or buffers. Both give the same bits, so the choice changes speed only.
 */
export function setKernelOperands(where: KernelOperands): void {
  preferred = where;
}

export function kernelOperands(): KernelOperands {
  return preferred;
}

/**
 * The version of a kernel that has a texture-operand variant `texture`: that one where asked (refused with
 * the reason `misfit()` gives, unless ""), or unasked where the engine reads texture operands and it
 * applies; otherwise the version `otherwise()` picks. misfit runs only where textures are asked or preferred.
 */
export function textureVersion<V extends string>(
  label: string,
  kernel: string,
  asked: V | undefined,
  texture: V,
  misfit: () => string,
  otherwise: () => V,
): V {
  if (asked === texture) {
    const why = misfit();
    if (why) throw new Error(`${label}: ${kernel} does not apply: ${why}`);
    return texture;
  }
  if (asked === undefined && preferred === "textures" && !misfit()) return texture;
  return otherwise();
}

/** `rows` rows of `cols` contiguous elements of `tensor`, from its first element, row stride `ld`. */
export interface TextureOperand {
  tensor: Tensor;
  rows: number;
  cols: number;
  ld: number;
}

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

const pools = new WeakMap<GPUDevice, Map<string, GPUTexture>>();

function pooledTexture(gpu: Gpu, role: string, width: number, rows: number): GPUTexture {
  let pool = pools.get(gpu.device);
  if (!pool) pools.set(gpu.device, pool = new Map());
  const key = `${role} ${width}×${rows}`;
  let texture = pool.get(key);
  if (!texture) {
    texture = gpu.device.createTexture({
      label: `texture operand ${key}`,
      size: [width, rows],
      format: "rgba32float",
      usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    pool.set(key, texture);
  }
  return texture;
}

/** Why an operand cannot be a texture (its rows not 4-aligned, or too wide or tall), or undefined. */
export function textureUnfit(gpu: Gpu, o: TextureOperand): string | undefined {
  const width = Math.ceil(o.cols / 4);
  const max = gpu.device.limits.maxTextureDimension2D;
  if (width > max || o.rows > max) {
    return `needs a ${width} × ${o.rows} texture, over this device's maxTextureDimension2D (${max})`;
  }
  const base = bindTensor(gpu, o.tensor).base;
  if (base % 4 !== 0 || o.ld % 4 !== 0) {
    return `needs 4-aligned operand rows (offset ${base}, stride ${o.ld})`;
  }
}

/** Whether packTexture packs this operand by a copy (rows 256 bytes apart, the last texel in the buffer). */
function packsByCopy(o: TextureOperand): boolean {
  const offset = o.tensor.offset * 4;
  const last = offset + o.ld * 4 * (o.rows - 1) + Math.ceil(o.cols / 4) * 16;
  return (o.ld * 4) % 256 === 0 && offset % 16 === 0 && last <= o.tensor.buffer.size;
}

/**
 * Declares packed operands as `texture_2d<f32>` named `<name>_tex` after a kernel's storage bindings:
 * the kernel's declarations and its bindings, in binding order.
 */
export function withTextureBindings(
  b: { declarations: string; bindings: GPUBufferBinding[] },
  textures: { name: string; view: GPUTextureView }[],
): { declarations: string; bindings: (GPUBufferBinding | GPUTextureView)[] } {
  const declarations = b.declarations +
    textures.map((t, i) =>
      `@group(0) @binding(${b.bindings.length + 1 + i}) var ${t.name}_tex: texture_2d<f32>;\n`
    ).join("");
  return { declarations, bindings: [...b.bindings, ...textures.map((t) => t.view)] };
}

/**
 * The step that packs an operand into its pooled texture of `role` (see the header), and the view. The
 * step counts in the reading kernel's `family` in benchmarks: the pack is part of its cost.
 */
export function packTexture(
  gpu: Gpu,
  label: string,
  role: string,
  o: TextureOperand,
  family: string,
): { view: GPUTextureView; dispatch: Dispatch } {
  const why = textureUnfit(gpu, o);
  if (why) throw new Error(`${label}: ${o.tensor.label} as a texture ${why}`);
  const width = Math.ceil(o.cols / 4);
  const texture = pooledTexture(gpu, role, width, o.rows);
  const view = texture.createView();
  const bytes = 8 * width * 4 * o.rows;
  if (packsByCopy(o)) {
    const size: [number, number] = [width, o.rows];
    const copy = {
      buffer: o.tensor.buffer,
      offset: o.tensor.offset * 4,
      bytesPerRow: o.ld * 4,
      texture,
      size,
    };
    return { view, dispatch: planTextureCopy(label, copy, bytes, family) };
  }
  const src = bindTensor(gpu, o.tensor);
  const dispatch = plan(gpu, {
    label,
    code: PACK,
    params: { rows: o.rows, cols4: width, ld4: o.ld / 4, base4: src.base / 4 },
    bindings: [src.binding, view],
    workgroups: [Math.ceil(width / 8), Math.ceil(o.rows / 8)],
    family,
    bytes,
  });
  return { view, dispatch };
}
