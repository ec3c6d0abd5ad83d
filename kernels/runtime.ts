/**
 * The small runtime every kernel family uses: storage tensors, buffer windows, a pipeline cache, and
 * "dispatch plans". A plan binds a kernel to its buffers and bakes its parameters into a uniform buffer
 * ONCE; a training step then only replays plans inside one compute pass of one command encoder.
 *
 * Kernel convention: `@group(0) @binding(0) var<uniform> params: Params;` (if the kernel has
 * parameters), storage bindings from 1 in the order given to `plan`. Tensor offsets are passed as
 * element offsets in `params`, so one buffer can hold many tensors. Bind group layouts are derived
 * from the WGSL source by webgpu-utils, as are the uniform struct offsets.
 */
import {
  makeBindGroupLayoutDescriptors,
  makeShaderDataDefinitions,
  makeStructuredView,
  type ShaderDataDefinitions,
  type StructuredView,
} from "webgpu-utils";
import type { Gpu } from "./device.ts";

/** A range of f32 (or u32/i32) elements inside a storage buffer. */
export interface Tensor {
  buffer: GPUBuffer;
  /** Offset in elements. */
  offset: number;
  /** Length in elements. */
  length: number;
  label: string;
}

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Storage tensors created in this process (never decreased): kernels/memory.ts is tested against it. */
export const tensorAllocations = { tensors: 0, bytes: 0 };

/** A new zero-filled storage tensor of `length` 4-byte elements (optionally initialized). */
export function createTensor(
  gpu: Gpu,
  length: number,
  label: string,
  data?: Float32Array | Int32Array | Uint32Array,
): Tensor {
  const bytes = Math.max(4, Math.ceil(length) * 4);
  if (bytes > gpu.limits.maxBufferSize) {
    throw new Error(`tensor ${label} needs ${bytes} bytes, more than this adapter's maxBufferSize`);
  }
  // Round to 16 bytes so vec4 views of the whole buffer are legal.
  const buffer = gpu.device.createBuffer({ size: Math.ceil(bytes / 16) * 16, usage: STORAGE_USAGE, label });
  tensorAllocations.tensors++;
  tensorAllocations.bytes += buffer.size;
  if (data) gpu.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return { buffer, offset: 0, length, label };
}

/**
 * A flat range of elements kept in one or more buffers ("shards"), for what may exceed the adapter's
 * maxBufferSize: the parameter, gradient and AdamW buffers of GPT-2 XL hold 6.2 GB each. The caller
 * chooses where shards start (kernels/memory.ts flatShards: between whole parameters), so every
 * tensor a kernel binds lies inside one shard. One shard when everything fits: a plain buffer.
 */
export interface ShardedTensor {
  label: string;
  length: number;
  /** Consecutive shards: shard i holds elements [start, start + tensor.length) of the whole. */
  shards: { start: number; tensor: Tensor }[];
}

/** A sharded tensor of `length` elements with shards starting at `starts` (the first 0). */
export function createSharded(
  gpu: Gpu,
  length: number,
  starts: readonly number[],
  label: string,
  data?: Float32Array,
): ShardedTensor {
  if (starts[0] !== 0 || starts.some((s, i) => i > 0 && !(s > starts[i - 1] && s < length))) {
    throw new Error(`${label}: shard starts ${starts.join(", ")} must rise from 0 below ${length}`);
  }
  const shards = starts.map((start, i) => {
    const end = starts[i + 1] ?? length;
    const name = starts.length > 1 ? `${label} [shard ${i}]` : label;
    return { start, tensor: createTensor(gpu, end - start, name, data?.subarray(start, end)) };
  });
  return { label, length, shards };
}

/** One plain tensor seen as a sharded tensor of one shard. */
export function asSharded(t: Tensor | ShardedTensor): ShardedTensor {
  return "shards" in t ? t : { label: t.label, length: t.length, shards: [{ start: 0, tensor: t }] };
}

/** Elements [offset, offset + length) of a sharded tensor, which must lie inside one shard. */
export function shardSlice(t: ShardedTensor, offset: number, length: number, label = t.label): Tensor {
  const shard = t.shards.findLast((s) => s.start <= offset);
  if (!shard || offset + length > shard.start + shard.tensor.length) {
    throw new Error(`${label}: [${offset}, ${offset + length}) of ${t.label} crosses a shard boundary`);
  }
  return slice(shard.tensor, offset - shard.start, length, label);
}

/** The binding windows of every shard (runtime.ts windowsOf), in order. */
export function shardWindows(gpu: Gpu, t: ShardedTensor): Tensor[] {
  return t.shards.flatMap((s) => windowsOf(gpu, s.tensor));
}

