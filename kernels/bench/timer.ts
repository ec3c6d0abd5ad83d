/**
 * The benchmarks' clock: GPU timestamps around each dispatch where the adapter has them (the
 * `timestamp-query` feature), else wall time over repeated dispatches in one submit.
 */
import type { Gpu } from "../device.ts";
import { type Dispatch, encodeCopy, encodeDispatches, encodeLaunch } from "../runtime.ts";

/** Times a list of dispatches; per-dispatch GPU times when timestamps exist. */
export class Timer {
  private querySet?: GPUQuerySet;
  private resolve?: GPUBuffer;
  private readback?: GPUBuffer;
  private capacity = 512;

  constructor(readonly gpu: Gpu) {
    if (gpu.features.timestamps) {
      const d = gpu.device;
      this.querySet = d.createQuerySet({ type: "timestamp", count: this.capacity * 2 });
      this.resolve = d.createBuffer({
        size: this.capacity * 16,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      this.readback = d.createBuffer({
        size: this.capacity * 16,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    }
  }

  get kind(): "gpu" | "wall" {
    return this.querySet ? "gpu" : "wall";
  }

  /** Milliseconds per dispatch (GPU) for each dispatch, run once each in its own pass. */
  async each(dispatches: readonly Dispatch[]): Promise<number[]> {
    const out: number[] = [];
    for (let start = 0; start < dispatches.length; start += this.capacity) {
      const chunk = dispatches.slice(start, start + this.capacity);
      out.push(...await this.eachChunk(chunk));
    }
    return out;
  }

  private async eachChunk(chunk: readonly Dispatch[]): Promise<number[]> {
    const d = this.gpu.device;
    if (!this.querySet) {
      const times: number[] = [];
      for (const dispatch of chunk) times.push(await this.wall([dispatch], 1));
      return times;
    }
    const encoder = d.createCommandEncoder();
    chunk.forEach((dispatch, i) => {
      // A copy runs outside passes: an empty pass stamps before it and another after it.
      const copy = "copy" in dispatch;
      const first = encoder.beginComputePass({
        timestampWrites: copy
          ? { querySet: this.querySet!, beginningOfPassWriteIndex: 2 * i }
          : { querySet: this.querySet!, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
      if (!copy) encodeLaunch(first, dispatch);
      first.end();
      if (!copy) return;
      encodeCopy(encoder, dispatch);
      encoder.beginComputePass({
        timestampWrites: { querySet: this.querySet!, endOfPassWriteIndex: 2 * i + 1 },
      })
        .end();
    });
    encoder.resolveQuerySet(this.querySet, 0, chunk.length * 2, this.resolve!, 0);
    encoder.copyBufferToBuffer(this.resolve!, 0, this.readback!, 0, chunk.length * 16);
    d.queue.submit([encoder.finish()]);
    await this.readback!.mapAsync(GPUMapMode.READ);
    const stamps = new BigUint64Array(this.readback!.getMappedRange().slice(0));
    this.readback!.unmap();
    return chunk.map((_, i) => Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6);
  }

  /** Wall milliseconds per repetition of `dispatches`, `reps` times in one pass of one submit. */
  async wall(dispatches: readonly Dispatch[], reps: number): Promise<number> {
    const d = this.gpu.device;
    const encoder = d.createCommandEncoder();
    for (let r = 0; r < reps; r++) encodeDispatches(encoder, dispatches);
    const t0 = performance.now();
    d.queue.submit([encoder.finish()]);
    await d.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / reps;
  }

  /** Median milliseconds of one dispatch over `reps` runs. */
  async median(dispatch: Dispatch, reps: number): Promise<number> {
    if (!this.querySet) return await this.wall([dispatch], reps);
    const times = await this.each(Array(reps).fill(dispatch));
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }
}
