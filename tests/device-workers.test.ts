/**
 * Device workers start one at a time (server/lab/device-workers.ts): a worker is created only once the one
 * before it has said "ready"; one that cannot open its device rejects with its own error and does not hold
 * up the next.
 */
import assert from "node:assert/strict";
import { startDeviceWorker } from "../server/lab/device-workers.ts";

const STAND_IN = new URL("./helpers/device-start-worker.ts", import.meta.url);

/** A started stand-in's creation and ready times. */
function times(worker: Worker): Promise<{ born: number; ready: number }> {
  return new Promise((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.postMessage("when");
  });
}

Deno.test("device workers: each is created after the one before it is ready; a failed start is its own error", async () => {
  const starts = [
    startDeviceWorker(STAND_IN, "300"),
    startDeviceWorker(STAND_IN, "fail"),
    startDeviceWorker(STAND_IN, "50"),
  ];
  const [first, failed, third] = await Promise.allSettled(starts);
  assert.equal(first.status, "fulfilled");
  assert.equal(third.status, "fulfilled");
  assert.equal(failed.status, "rejected");
  assert.match(String((failed as PromiseRejectedResult).reason), /GPUError: no adapter in this test/);
  const [a, c] = [first, third].map((s) => (s as PromiseFulfilledResult<Worker>).value);
  try {
    const [ta, tc] = await Promise.all([times(a), times(c)]);
    assert.ok(
      tc.born >= ta.ready,
      `the third was created ${(ta.ready - tc.born).toFixed(0)} ms before the first was ready`,
    );
  } finally {
    a.terminate();
    c.terminate();
  }
});
