/** The dashboard's number and label formatting (web/lib/format.ts), against hand-written expectations. */
import assert from "node:assert/strict";
import {
  formatInterval,
  METHOD_COLOURS,
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

Deno.test("method colours are not size colours", () => {
  const sizes = new Set(PALETTE.map((c) => c.toLowerCase()));
  for (const colour of Object.values(METHOD_COLOURS)) assert.ok(!sizes.has(colour.toLowerCase()), colour);
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
  assert.equal(modelStatusWord({ status: "partial", step: 30, totalSteps: 120 }), "partial 25 %");
  assert.equal(modelStatusWord({ status: "pretrained" }), "pretrained");
});
