/**
 * Comparison imports (Anthropic HH / TRL: {prompt?, chosen, rejected} per line) against a file written by
 * hand: each line becomes the pair of texts written out below (prompt + completion, as is), the preferred
 * one where the label says, the order a coin that is about fair and fixed by the line's content; bad lines
 * are named by number; a file mixing the two formats is refused; splitting keeps a prompt's comparisons
 * together and drops nothing; the import through the catalog stores and lists the task as pairwise.
 */
import assert from "node:assert/strict";
import { openDb } from "../db/client.ts";
import { importTask, listTasks } from "../server/api/catalog.ts";
import { parseTaskJsonl, splitExamples, TaskFormatError, textLines } from "../server/tasks/jsonl.ts";
import { SPLIT_NAMES } from "../server/tasks/splits.ts";
import { type TaskExample, taskFormat } from "../server/tasks/types.ts";

/** [prompt or undefined, chosen, rejected] of each line of the hand-written file. */
const LINES: [string | undefined, string, string][] = [
  ["Q: What is 2 + 2?\nA:", " 4", " 5"],
  ["Q: What is 2 + 2?\nA:", " Four.", " Twenty-two."],
  ["Q: What is 2 + 2?\nA:", " It is 4.", " I don't know."],
  ["Q: Capital of France?\nA:", " Paris", " Lyon"],
  ["Q: Capital of France?\nA:", " Paris, on the Seine.", " Marseille."],
  ["Q: Capital of Japan?\nA:", " Tokyo", " Kyoto"],
  ["Translate 'chat' to English: ", "cat", "chat"],
  ["Translate 'chien' to English: ", "dog", "chicken"],
  ["Translate 'chien' to English: ", "a dog", "a chain"],
  ["Name a colour. ", "Blue.", "Seven."],
  ["Name a colour. ", "Green.", "Tuesday."],
  ["Is the sea salty? ", "Yes.", "No."],
  [
    undefined,
    "\n\nHuman: Hi there.\n\nAssistant: Hello! How can I help?",
    "\n\nHuman: Hi there.\n\nAssistant: Go away.",
  ],
  [
    undefined,
    "\n\nHuman: How do I boil an egg?\n\nAssistant: Simmer it for nine minutes.",
    "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in the oven.",
  ],
  [
    undefined,
    "\n\nHuman: Tell me a joke.\n\nAssistant: Why did the bicycle fall? It was two-tired.",
    "\n\nHuman: Tell me a joke.\n\nAssistant: No.",
  ],
  [undefined, "\n\nHuman: What is 10 / 2?\n\nAssistant: 5.", "\n\nHuman: What is 10 / 2?\n\nAssistant: 8."],
  [undefined, "\n\nHuman: Spell 'cat'.\n\nAssistant: C-A-T.", "\n\nHuman: Spell 'cat'.\n\nAssistant: K-A-T."],
  [
    undefined,
    "\n\nHuman: Thanks!\n\nAssistant: You're welcome.",
    "\n\nHuman: Thanks!\n\nAssistant: Whatever.",
  ],
  [
    undefined,
    "\n\nHuman: Is ice cold?\n\nAssistant: Yes.",
    "\n\nHuman: Is ice cold?\n\nAssistant: No, it is hot.",
  ],
  [
    undefined,
    "\n\nHuman: Largest planet?\n\nAssistant: Jupiter.",
    "\n\nHuman: Largest planet?\n\nAssistant: Mars.",
  ],
  [undefined, "\n\nHuman: Say hi.\n\nAssistant: Hi!", "\n\nHuman: Say hi.\n\nAssistant: ..."],
  [
    undefined,
    "\n\nHuman: Opposite of up?\n\nAssistant: Down.",
    "\n\nHuman: Opposite of up?\n\nAssistant: Sideways.",
  ],
];

