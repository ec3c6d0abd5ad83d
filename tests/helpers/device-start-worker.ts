/**
 * A stand-in device worker for tests/device-workers.test.ts: its name is "ms" or "fail". It notes when it
 * was created, says "ready" after `ms` milliseconds (or, named "fail", that it has no device), and answers
 * any message with its creation and ready times.
 */
const born = performance.timeOrigin + performance.now();
const scope = globalThis as unknown as {
  name: string;
  postMessage(m: unknown): void;
  onmessage: (() => void) | null;
};
if (scope.name === "fail") {
  scope.postMessage({ type: "error", name: "GPUError", message: "no adapter in this test" });
} else {
  await new Promise((resolve) => setTimeout(resolve, Number(scope.name)));
  const ready = performance.timeOrigin + performance.now();
  scope.onmessage = () => scope.postMessage({ born, ready });
  scope.postMessage({ type: "ready" });
}
