/**
 * Watches GPU read-backs (staging buffers mapped for reading) while a function runs: how many waited at
 * once, by staging size, and how many were waiting when each optimizer step was submitted. Tests use it
 * to check that reads are queued together and overlap later work, without timing anything.
 */
import { GptModel } from "../../kernels/gpt.ts";

export interface ReadBackLog {
  /** Staging size in bytes → the most maps of that size pending at once. */
  mostPendingBySize: Map<number, number>;
  /** Read-backs pending when each GptModel.trainStep was called, in call order. */
  pendingAtTrainSteps: number[];
}

export async function watchReadBacks(fn: () => Promise<unknown>): Promise<ReadBackLog> {
  const log: ReadBackLog = { mostPendingBySize: new Map(), pendingAtTrainSteps: [] };
  const pending = new Map<number, number>();
  let pendingTotal = 0;
  const mapAsync = GPUBuffer.prototype.mapAsync;
  const trainStep = GptModel.prototype.trainStep;
  GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer["mapAsync"]>) {
    const size = this.size;
    pending.set(size, (pending.get(size) ?? 0) + 1);
    pendingTotal++;
    log.mostPendingBySize.set(size, Math.max(log.mostPendingBySize.get(size) ?? 0, pending.get(size)!));
    return mapAsync.apply(this, args).finally(() => {
      pending.set(size, pending.get(size)! - 1);
      pendingTotal--;
    });
  };
  GptModel.prototype.trainStep = function (this: GptModel, ...args: Parameters<GptModel["trainStep"]>) {
    log.pendingAtTrainSteps.push(pendingTotal);
    return trainStep.apply(this, args);
  };
  try {
    await fn();
  } finally {
    GPUBuffer.prototype.mapAsync = mapAsync;
    GptModel.prototype.trainStep = trainStep;
  }
  return log;
}
