// Tokenizer: GPT-2 agreement on the full vocabulary, hand-checked small vocabularies, Unicode round-trip,
// added tokens.
import assert from "node:assert/strict";
import { encode as referenceEncode } from "gpt-tokenizer/encoding/r50k_base";
import { createTokenizer } from "../server/corpus/tokenizer.ts";

const SAMPLES = [
  "Hello world! It's a test, isn't it? We'll see what they've done; I'm sure you'd agree.",
  "Call me Ishmael. Some years ago--never mind how long precisely--having little or no money",
  "   leading spaces, trailing spaces   \n\n\tand tabs\r\nand CRLF  ",
  "numbers 1234567890 and 3.14159, 1,000,000 dollars; 12th of May 2024",
  "emoji 🎉🐳👩‍👩‍👧 mixed with text, 中文字符 and 日本語のテキスト, Ελληνικά, русский",
  "combining marks: e\u0301 a\u0308 n\u0303; Zalgo: Z\u0351\u0357a\u0308\u0300l\u0363go",
  "symbols <|endoftext|> are plain text here: {}[]()<>@#$%^&*_+=|\\/~`",
  "'s 't 're 've 'm 'll 'd 'S 'T DON'T won't",
  "",
];

Deno.test("full vocabulary agrees with gpt-tokenizer's GPT-2 encoding", () => {
  const gpt2 = createTokenizer({ merges: 50000 });
  assert.equal(gpt2.vocabSize, 50257);
  assert.equal(gpt2.id, "gpt2-bpe-50000");
  for (const text of SAMPLES) {
    assert.deepEqual(
      gpt2.encode(text),
      referenceEncode(text, { disallowedSpecial: new Set() }),
      `text ${JSON.stringify(text)}`,
    );
  }
  // Known GPT-2 ids: " the" = 262, "Hello" = 15496, " world" = 995.
  assert.deepEqual(gpt2.encode("Hello world the"), [15496, 995, 262]);
  assert.equal(gpt2.decode([50256]), "<|endoftext|>");
});

Deno.test("small vocabularies, checked by hand against GPT-2's first merges", () => {
  // GPT-2 byte ids: '!'..'~' are 0..93, so 'h' = 0x68 - 0x21 = 71, 't' = 83; the space byte is 220.
  const bytesOnly = createTokenizer({ merges: 0 });
  assert.equal(bytesOnly.vocabSize, 256);
  assert.deepEqual(bytesOnly.encode("hi"), [71, 72]);
  assert.deepEqual(bytesOnly.encode(" t"), [220, 83]);
  // First merges: 256 "Ġ t", 257 "Ġ a", 258 "h e", 259 "i n", 260 "r e", 261 "o n", 262 "Ġt he".
  const three = createTokenizer({ merges: 3 });
  assert.deepEqual(three.encode(" the"), [256, 258]);
  assert.deepEqual(three.encode("in"), [72, 77]);
  const seven = createTokenizer({ merges: 7 });
  assert.equal(seven.vocabSize, 263);
  assert.deepEqual(seven.encode(" the"), [262]);
  assert.deepEqual(seven.encode("in the"), [259, 262]);
  assert.deepEqual(seven.encode(" at"), [257, 83]);
  const standard = createTokenizer();
  assert.equal(standard.vocabSize, 4352);
  assert.equal(standard.id, "gpt2-bpe-4096");
  // Every id of the 4096-merge vocabulary is below 4352, and it shares GPT-2's ids where both have the token.
  const ids = standard.encode(SAMPLES.join(" "));
  assert.ok(ids.every((id) => id >= 0 && id < 4352));
  assert.deepEqual(standard.encode(" the cat"), [262, 3797]);
});

Deno.test("round-trip on arbitrary Unicode", () => {
  const tokenizers = [createTokenizer({ merges: 0 }), createTokenizer(), createTokenizer({ merges: 50000 })];
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const texts = [...SAMPLES];
  for (let n = 0; n < 30; n++) {
    // Random code points from all planes, skipping surrogates (not representable in UTF-8).
    let text = "";
    for (let i = 0; i < 40; i++) {
      const cp = random() < 0.5 ? Math.floor(random() * 0x80) : Math.floor(random() * 0x10ffff);
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      text += String.fromCodePoint(cp);
    }
    texts.push(text);
    // Strings derived from random bytes (invalid sequences become U+FFFD).
    const bytes = Uint8Array.from({ length: 60 }, () => Math.floor(random() * 256));
    texts.push(new TextDecoder().decode(bytes));
  }
  for (const tokenizer of tokenizers) {
    for (const text of texts) {
      assert.equal(
        tokenizer.decode(tokenizer.encode(text)),
        text,
        `${tokenizer.id} on ${JSON.stringify(text)}`,
      );
    }
  }
});

Deno.test("added tokens map whole pre-tokens to one id after the BPE vocabulary", () => {
  const tokenizer = createTokenizer({
    merges: 4096,
    addedTokens: [" Zorvak", " Melbra"],
    addedTokensLabel: "world",
  });
  assert.equal(tokenizer.vocabSize, 4354);
  assert.match(tokenizer.id, /^gpt2-bpe-4096\+world-[0-9a-f]{12}$/);
  const ids = tokenizer.encode(". Zorvak lives in Melbra. Zorvaks differ");
  assert.equal(ids[1], 4352);
  assert.ok(ids.includes(4353));
  // " Zorvaks" is a different pre-token, so it stays BPE pieces.
  assert.equal(ids.filter((id) => id >= 4352).length, 2);
  assert.equal(tokenizer.decode(ids), ". Zorvak lives in Melbra. Zorvaks differ");
  const full = createTokenizer({ merges: 50000, addedTokens: [" Zorvak"] });
  assert.equal(full.vocabSize, 50258);
  assert.deepEqual(full.encode(" Zorvak"), [50257]);
});

Deno.test("bad options and ids give clear errors", () => {
  assert.throws(() => createTokenizer({ merges: 50001 }), /merges must be an integer in 0\.\.50000/);
  assert.throws(() => createTokenizer({ addedTokens: ["x", "x"] }), /listed twice/);
  assert.throws(() => createTokenizer().decode([4352]), /token id 4352 is outside the vocabulary/);
});