/** The texts each line must give, written out in full (prompt + completion, nothing added). */
const EXPECTED: [string, string][] = [
  ["Q: What is 2 + 2?\nA: 4", "Q: What is 2 + 2?\nA: 5"],
  ["Q: What is 2 + 2?\nA: Four.", "Q: What is 2 + 2?\nA: Twenty-two."],
  ["Q: What is 2 + 2?\nA: It is 4.", "Q: What is 2 + 2?\nA: I don't know."],
  ["Q: Capital of France?\nA: Paris", "Q: Capital of France?\nA: Lyon"],
  ["Q: Capital of France?\nA: Paris, on the Seine.", "Q: Capital of France?\nA: Marseille."],
  ["Q: Capital of Japan?\nA: Tokyo", "Q: Capital of Japan?\nA: Kyoto"],
  ["Translate 'chat' to English: cat", "Translate 'chat' to English: chat"],
  ["Translate 'chien' to English: dog", "Translate 'chien' to English: chicken"],
  ["Translate 'chien' to English: a dog", "Translate 'chien' to English: a chain"],
  ["Name a colour. Blue.", "Name a colour. Seven."],
  ["Name a colour. Green.", "Name a colour. Tuesday."],
  ["Is the sea salty? Yes.", "Is the sea salty? No."],
  ...LINES.slice(12).map(([, chosen, rejected]) => [chosen, rejected] as [string, string]),
];

const lineOf = ([prompt, chosen, rejected]: [string | undefined, string, string]) =>
  JSON.stringify(prompt === undefined ? { chosen, rejected } : { prompt, chosen, rejected });
const FILE = [...LINES.slice(0, 5).map(lineOf), "", "   ", ...LINES.slice(5).map(lineOf)].join("\n") + "\n";

const preferredOf = (e: TaskExample) => (e.hard_label === 1 ? e.other! : e.txt);
const rejectedOf = (e: TaskExample) => (e.hard_label === 1 ? e.txt : e.other!);

Deno.test("a comparison file parses to the hand-written pairs, the preferred text where the label says", () => {
  const examples = parseTaskJsonl(FILE);
  assert.equal(examples.length, LINES.length);
  assert.equal(taskFormat(examples), "pairwise");
  examples.forEach((e, i) => {
    assert.deepEqual([preferredOf(e), rejectedOf(e)], EXPECTED[i], `line of ${JSON.stringify(LINES[i])}`);
    assert.equal(e.prompt, LINES[i][0], "a comparison keeps its prompt (for splitting), none when absent");
  });
  // The coin: both orders occur, and the same file always imports the same way, in any line order.
  const labels = examples.map((e) => e.hard_label);
  assert.ok(labels.includes(0) && labels.includes(1), `labels ${labels}`);
  assert.deepEqual(parseTaskJsonl(FILE), examples);
  const reversed = parseTaskJsonl(LINES.map(lineOf).reverse().join("\n"));
  assert.deepEqual(reversed.reverse(), examples);
  // About fair over many comparisons.
  const many = Array.from(
    { length: 400 },
    (_, i) => JSON.stringify({ chosen: `good ${i}`, rejected: `bad ${i}` }),
  );
  const second = parseTaskJsonl(many.join("\n")).filter((e) => e.hard_label === 1).length / many.length;
  assert.ok(second > 0.43 && second < 0.57, `${second} of comparisons put the chosen text second`);
  // A classification file still parses to bare examples, never with `other`.
  const plain = Array.from({ length: 20 }, (_, i) => JSON.stringify({ txt: `t${i}`, hard_label: i % 2 }));
  const classified = parseTaskJsonl(plain.join("\n"));
  assert.equal(taskFormat(classified), "classification");
  assert.ok(classified.every((e) => !("other" in e)));
});

Deno.test("a bad comparison line is named by number; mixing formats and identical members are refused", () => {
  const good = LINES.map(lineOf);
  const withLine = (n: number, line: string, lines = good) => {
    const copy = lines.slice();
    copy[n - 1] = line;
    return copy.join("\n");
  };
  const expectError = (text: string, line: number, pattern: RegExp) => {
    assert.throws(() => parseTaskJsonl(text), (err: unknown) => {
      assert.ok(err instanceof TaskFormatError, String(err));
      assert.equal(err.line, line);
      assert.match(err.message, pattern);
      return true;
    });
  };
  expectError(withLine(4, '{"prompt": "p", "rejected": "r"}'), 4, /^line 4: missing field `chosen`$/);
  expectError(withLine(5, '{"chosen": "c"}'), 5, /^line 5: missing field `rejected`$/);
  expectError(
    withLine(6, '{"chosen": 3, "rejected": "r"}'),
    6,
    /^line 6: `chosen` must be a string, got number 3/,
  );
  expectError(
    withLine(7, '{"chosen": "c", "rejected": null}'),
    7,
    /^line 7: `rejected` must be a string, got null/,
  );
  expectError(withLine(8, '{"chosen": "  ", "rejected": "r"}'), 8, /^line 8: `chosen` is empty/);
  expectError(
    withLine(9, '{"prompt": 1, "chosen": "c", "rejected": "r"}'),
    9,
    /^line 9: `prompt` must be a string/,
  );
  expectError(
    withLine(10, '{"prompt": "Q:", "chosen": " same", "rejected": " same"}'),
    10,
    /^line 10: chosen and rejected are the same text$/,
  );
  expectError(withLine(11, "{oops"), 11, /^line 11: not valid JSON/);
  // Mixing: a classification line in a comparison file, and the other way round; both names given.
  expectError(
    withLine(12, '{"txt": "x", "hard_label": 1}'),
    12,
    /^line 12: a classification \(txt, hard_label\) line in a comparison \(prompt, chosen, rejected\) file; the first line decides/,
  );
  const plain = Array.from({ length: 22 }, (_, i) => JSON.stringify({ txt: `t${i}`, hard_label: i % 2 }));
  expectError(
    withLine(3, '{"chosen": "c", "rejected": "r"}', plain),
    3,
    /^line 3: a comparison \(prompt, chosen, rejected\) line in a classification \(txt, hard_label\) file/,
  );
  expectError(
    withLine(1, '{"txt": "x", "chosen": "c", "rejected": "r"}'),
    1,
    /^line 1: mixes the two formats/,
  );
  expectError(withLine(1, '{"prompt": "only a prompt"}'), 1, /^line 1: missing fields: give classification/);
  expectError(good.slice(0, 19).join("\n"), 0, /at least 20 comparisons, the file has 19/);
});

