/**
 * The GPU recipe's task (scripts/gpu/recipe.ts): deterministic review sentences whose label is read back
 * here from the words themselves, by a rule written independently of the generator.
 */
import assert from "node:assert/strict";
import { sentimentLines } from "../scripts/gpu/recipe.ts";

const FAVOURABLE = new Set([
  "wonderful",
  "brilliant",
  "moving",
  "delightful",
  "superb",
  "charming",
  "gripping",
]);
const UNFAVOURABLE = new Set(["dull", "awful", "tedious", "clumsy", "boring", "painful", "forgettable"]);

Deno.test("gpu recipe: sentiment lines are deterministic, labelled by adjective and negation, both classes", () => {
  const lines = sentimentLines(300, 7);
  assert.deepEqual(lines, sentimentLines(300, 7));
  assert.notDeepEqual(lines, sentimentLines(300, 8));
  let negated = 0, favourable = 0;
  for (const line of lines) {
    const { txt, hard_label } = JSON.parse(line);
    const match = /^.+ the \w+ was (not )?(\w+)\.$/.exec(txt);
    assert.ok(match, `unexpected sentence: ${txt}`);
    const [, not, adjective] = match;
    assert.ok(FAVOURABLE.has(adjective) || UNFAVOURABLE.has(adjective), adjective);
    const expected = FAVOURABLE.has(adjective) !== Boolean(not) ? 1 : 0;
    assert.equal(hard_label, expected, txt);
    if (not) negated++;
    favourable += expected;
  }
  // Negation is common enough that the last adjective alone does not give the label.
  assert.ok(negated > 50 && negated < 150, `negated ${negated}`);
  assert.ok(favourable > 100 && favourable < 200, `favourable ${favourable}`);
});