/** Copies a sharded tensor back to the CPU: every shard's copy queued before one wait. */
export async function readSharded(gpu: Gpu, t: ShardedTensor): Promise<Float32Array> {
  const parts = await Promise.all(t.shards.map((s) => readTensor(gpu, s.tensor)));
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(t.length);
  t.shards.forEach((s, i) => out.set(parts[i], s.start));
  return out;
}

/** Uploads the whole of a sharded tensor (queued). */
export function writeSharded(gpu: Gpu, t: ShardedTensor, data: Float32Array): void {
  if (data.length !== t.length) {
    throw new Error(`writing ${data.length} elements into ${t.label} of length ${t.length}`);
  }
  for (const s of t.shards) writeTensor(gpu, s.tensor, data.subarray(s.start, s.start + s.tensor.length));
}

/** A sub-range of a tensor, for example one parameter inside the flat parameter buffer. */
export function slice(t: Tensor, offset: number, length: number, label = t.label): Tensor {
  if (offset < 0 || offset + length > t.length) {
    throw new Error(
      `slice [${offset}, ${offset + length}) is outside tensor ${t.label} of length ${t.length}`,
    );
  }
  return { buffer: t.buffer, offset: t.offset + offset, length, label };
}

/**
 * The binding for a tensor: a window of its buffer no larger than the adapter's binding limit,
 * aligned as the adapter requires, and the element offset of the tensor inside that window.
 */
export function bindTensor(gpu: Gpu, t: Tensor): { binding: GPUBufferBinding; base: number } {
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const startByte = Math.floor((t.offset * 4) / align) * align;
  const endByte = Math.min(t.buffer.size, Math.ceil(((t.offset + t.length) * 4) / 16) * 16);
  const size = endByte - startByte;
  if (size > gpu.limits.maxStorageBufferBindingSize) {
    throw new Error(
      `tensor ${t.label} spans ${size} bytes, more than this adapter's maxStorageBufferBindingSize ` +
        `(${gpu.limits.maxStorageBufferBindingSize}); it must be split`,
    );
  }
  return { binding: { buffer: t.buffer, offset: startByte, size }, base: t.offset - startByte / 4 };
}

/** A window of a larger range: elements [start, start + length) of it. */
export interface WindowRange {
  start: number;
  length: number;
}

/**
 * Splits `count` units of `unit` elements (rows, chunks, single elements) into consecutive windows
 * that each fit one storage binding wherever they start: the binding limit less the bytes bindTensor
 * may add by rounding the start down to the offset alignment and the end up to 16 bytes. One window
 * when everything fits, so a program planned under a large limit is unchanged. Windows hold a multiple
 * of `multipleOf` units where they can (every start aligned, e.g. to 4 for vec4 loads).
 */
export function windowRanges(
  gpu: Gpu,
  count: number,
  unit: number,
  what: string,
  multipleOf = 1,
): WindowRange[] {
  const limit = gpu.limits.maxStorageBufferBindingSize;
  const usable = limit - gpu.limits.minStorageBufferOffsetAlignment - 16;
  const fits = Math.floor(usable / (4 * unit));
  const perWindow = fits >= multipleOf ? fits - (fits % multipleOf) : fits;
  if (perWindow < 1) {
    throw new Error(
      `${what}: one unit of ${unit} elements (${4 * unit} bytes) does not fit a storage binding of ` +
        `${limit} bytes with its alignment; raise the binding limit`,
    );
  }
  const ranges: WindowRange[] = [];
  for (let start = 0; start < count; start += perWindow) {
    ranges.push({ start, length: Math.min(perWindow, count - start) });
  }
  return ranges;
}

/** The windows of a tensor of `unit`-element rows, as tensors, each within one storage binding. */
export function windowsOf(gpu: Gpu, t: Tensor, unit = 1): Tensor[] {
  if (t.length % unit !== 0) {
    throw new Error(`tensor ${t.label} of ${t.length} elements is not made of ${unit}-element rows`);
  }
  return windowRanges(gpu, t.length / unit, unit, t.label).map((w, i, all) =>
    slice(t, w.start * unit, w.length * unit, all.length > 1 ? `${t.label} [window ${i}]` : t.label)
  );
}

const definitionCache = new Map<string, ShaderDataDefinitions>();

