/**
 * The dashboard's number and label formatting (web/lib/format.ts) and where its charts put their text
 * (web/lib/chart-layout.ts), against hand-written expectations.
 */
import assert from "node:assert/strict";
import { type Box, logTickLabels, overlaps, placeLabel, shareRange } from "../web/lib/chart-layout.ts";
import {
  adapterLabel,
  formatInterval,
  formatPercent,
  METHOD_COLOURS,
  METHOD_LINES,
  methodLine,
  modelStatusWord,
  PALETTE,
  readableKey,
  yTickLabels,
} from "../web/lib/format.ts";
import { issuesToFieldErrors } from "../web/lib/forms.ts";

Deno.test("yTickLabels: as many decimals as the tick spacing, no float noise", () => {
  assert.deepEqual(yTickLabels([0, 0.25, 0.5, 0.75, 1]), ["0", "0.25", "0.5", "0.75", "1"]);
  assert.deepEqual(yTickLabels([0.1, 0.2, 0.1 + 0.2]), ["0.1", "0.2", "0.3"]);
  assert.deepEqual(yTickLabels([2.3819, 2.38195, 2.382]), ["2.3819", "2.38195", "2.382"]);
  assert.deepEqual(yTickLabels([0.6, 0.65, 0.7]), ["0.6", "0.65", "0.7"]);
  // Learning rates: below 0.01 every label would round to the same few digits.
  assert.deepEqual(yTickLabels([0, 0.0005, 0.001]), ["0", "5.0e-4", "1.0e-3"]);
});

Deno.test("readableKey: config keys as words", () => {
  assert.equal(readableKey("studentMode"), "student mode");
  assert.equal(readableKey("earlyStoppingOracle"), "early stopping oracle");
  assert.equal(readableKey("alpha_max"), "alpha max");
  assert.equal(readableKey("task"), "task");
});

Deno.test("formatInterval: two ends or nothing (the API sends null for a missing end)", () => {
  assert.equal(formatInterval({ lo: 0.5312, hi: 0.6688 }), "[0.53, 0.67]");
  assert.equal(formatInterval({ lo: null, hi: 0.6 }), null);
  assert.equal(formatInterval(undefined), null);
});

Deno.test("formatPercent: the number and its sign held together by a no-break space", () => {
  assert.equal(formatPercent(0.123), "12.3\u00a0%");
  assert.equal(formatPercent(0.25, 0), "25\u00a0%");
  assert.equal(formatPercent(1, 0), "100\u00a0%");
  assert.equal(formatPercent(null), "—");
  assert.equal(formatPercent(Number.NaN), "—");
});

Deno.test("method colours are not size colours", () => {
  const sizes = new Set(PALETTE.map((c) => c.toLowerCase()));
  for (const colour of Object.values(METHOD_COLOURS)) assert.ok(!sizes.has(colour.toLowerCase()), colour);
});

Deno.test("method lines: each method its own dash and a word for it, where colour means the weak model", () => {
  const styles = Object.values(METHOD_LINES).map((l) => JSON.stringify([l.dash, l.open]));
  assert.equal(new Set(styles).size, styles.length, "no two methods drawn alike");
  assert.equal(methodLine("naive").dash, undefined, "naive: solid");
  assert.equal(methodLine("auxconf").word, "dashed line, open points");
  assert.ok(methodLine("a-new-method").dash, "an unknown method is not drawn as naive");
});

Deno.test("shareRange: a share axis spans its values, padded, on a 0.05 grid within 0–1", () => {
  // The demo's strong checkpoints: recall 0.918, 0.980 and 1.
  assert.deepEqual(shareRange([0.918, 0.98, 1], 0.01), [0.9, 1]);
  assert.deepEqual(shareRange([0.918, 0.98, 1]), [0.85, 1]);
  assert.deepEqual(shareRange([0.5]), [0.45, 0.55]);
  assert.deepEqual(shareRange([0.01, 0.99]), [0, 1]);
  const [lo, hi] = shareRange([0.3, 0.52]);
  assert.ok(Math.abs(lo - 0.25) < 1e-12 && Math.abs(hi - 0.55) < 1e-12, `${lo}, ${hi}`);
});

