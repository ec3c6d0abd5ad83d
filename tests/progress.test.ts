/** The CLI progress bar: no ETA before anything is done (a 0 rate printed "ETA 166684444444:26:40"). */
import assert from "node:assert/strict";
import { clip, formatDuration, ProgressBar } from "../scripts/progress.ts";
import { SizesProgress } from "../scripts/cli/pretrain.ts";
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
  assert.equal(progressCount(892416, 1500160, "tokens"), "892,416/1,500,160 tokens");
  assert.equal(progressCount(1234.56, 2000, "experiments"), "1,234.6/2,000 experiments");
  assert.equal(progressCount(3, 10), "3/10");
});

Deno.test("lab pretrain's one bar over several sizes counts this session's tokens, not a resumed size's", () => {
  const progress = new SizesProgress([{ name: "small", tokens: 1000 }, { name: "mini", tokens: 600 }]);
  assert.equal(progress.bar.opts.total, 1600);
  const start = { params: 1, trainTokens: 1, config: {} as never, totalSteps: 20, tokensPerStep: 50 };
  progress.started("small", { ...start, resumedFromStep: 4 }); // 200 tokens done before this session
  assert.equal(progress.bar.opts.total, 1400);
  progress.progress("small", { step: 10, totalSteps: 20, tokens: 500, totalTokens: 1000, trainLoss: 2.5 });
  progress.started("mini", { ...start, totalSteps: 12, resumedFromStep: 0 });
  progress.progress("mini", { step: 3, totalSteps: 12, tokens: 150, totalTokens: 600, valLoss: 3.25 });
  assert.equal(progress.bar.done, 300 + 150);
  assert.equal(progress.note(), "small loss 2.500, mini val 3.250");
  progress.progress("small", { step: 20, totalSteps: 20, tokens: 1000, totalTokens: 1000, trainLoss: 2 });
  assert.equal(progress.note(), "mini val 3.250", "a size that has finished leaves the note");
});

Deno.test("progress: a redrawn line is cut to the terminal's width, its last character an ellipsis", () => {
  assert.equal(clip("sweep 12/112 world-coast nano→mini", 12), "sweep 12/11…");
  assert.equal(clip("short", 12), "short");
  assert.equal(clip("nano→mini→small", 10), "nano→mini…", "arrows count as one column each");
  assert.equal([...clip("x".repeat(200), 79)].length, 79);
});

Deno.test("progress: a log gets the end once, however often the work reports at 100 %", async () => {
  const module = new URL("../scripts/progress.ts", import.meta.url).href;
  const code = `import { ProgressBar } from "${module}";
    const bar = new ProgressBar({ label: "sweep", total: 4, unit: "experiments" });
    bar.update(1, "first");
    for (const stage of ["a", "b", "c"]) bar.update(4, stage);
    bar.finish();
    const again = new ProgressBar({ label: "pretrain", total: 2 });
    again.update(2);
    again.finish("done in 3 s");`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stderr: "piped",
    stdout: "null",
  })
    .output();
  const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
  assert.equal(out.code, 0, lines.join("\n"));
  assert.equal(lines.length, 4, lines.join("\n"));
  assert.match(lines[0], /^sweep .* 1\/4 experiments .* first$/);
  assert.match(lines[1], /^sweep .* 100\.0% 4\/4 experiments .* a$/, "the end, once");
  assert.match(lines[2], /^pretrain .* 2\/2 /);
  assert.match(lines[3], /done in 3 s$/, "a finishing note is drawn");
});
