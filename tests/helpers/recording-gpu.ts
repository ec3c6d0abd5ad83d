/**
 * A stand-in Gpu whose device only records what the kernel planners ask of it (buffers and their
 * initial bytes, shader code, bind group layouts, bind groups), so planned dispatches can be
 * inspected (their WGSL) or serialized and replayed on another WebGPU implementation, such as
 * Chromium's in a page (tests/subgroups.test.ts). Nothing runs on it.
 */
import type { Gpu } from "../../kernels/device.ts";
import type { Dispatch, Tensor } from "../../kernels/runtime.ts";

interface RecordedBuffer {
  id: number;
  size: number;
  label: string;
  bytes: Uint8Array;
}

/** One dispatch as plain data: what a page needs to rebuild its pipeline and bind group. */
export interface ReplayDispatch {
  label: string;
  code: string;
  entryPoint: string;
  layout: GPUBindGroupLayoutDescriptor;
  entries: { binding: number; buffer: number; offset: number; size: number }[];
  workgroups: [number, number, number];
}

/** Buffers (id → initial contents as u32 words) and dispatches, in submission order. */
export interface ReplayProgram {
  buffers: { id: number; words: number[] }[];
  dispatches: ReplayDispatch[];
}

export interface RecordingGpu {
  gpu: Gpu;
  /** Every shader module's code, in creation order. */
  codes: string[];
  /** The program that replays `dispatches` from the buffers' current recorded contents. */
  program(dispatches: readonly Dispatch[]): ReplayProgram;
}

/** The index of a recorded tensor's buffer in a ReplayProgram's `buffers` (and in the page's results). */
export function bufferId(t: Tensor): number {
  return (t.buffer as unknown as RecordedBuffer).id;
}

/** A recording Gpu with WebGPU's default limits and the given `subgroups` flag. */
export function recordingGpu(subgroups: boolean): RecordingGpu {
  const buffers: RecordedBuffer[] = [];
  const codes: string[] = [];
  const device = {
    createBuffer(d: GPUBufferDescriptor) {
      const b: RecordedBuffer = {
        id: buffers.length,
        size: d.size,
        label: d.label ?? "",
        bytes: new Uint8Array(d.size),
      };
      buffers.push(b);
      return b;
    },
    queue: {
      writeBuffer(buffer: GPUBuffer, offset: number, data: BufferSource, dataOffset = 0, size?: number) {
        const view = ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : new Uint8Array(data as ArrayBuffer);
        // Offsets and sizes count elements for typed arrays and bytes for an ArrayBuffer.
        const unit = ArrayBuffer.isView(data) && "BYTES_PER_ELEMENT" in data
          ? (data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT
          : 1;
        const from = dataOffset * unit;
        const bytes = view.subarray(from, size === undefined ? undefined : from + size * unit);
        (buffer as unknown as RecordedBuffer).bytes.set(bytes, offset);
      },
    },
    createShaderModule(d: GPUShaderModuleDescriptor) {
      codes.push(d.code);
      return { code: d.code };
    },
    createBindGroupLayout(d: GPUBindGroupLayoutDescriptor) {
      return { descriptor: d };
    },
    createPipelineLayout(d: GPUPipelineLayoutDescriptor) {
      return d;
    },
    createComputePipeline(d: GPUComputePipelineDescriptor) {
      const layout = (d.layout as unknown as GPUPipelineLayoutDescriptor).bindGroupLayouts[0] as unknown as {
        descriptor: GPUBindGroupLayoutDescriptor;
      };
      return {
        code: (d.compute.module as unknown as { code: string }).code,
        entryPoint: d.compute.entryPoint ?? "main",
        layout: layout.descriptor,
      };
    },
    createBindGroup(d: GPUBindGroupDescriptor) {
      return {
        entries: [...d.entries].map((e) => {
          const r = e.resource as GPUBufferBinding;
          return {
            binding: e.binding,
            buffer: bufferId({ buffer: r.buffer } as Tensor),
            offset: r.offset ?? 0,
            // A binding without a size covers the rest of its buffer.
            size: r.size ?? (r.buffer as unknown as RecordedBuffer).size - (r.offset ?? 0),
          };
        }),
      };
    },
  };
  const gpu: Gpu = {
    device: device as unknown as GPUDevice,
    adapterName: "recording stand-in",
    isSoftware: true,
    features: { subgroups, shaderF16: false, timestamps: false },
    limits: {
      maxStorageBufferBindingSize: 128 << 20,
      maxBufferSize: 256 << 20,
      maxComputeWorkgroupStorageSize: 16384,
      maxComputeInvocationsPerWorkgroup: 256,
      maxComputeWorkgroupsPerDimension: 65535,
      maxStorageBuffersPerShaderStage: 8,
      minStorageBufferOffsetAlignment: 256,
    },
  };
  return {
    gpu,
    codes,
    program(dispatches) {
      return {
        buffers: buffers.map((b) => ({
          id: b.id,
          words: Array.from(new Uint32Array(b.bytes.buffer, 0, b.size / 4)),
        })),
        dispatches: dispatches.map((d) => {
          const p = d.pipeline as unknown as {
            code: string;
            entryPoint: string;
            layout: GPUBindGroupLayoutDescriptor;
          };
          return {
            label: d.label,
            code: p.code,
            entryPoint: p.entryPoint,
            layout: p.layout,
            entries: (d.bindGroup as unknown as { entries: ReplayDispatch["entries"] }).entries,
            workgroups: d.workgroups,
          };
        }),
      };
    },
  };
}