function definitions(code: string): ShaderDataDefinitions {
  let defs = definitionCache.get(code);
  if (!defs) {
    defs = makeShaderDataDefinitions(code);
    definitionCache.set(code, defs);
  }
  return defs;
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

const pipelineCache = new WeakMap<GPUDevice, Map<string, CachedPipeline>>();

/** The compute pipeline for (code, entry point, override constants), created once per device. */
export function pipelineFor(
  gpu: Gpu,
  code: string,
  entryPoint = "main",
  constants: Record<string, number> = {},
): CachedPipeline {
  let cache = pipelineCache.get(gpu.device);
  if (!cache) pipelineCache.set(gpu.device, cache = new Map());
  const key = `${entryPoint}|${JSON.stringify(constants)}|${code}`;
  let hit = cache.get(key);
  if (!hit) {
    const device = gpu.device;
    const module = device.createShaderModule({ code, label: entryPoint });
    const [layoutDesc] = makeBindGroupLayoutDescriptors(definitions(code), { compute: { entryPoint } });
    // The kernels only textureLoad their textures (rgba32float, which is not filterable without a
    // feature), never sample them.
    for (const entry of layoutDesc.entries) {
      if (entry.texture?.sampleType === "float") entry.texture.sampleType = "unfilterable-float";
    }
    const layout = device.createBindGroupLayout(layoutDesc);
    const pipeline = device.createComputePipeline({
      label: entryPoint,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint, constants },
    });
    hit = { pipeline, layout };
    cache.set(key, hit);
  }
  return hit;
}

/** What every recorded step has, launch or copy: a label and the figures benchmarks report. */
interface StepInfo {
  label: string;
  /** Floating-point operations of one launch (0 when not meaningful), for benchmarks. */
  flops: number;
  /** Bytes moved by one launch (a lower bound), for benchmarks. */
  bytes: number;
  /** Kernel family ("matmul", …), for per-family time shares in benchmarks. */
  family: string;
  /** Rewrites some of the kernel's parameters (for per-step values such as the learning rate). */
  setParams(values: Record<string, number>): void;
}