Deno.test("form errors beside a field drop a camelCase API key, keep plain words and other messages", () => {
  const issues = [
    { path: ["promptingShots"], message: "promptingShots must be ≥ 1" },
    { path: ["seed"], message: "seed must be ≥ 0" },
    { path: ["maxExamples"], message: "a message that does not open with the key" },
  ];
  assert.deepEqual(issuesToFieldErrors(issues, { seed: "seeds" }), {
    promptingShots: "must be ≥ 1",
    seeds: "seed must be ≥ 0",
    maxExamples: "a message that does not open with the key",
  });
});

Deno.test("a size's status reads the same on the Models page and in the form", () => {
  assert.equal(modelStatusWord({ status: "missing" }), "not pretrained");
  assert.equal(modelStatusWord({ status: "partial", step: 30, totalSteps: 120 }), "partial 25\u00a0%");
  assert.equal(modelStatusWord({ status: "pretrained" }), "pretrained");
});

Deno.test("an adapter reads as its name: the stored ids go, a software adapter says CPU", () => {
  // What the worker stores (kernels/device.ts adapterName): description, vendor id, device id.
  assert.equal(adapterLabel("llvmpipe (LLVM 15.0.6, 256 bits) 65541 0"), "llvmpipe (CPU)");
  assert.equal(adapterLabel("NVIDIA H100 80GB HBM3 4318 8960"), "NVIDIA H100 80GB HBM3");
  // A model number is part of the name, only the two trailing ids go (an architecture between them too).
  assert.equal(adapterLabel("NVIDIA GeForce RTX 4090 4318 9860"), "NVIDIA GeForce RTX 4090");
  assert.equal(adapterLabel("AMD Radeon Pro 0x1002 rdna3 0x744c"), "AMD Radeon Pro");
  assert.equal(adapterLabel("SwiftShader Device (Subzero) 6880 49374"), "SwiftShader (CPU)");
  assert.equal(adapterLabel("llvmpipe"), "llvmpipe (CPU)");
  assert.equal(adapterLabel("unknown adapter"), "unknown adapter");
});

Deno.test("a chart label moves clear of the labels before it and stays in the plot area", () => {
  const plot: Box = { left: 0, top: 0, right: 200, bottom: 100 };
  const size = { width: 50, height: 10 };
  const first = placeLabel({ x: 100, y: 80 }, size, [], plot);
  assert.deepEqual(first, { left: 100, top: 80, right: 150, bottom: 90 }, "where it was asked, when free");
  // Asked for the same place: just above the first (up is preferred), touching it, not over it.
  const second = placeLabel({ x: 120, y: 80 }, size, [first], plot);
  assert.deepEqual(second, { left: 120, top: 70, right: 170, bottom: 80 });
  assert.ok(!overlaps(first, second));
  // Past the right edge and the top: pulled inside; with no room above, it goes below what it would cover.
  const edge = placeLabel({ x: 190, y: -5 }, size, [{ left: 140, top: 0, right: 200, bottom: 10 }], plot);
  assert.deepEqual(edge, { left: 150, top: 10, right: 200, bottom: 20 });
  // No free height at all: it stays where it was asked (inside the plot).
  const full = [{ left: 0, top: 0, right: 200, bottom: 100 }];
  assert.deepEqual(placeLabel({ x: 10, y: 10 }, size, full, plot), {
    left: 10,
    top: 10,
    right: 60,
    bottom: 20,
  });
});

Deno.test("a log axis labels 1, 2 and 5 where they fit, else fewer powers of ten", () => {
  const splits = [1e4, 2e4, 3e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 1e7, 1e8];
  const text = (v: number) => String(v);
  const at = (pxPerDecade: number) => logTickLabels(splits, pxPerDecade, 40, text).filter(Boolean);
  assert.deepEqual(at(200), [
    "10000",
    "20000",
    "50000",
    "100000",
    "200000",
    "500000",
    "1000000",
    "2000000",
    "10000000",
    "100000000",
  ]);
  assert.deepEqual(at(100), ["10000", "100000", "1000000", "10000000", "100000000"]);
  // 15 px a decade: every third power of ten (40 px a label).
  assert.deepEqual(at(15), ["1000000"]);
  assert.deepEqual(at(25), ["10000", "1000000", "100000000"]);
  // Ticks left out keep their place (and grid line) with no text.
  assert.equal(logTickLabels(splits, 100, 40, text).length, splits.length);
});
