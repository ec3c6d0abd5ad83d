/**
 * A stand-in Gpu whose device only records what the kernel planners ask of it (buffers and their
 * initial bytes, shader code and override constants, bind group layouts, bind groups), so planned
 * dispatches can be inspected (their WGSL) or serialized and replayed on another WebGPU implementation,
 * such as Chromium's in a page (tests/helpers/browser-webgpu.ts). Nothing runs on it.
 *
 * Two ways to get a program: `program(dispatches)` (the buffers' current contents, then the dispatches in
 * one pass), or `startCapture()` … `captured()`, which records the queue as the code under test drives
 * it: every writeBuffer and every submitted command encoder (passes, copies, clears), in order.
 */
import type { Gpu } from "../../kernels/device.ts";
import type { Dispatch, Tensor } from "../../kernels/runtime.ts";

interface RecordedBuffer {
  id: number;
  size: number;
  label: string;
  bytes: Uint8Array;
}

interface RecordedPipeline {
  code: string;
  entryPoint: string;
  constants: Record<string, number>;
  layout: GPUBindGroupLayoutDescriptor;
}

interface RecordedBindGroup {
  label: string;
  entries: ReplayDispatch["entries"];
}

/** One dispatch as plain data: what a page needs to rebuild its pipeline and bind group. */
export interface ReplayDispatch {
  label: string;
  code: string;
  entryPoint: string;
  /** Pipeline-overridable constants (empty when the kernel has none). */
  constants: Record<string, number>;
  layout: GPUBindGroupLayoutDescriptor;
  entries: { binding: number; buffer: number; offset: number; size: number }[];
  workgroups: [number, number, number];
}

/** Work recorded into a command encoder; `pass` lists indices into the program's `dispatches`. */
export type ReplayEncoded =
  | { op: "pass"; dispatches: number[] }
  | {
    op: "copy";
    source: number;
    sourceOffset: number;
    destination: number;
    destinationOffset: number;
    size: number;
  }
  | { op: "clear"; buffer: number; offset: number; size: number };

/** Queue work in submission order: a writeBuffer (byte offset, u32 words) or one submitted encoder. */
export type ReplayCommand =
  | { op: "write"; buffer: number; offset: number; words: number[] }
  | { op: "submit"; work: ReplayEncoded[] };

/**
 * Buffers (id → initial contents as u32 words) and dispatches. Without `commands` the dispatches run in
 * one pass of one submit; with them, the commands run in order (the dispatches are what they refer to).
 */
export interface ReplayProgram {
  buffers: { id: number; words: number[] }[];
  dispatches: ReplayDispatch[];
  commands?: ReplayCommand[];
}

export interface RecordingGpu {
  gpu: Gpu;
  /** Every shader module's code, in creation order. */
  codes: string[];
  /** The program that replays `dispatches` from the buffers' current recorded contents. */
  program(dispatches: readonly Dispatch[]): ReplayProgram;
  /** Snapshots every buffer's contents as the initial words and starts recording queue work. */
  startCapture(): void;
  /** The queue work recorded since startCapture, as a program starting from that snapshot. */
  captured(): ReplayProgram;
}

/** The index of a recorded tensor's buffer in a ReplayProgram's `buffers` (and in the page's results). */
export function bufferId(t: Tensor): number {
  return (t.buffer as unknown as RecordedBuffer).id;
}

function wordsOf(bytes: Uint8Array, what: string): number[] {
  if (bytes.byteLength % 4 !== 0) {
    throw new Error(`${what}: ${bytes.byteLength} bytes is not whole u32 words`);
  }
  return Array.from(new Uint32Array(bytes.slice().buffer));
}

function replayDispatch(
  label: string,
  pipeline: GPUComputePipeline,
  bindGroup: GPUBindGroup,
  workgroups: [number, number, number],
): ReplayDispatch {
  const p = pipeline as unknown as RecordedPipeline;
  return {
    label,
    code: p.code,
    entryPoint: p.entryPoint,
    constants: p.constants,
    layout: p.layout,
    entries: (bindGroup as unknown as RecordedBindGroup).entries,
    workgroups,
  };
}

/** What the stand-in device has recorded, shared by the device, its queue and its command encoders. */
interface Recording {
  buffers: RecordedBuffer[];
  /** Every shader module's code, in creation order. */
  codes: string[];
  /** While capturing: the initial words of the buffers that existed at startCapture, and the queue log. */
  capture: { initial: number[][]; dispatches: ReplayDispatch[]; commands: ReplayCommand[] } | undefined;
}

function recorded(b: GPUBuffer): RecordedBuffer {
  return b as unknown as RecordedBuffer;
}

/** A compute pass that appends its dispatches to the capture and their indices to `indices`. */
function recordingComputePass(rec: Recording, indices: number[]) {
  let pipeline: GPUComputePipeline | undefined;
  let bindGroup: GPUBindGroup | undefined;
  return {
    setPipeline(p: GPUComputePipeline) {
      pipeline = p;
    },
    setBindGroup(index: number, g: GPUBindGroup, offsets?: number[]) {
      if (index !== 0 || (offsets && offsets.length > 0)) {
        throw new Error("the recording device replays bind group 0 without dynamic offsets only");
      }
      bindGroup = g;
    },
    dispatchWorkgroups(x: number, y = 1, z = 1) {
      if (!rec.capture) throw new Error("dispatch encoded outside startCapture()…captured()");
      if (!pipeline || !bindGroup) throw new Error("dispatch without a pipeline and bind group");
      const label = (bindGroup as unknown as RecordedBindGroup).label;
      indices.push(rec.capture.dispatches.length);
      rec.capture.dispatches.push(replayDispatch(label, pipeline, bindGroup, [x, y, z]));
    },
    end() {},
  };
}