Deno.test("splitting comparisons keeps a prompt's comparisons in one split and drops nothing", () => {
  const lines: string[] = [];
  for (let p = 0; p < 30; p++) {
    for (let k = 0; k < 1 + (p % 3); k++) {
      lines.push(JSON.stringify({ prompt: `Prompt ${p}:`, chosen: ` good ${k}`, rejected: ` bad ${k}` }));
    }
  }
  // Without a prompt: the same comparison twice (once the other way round is a different comparison).
  for (let d = 0; d < 30; d++) {
    lines.push(JSON.stringify({ chosen: `dialogue ${d} kind`, rejected: `dialogue ${d} rude` }));
  }
  lines.push(JSON.stringify({ chosen: "dialogue 3 kind", rejected: "dialogue 3 rude" }));
  const examples = parseTaskJsonl(lines.join("\n"));
  const splits = splitExamples(examples, 0);
  const all = SPLIT_NAMES.flatMap((name) => splits[name].map((e) => ({ ...e, split: name })));
  assert.equal(all.length, examples.length, "nothing dropped");
  const where = new Map<string, Set<string>>();
  for (const e of all) {
    assert.ok(e.other !== undefined && !("prompt" in e), "split examples are pairs without the prompt field");
    const key = /^Prompt \d+:/.exec(e.txt)?.[0] ?? preferredOf(e);
    where.set(key, (where.get(key) ?? new Set()).add(e.split));
  }
  for (const [key, splitsOf] of where) assert.equal(splitsOf.size, 1, `${key} in ${[...splitsOf]}`);
  assert.equal(where.size, 60);
  for (const name of SPLIT_NAMES) assert.ok(splits[name].length > 0, `${name} is empty`);
  assert.notDeepEqual(splitExamples(examples, 1).test, splits.test);
  // A mix of pairs and single texts is refused with what is wrong (60 prompted and 31 bare comparisons).
  assert.throws(
    () => splitExamples([...examples, { txt: "lone", hard_label: 1 }], 0),
    /mix the two formats: 91 of 92 carry `other`/,
  );
});

Deno.test("importing a comparison file stores a pairwise task and lists it as pairwise", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pairwise-import-test-" });
  const opened = await openDb({ dataDir });
  try {
    const imported = await importTask(opened.db, {
      name: "prefs",
      lines: textLines(FILE),
      source: "prefs.jsonl",
    });
    assert.equal(imported.format, "pairwise");
    assert.equal(imported.exampleCount, LINES.length);
    const plain = Array.from({ length: 20 }, (_, i) => JSON.stringify({ txt: `t${i}`, hard_label: i % 2 }));
    await importTask(opened.db, { name: "plain", lines: plain });
    const listed = await listTasks(opened.db, dataDir);
    assert.equal(listed.find((t) => t.name === "prefs")?.format, "pairwise");
    assert.equal(listed.find((t) => t.name === "plain")?.format, "classification");
    assert.equal(listed.find((t) => t.name === "polarity")?.format, "classification");
    assert.equal(listed.find((t) => t.name === "world-prefer-region")?.format, "pairwise");
  } finally {
    await opened.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
