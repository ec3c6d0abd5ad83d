/** `didYouMean` (server/tasks/did-you-mean.ts): which known name an unknown one is a typo of, by hand. */
import assert from "node:assert/strict";
import { didYouMean } from "../server/tasks/did-you-mean.ts";

const SIZES = ["nano", "micro", "mini", "small", "medium", "large", "xl"];
const TASKS = ["world-region", "world-coast", "world-region-rare", "world-same-half"];

Deno.test("didYouMean: the nearest known name within a typo, case aside; nothing when none is that near", () => {
  assert.equal(didYouMean("medum", SIZES), '; did you mean "medium"?'); // one deletion
  assert.equal(didYouMean("NANO", SIZES), '; did you mean "nano"?'); // case only
  assert.equal(didYouMean("mcro", SIZES), '; did you mean "micro"?');
  // Two edits are within reach of an 11-letter name (one per four letters), not of a 4-letter one.
  assert.equal(didYouMean("world-coats", TASKS), '; did you mean "world-coast"?');
  assert.equal(didYouMean("mnii", SIZES), "");
  assert.equal(didYouMean("huge", SIZES), "");
  assert.equal(didYouMean("giant", SIZES), "");
  // The nearest wins: "world-regio" is one edit from world-region and six from world-region-rare.
  assert.equal(didYouMean("world-regio", TASKS), '; did you mean "world-region"?');
  assert.equal(didYouMean("anything", []), "");
});