/** A command encoder whose finished buffer is the list of work encoded into it. */
function recordingCommandEncoder(rec: Recording) {
  const work: ReplayEncoded[] = [];
  return {
    beginComputePass() {
      const indices: number[] = [];
      work.push({ op: "pass", dispatches: indices });
      return recordingComputePass(rec, indices);
    },
    copyBufferToBuffer(
      source: GPUBuffer,
      sourceOffset: number,
      destination: GPUBuffer,
      destinationOffset: number,
      size: number,
    ) {
      work.push({
        op: "copy",
        source: recorded(source).id,
        sourceOffset,
        destination: recorded(destination).id,
        destinationOffset,
        size,
      });
    },
    clearBuffer(buffer: GPUBuffer, offset = 0, size?: number) {
      const b = recorded(buffer);
      work.push({ op: "clear", buffer: b.id, offset, size: size ?? b.size - offset });
    },
    finish() {
      return { work };
    },
  };
}

/** A queue that keeps each buffer's bytes current and, while capturing, logs writes and submits. */
function recordingQueue(rec: Recording) {
  return {
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
      const b = recorded(buffer);
      b.bytes.set(bytes, offset);
      rec.capture?.commands.push({
        op: "write",
        buffer: b.id,
        offset,
        words: wordsOf(bytes, `writeBuffer into ${b.label}`),
      });
    },
    submit(commandBuffers: Iterable<GPUCommandBuffer>) {
      if (!rec.capture) throw new Error("submit outside startCapture()…captured()");
      for (const c of commandBuffers) {
        rec.capture.commands.push({ op: "submit", work: (c as unknown as { work: ReplayEncoded[] }).work });
      }
    },
  };
}

/** The device: buffers, shader modules, pipelines and bind groups as plain records. */
function recordingDevice(rec: Recording) {
  return {
    createBuffer(d: GPUBufferDescriptor) {
      const b: RecordedBuffer = {
        id: rec.buffers.length,
        size: d.size,
        label: d.label ?? "",
        bytes: new Uint8Array(d.size),
      };
      rec.buffers.push(b);
      return b;
    },
    queue: recordingQueue(rec),
    createCommandEncoder: () => recordingCommandEncoder(rec),
    createShaderModule(d: GPUShaderModuleDescriptor) {
      rec.codes.push(d.code);
      return { code: d.code };
    },
    createBindGroupLayout(d: GPUBindGroupLayoutDescriptor) {
      return { descriptor: d };
    },
    createPipelineLayout(d: GPUPipelineLayoutDescriptor) {
      return d;
    },
    createComputePipeline(d: GPUComputePipelineDescriptor): RecordedPipeline {
      const layout = (d.layout as unknown as GPUPipelineLayoutDescriptor).bindGroupLayouts[0] as unknown as {
        descriptor: GPUBindGroupLayoutDescriptor;
      };
      return {
        code: (d.compute.module as unknown as { code: string }).code,
        entryPoint: d.compute.entryPoint ?? "main",
        constants: { ...(d.compute.constants ?? {}) } as Record<string, number>,
        layout: layout.descriptor,
      };
    },
    createBindGroup(d: GPUBindGroupDescriptor): RecordedBindGroup {
      return {
        label: d.label ?? "",
        entries: [...d.entries].map((e) => {
          const r = e.resource as GPUBufferBinding;
          return {
            binding: e.binding,
            buffer: recorded(r.buffer).id,
            offset: r.offset ?? 0,
            // A binding without a size covers the rest of its buffer.
            size: r.size ?? recorded(r.buffer).size - (r.offset ?? 0),
          };
        }),
      };
    },
  };
}

/** A recording Gpu with WebGPU's default limits and the given `subgroups` flag. */
export function recordingGpu(subgroups: boolean): RecordingGpu {
  const rec: Recording = { buffers: [], codes: [], capture: undefined };
  const { buffers } = rec;
  const gpu: Gpu = {
    device: recordingDevice(rec) as unknown as GPUDevice,
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
    codes: rec.codes,
    program(dispatches) {
      return {
        buffers: buffers.map((b) => ({ id: b.id, words: wordsOf(b.bytes, b.label) })),
        dispatches: dispatches.map((d) => {
          if ("copy" in d) throw new Error(`${d.label}: the recorder replays launches, not texture copies`);
          return replayDispatch(d.label, d.pipeline, d.bindGroup, d.workgroups);
        }),
      };
    },
    startCapture() {
      rec.capture = { initial: buffers.map((b) => wordsOf(b.bytes, b.label)), dispatches: [], commands: [] };
    },
    captured() {
      if (!rec.capture) throw new Error("captured() without startCapture()");
      const { initial, dispatches, commands } = rec.capture;
      rec.capture = undefined;
      return {
        // Buffers created after startCapture start zero-filled, as createBuffer makes them.
        buffers: buffers.map((b) => ({ id: b.id, words: initial[b.id] ?? new Array(b.size / 4).fill(0) })),
        dispatches,
        commands,
      };
    },
  };
}
