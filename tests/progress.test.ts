/** The CLI progress bar: no ETA before anything is done (a 0 rate printed "ETA 166684444444:26:40"). */
import assert from "node:assert/strict";
import { formatDuration, ProgressBar } from "../scripts/progress.ts";
import { progressCount } from "../server/contract/jobs.ts";

Deno.test("progress: the ETA reads --:-- until the first unit is done, then a finite time", async () => {
  const bar = new ProgressBar({ label: "test", total: 100, logEverySeconds: 3600 });
  assert.equal(formatDuration(bar.etaSeconds), "--:--");
  await new Promise((resolve) => setTimeout(resolve, 20));
  bar.update(50);
  assert.ok(Number.isFinite(bar.etaSeconds) && bar.etaSeconds >= 0, `ETA ${bar.etaSeconds}`);
  assert.match(formatDuration(bar.etaSeconds), /^\d\d:\d\d$/);
  assert.equal(formatDuration(3 * 3600 + 61), "3:01:01");
});

Deno.test("progress counts: whole counts as they are, a sweep's fractional experiments to one decimal", () => {
  assert.equal(progressCount(93.0696, 112, "experiments"), "93.1/112 experiments");
  assert.equal(progressCount(892416, 1500160, "tokens"), "892416/1500160 tokens");
  assert.equal(progressCount(3, 10), "3/10");
});