/** One recorded kernel launch: pipeline, bind group and grid, reused every step. */
export interface Launch extends StepInfo {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

/**
 * One recorded copy of rows of a buffer into a texture (texture operands where their layout allows,
 * texture-operand.ts: on llvmpipe a copy is a memcpy, several times cheaper than a launch that stores texels).
 */
export interface TextureCopy extends StepInfo {
  copy: {
    buffer: GPUBuffer;
    /** Byte offset of the first row (a multiple of 16). */
    offset: number;
    /** Bytes from one row to the next (a multiple of 256). */
    bytesPerRow: number;
    texture: GPUTexture;
    /** Texels per row and rows. */
    size: [number, number];
  };
}

/** A copy step (see TextureCopy); it has no parameters to set. */
export function planTextureCopy(
  label: string,
  copy: TextureCopy["copy"],
  bytes: number,
  family: string,
): TextureCopy {
  return {
    label,
    copy,
    flops: 0,
    bytes,
    family,
    setParams() {
      throw new Error(`${label} is a copy and has no parameters`);
    },
  };
}

/** A step of a program: a kernel launch, or a copy between launches. */
export type Dispatch = Launch | TextureCopy;

export interface PlanSpec {
  label: string;
  code: string;
  entryPoint?: string;
  constants?: Record<string, number>;
  /** Values of the `params` uniform struct (omit when the kernel has none). */
  params?: Record<string, number>;
  /** Bindings 1…n, in order: storage buffers, or texture views where the kernel declares a texture. */
  bindings: (GPUBufferBinding | GPUTextureView)[];
  workgroups: [number, number?, number?];
  flops?: number;
  bytes?: number;
  family?: string;
}

/** Creates the bind group and parameter buffer of one kernel launch. */
export function plan(gpu: Gpu, spec: PlanSpec): Launch {
  const device = gpu.device;
  const { pipeline, layout } = pipelineFor(gpu, spec.code, spec.entryPoint, spec.constants);
  const entries: GPUBindGroupEntry[] = spec.bindings.map((resource, i) => ({ binding: i + 1, resource }));
  let view: StructuredView | undefined;
  let uniform: GPUBuffer | undefined;
  const paramDef = definitions(spec.code).uniforms["params"];
  if (paramDef) {
    view = makeStructuredView(paramDef);
    view.set(spec.params ?? {});
    uniform = device.createBuffer({
      size: Math.max(16, view.arrayBuffer.byteLength),
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: spec.label + " params",
    });
    device.queue.writeBuffer(uniform, 0, view.arrayBuffer);
    entries.unshift({ binding: 0, resource: { buffer: uniform } });
  }
  const [x, y = 1, z = 1] = spec.workgroups;
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (x > max || y > max || z > max) {
    throw new Error(`${spec.label}: grid ${x}×${y}×${z} exceeds ${max} workgroups per dimension`);
  }
  return {
    label: spec.label,
    pipeline,
    bindGroup: device.createBindGroup({ layout, entries, label: spec.label }),
    workgroups: [Math.max(1, x), Math.max(1, y), Math.max(1, z)],
    flops: spec.flops ?? 0,
    bytes: spec.bytes ?? 0,
    family: spec.family ?? "other",
    setParams(values) {
      if (!view || !uniform) throw new Error(`${spec.label} has no parameters`);
      view.set(values);
      device.queue.writeBuffer(uniform, 0, view.arrayBuffer);
    },
  };
}

/**
 * Records steps into a command encoder: consecutive launches share a compute pass (WebGPU orders storage
 * writes between dispatches), and a copy ends the pass and runs between two.
 */
export function encodeDispatches(encoder: GPUCommandEncoder, dispatches: readonly Dispatch[]): void {
  let pass: GPUComputePassEncoder | undefined;
  for (const d of dispatches) {
    if ("copy" in d) {
      pass?.end();
      pass = undefined;
      encodeCopy(encoder, d);
      continue;
    }
    pass ??= encoder.beginComputePass();
    encodeLaunch(pass, d);
  }
  pass?.end();
}

/** Records one launch into an open compute pass. */
export function encodeLaunch(pass: GPUComputePassEncoder, d: Launch): void {
  pass.setPipeline(d.pipeline);
  pass.setBindGroup(0, d.bindGroup);
  pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
}

/** Records one buffer-to-texture copy. */
export function encodeCopy(encoder: GPUCommandEncoder, { copy }: TextureCopy): void {
  encoder.copyBufferToTexture(
    { buffer: copy.buffer, offset: copy.offset, bytesPerRow: copy.bytesPerRow, rowsPerImage: copy.size[1] },
    { texture: copy.texture },
    copy.size,
  );
}

/** Encodes the steps in one command encoder and submits it. */
export function submit(gpu: Gpu, dispatches: readonly Dispatch[]): void {
  const encoder = gpu.device.createCommandEncoder();
  encodeDispatches(encoder, dispatches);
  gpu.device.queue.submit([encoder.finish()]);
}

/** A 1-D grid of `n` threads split over x and y when it exceeds the per-dimension limit. */
export function grid1d(gpu: Gpu, n: number, workgroupSize: number): [number, number] {
  const groups = Math.max(1, Math.ceil(n / workgroupSize));
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/** Copies a tensor back to the CPU (this waits for the GPU: never call it inside a training step). */
export async function readTensor(gpu: Gpu, t: Tensor): Promise<Float32Array> {
  const bytes = new Uint8Array(await readBytes(gpu, t));
  return new Float32Array(bytes.buffer, 0, t.length);
}

export async function readTensorI32(gpu: Gpu, t: Tensor): Promise<Int32Array> {
  const bytes = new Uint8Array(await readBytes(gpu, t));
  return new Int32Array(bytes.buffer, 0, t.length);
}

async function readBytes(gpu: Gpu, t: Tensor): Promise<ArrayBuffer> {
  const size = Math.ceil((t.length * 4) / 4) * 4;
  const staging = gpu.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = gpu.device.createCommandEncoder();
  encoder.copyBufferToBuffer(t.buffer, t.offset * 4, staging, 0, size);
  gpu.device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return copy;
}

/** Uploads CPU data into a tensor (queued; ordered before later submits). */
export function writeTensor(gpu: Gpu, t: Tensor, data: Float32Array | Int32Array | Uint32Array): void {
  if (data.length > t.length) {
    throw new Error(`writing ${data.length} elements into tensor ${t.label} of length ${t.length}`);
  }
  gpu.device.queue.writeBuffer(t.buffer, t.offset * 4, data.buffer, data.byteOffset, data.byteLength);
}

/** Runs `fn` and throws the first WebGPU validation or out-of-memory error it caused. */
export async function checked<T>(gpu: Gpu, fn: () => T): Promise<T> {
  gpu.device.pushErrorScope("out-of-memory");
  gpu.device.pushErrorScope("validation");
  let result: T | undefined;
  let thrown: unknown;
  try {
    result = fn();
  } catch (err) {
    thrown = err;
  }
  const validation = await gpu.device.popErrorScope();
  const oom = await gpu.device.popErrorScope();
  if (thrown) throw thrown;
  const error = validation ?? oom;
  if (error) throw new Error(`WebGPU error: ${error.message}`);
  return result as T;
}
