/**
 * `lab export`'s Hugging Face folder (server/lab/hf-export.ts): the files and config keys HF's GPT-2
 * expects, the tensors under GPT2LMHeadModel's names and shapes (listed here by hand) with no head and
 * no lm_head, the tokenizer files re-read by an independent BPE written here, and the engine's logits on
 * the exported model against PyTorch's (tests/fixtures/hf-export: scripts/hf-check.py built GPT-2 from
 * the exported config.json alone). No Python is needed here.
 */
import assert from "node:assert/strict";
import { loadCheckpoint } from "../kernels/checkpoint.ts";
import { HEAD_PARAMS, paramLayout } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { GptModel } from "../kernels/gpt.ts";
import { decodeSafetensors } from "../kernels/safetensors.ts";
import { BYTE_TO_UNICODE, createTokenizer, type Tokenizer } from "../server/corpus/tokenizer.ts";
import { hfVocabulary, writeHfExport } from "../server/lab/hf-export.ts";
import { main as exportMain } from "../scripts/cli/export.ts";
import { UsageError } from "../server/contract/command-flags.ts";
import { TINY_LOGITS_PATH, tinyConfig, tinyModel, tinyTokens } from "./fixtures/hf-export/tiny-model.ts";

const exportDir = await Deno.makeTempDir({ prefix: "hf-export-" });
const tempDirs = [exportDir];
globalThis.addEventListener("unload", () => {
  for (const dir of tempDirs) Deno.removeSync(dir, { recursive: true });
});
await writeHfExport(exportDir, tinyModel);
const readJson = async (name: string) => JSON.parse(await Deno.readTextFile(`${exportDir}/${name}`));

/** GPT2LMHeadModel's state-dict names and shapes for width C, V ids, P positions, L layers (by hand). */
function gpt2Shapes(C: number, V: number, P: number, L: number): Map<string, number[]> {
  const shapes = new Map<string, number[]>([["transformer.wte.weight", [V, C]], ["transformer.wpe.weight", [
    P,
    C,
  ]]]);
  for (let l = 0; l < L; l++) {
    const h = `transformer.h.${l}.`;
    shapes.set(h + "ln_1.weight", [C]).set(h + "ln_1.bias", [C]);
    shapes.set(h + "attn.c_attn.weight", [C, 3 * C]).set(h + "attn.c_attn.bias", [3 * C]);
    shapes.set(h + "attn.c_proj.weight", [C, C]).set(h + "attn.c_proj.bias", [C]);
    shapes.set(h + "ln_2.weight", [C]).set(h + "ln_2.bias", [C]);
    shapes.set(h + "mlp.c_fc.weight", [C, 4 * C]).set(h + "mlp.c_fc.bias", [4 * C]);
    shapes.set(h + "mlp.c_proj.weight", [4 * C, C]).set(h + "mlp.c_proj.bias", [C]);
  }
  return shapes.set("transformer.ln_f.weight", [C]).set("transformer.ln_f.bias", [C]);
}

Deno.test("hf export: the folder holds HF GPT-2's files and config keys", async () => {
  const names = [];
  for await (const entry of Deno.readDir(exportDir)) names.push(entry.name);
  assert.deepEqual(names.sort(), [
    "added_tokens.json",
    "config.json",
    "merges.txt",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "vocab.json",
  ]);
  const config = await readJson("config.json");
  assert.equal(config.model_type, "gpt2");
  assert.deepEqual(config.architectures, ["GPT2LMHeadModel"]);
  assert.deepEqual(
    [config.n_embd, config.n_layer, config.n_head, config.n_positions, config.n_ctx, config.vocab_size],
    [16, 2, 2, 8, 8, 298],
  );
  assert.equal(config.activation_function, "gelu_new");
  assert.equal(config.layer_norm_epsilon, 1e-5);
  assert.equal(config.tie_word_embeddings, true);
  // The 40-merge vocabulary has no <|endoftext|>: no bos/eos id that would point outside it.
  assert.equal(config.bos_token_id, null);
  assert.equal(config.eos_token_id, null);
  assert.deepEqual(await readJson("added_tokens.json"), { " Zorblax": 296, " Quintrel": 297 });
  assert.deepEqual(await readJson("special_tokens_map.json"), {});
});

Deno.test("hf export: model.safetensors holds the LM's tensors only, under HF names, equal to ours", async () => {
  const file = decodeSafetensors(await Deno.readFile(`${exportDir}/model.safetensors`));
  const want = gpt2Shapes(16, 298, 8, 2);
  assert.deepEqual([...file.tensors.keys()].sort(), [...want.keys()].sort());
  for (const [name, tensor] of file.tensors) {
    assert.equal(tensor.dtype, "F32");
    assert.deepEqual(tensor.shape, want.get(name), name);
  }
  const layout = paramLayout(tinyConfig);
  const wte = layout.byName.get("wte.weight")!;
  assert.deepEqual(
    file.tensors.get("transformer.wte.weight")!.data,
    tinyModel.params.subarray(wte.offset, wte.offset + wte.size),
  );
  // The lab's HF import reads the export back: every LM tensor as written, the heads at zero.
  const back = await loadCheckpoint(exportDir);
  assert.equal(back.source, "hf");
  for (const spec of layout.specs) {
    const got = back.params.subarray(spec.offset, spec.offset + spec.size);
    const heads: readonly string[] = HEAD_PARAMS;
    if (heads.includes(spec.name)) assert.ok(got.every((v) => v === 0), spec.name);
    else assert.deepEqual(got, tinyModel.params.subarray(spec.offset, spec.offset + spec.size), spec.name);
  }
});

/** GPT-2's BPE from vocab.json + merges.txt + added tokens, written from the format, not from our code. */
function independentEncoder(
  vocab: Record<string, number>,
  mergesText: string,
  added: Record<string, number>,
) {
  const rank = new Map<string, number>();
  mergesText.split("\n").filter((l) => l && !l.startsWith("#version")).forEach((l, i) => rank.set(l, i));
  const pretokens = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  return (text: string): number[] =>
    [...text.matchAll(pretokens)].flatMap(([word]) => {
      if (word in added) return [added[word]];
      let parts = [...new TextEncoder().encode(word)].map((b) => BYTE_TO_UNICODE[b]);
      for (;;) {
        let best = -1;
        for (let i = 0; i + 1 < parts.length; i++) {
          const r = rank.get(`${parts[i]} ${parts[i + 1]}`);
          if (r !== undefined && (best < 0 || r < rank.get(`${parts[best]} ${parts[best + 1]}`)!)) best = i;
        }
        if (best < 0) break;
        const [left, right] = [parts[best], parts[best + 1]];
        const merged: string[] = [];
        for (let i = 0; i < parts.length; i++) {
          if (parts[i] === left && parts[i + 1] === right) merged.push(left + parts[++i]);
          else merged.push(parts[i]);
        }
        parts = merged;
      }
      return parts.map((p) => vocab[p]);
    });
}

const SENTENCES = [
  'The capital of Zorblax is Quintrel, isn\'t it? Zorblax said:  "yes" 42 times.\n\nThe end.',
  " Zorblax and the Quintrel's weather: naïve café — 3.14 ±0.01",
];

Deno.test("hf export: vocab.json + merges.txt + added tokens encode as our tokenizer does", async () => {
  const encode = independentEncoder(
    await readJson("vocab.json"),
    await Deno.readTextFile(`${exportDir}/merges.txt`),
    await readJson("added_tokens.json"),
  );
  for (const sentence of SENTENCES) assert.deepEqual(encode(sentence), tinyModel.tokenizer.encode(sentence));
  assert.ok(SENTENCES.some((s) => tinyModel.tokenizer.encode(s).some((id) => id >= 256 && id < 296)));
});

Deno.test("hf export: the lab's default 256-merge vocabulary and full GPT-2's round-trip too", () => {
  const check = (tokenizer: Tokenizer, eos: boolean) => {
    const { vocab, merges } = hfVocabulary(tokenizer);
    assert.equal(Object.keys(vocab).length, 256 + tokenizer.merges + (eos ? 1 : 0));
    assert.equal(vocab["<|endoftext|>"], eos ? 50256 : undefined);
    const encode = independentEncoder(vocab, merges.join("\n"), {});
    for (const sentence of SENTENCES) assert.deepEqual(encode(sentence), tokenizer.encode(sentence));
  };
  check(createTokenizer({ merges: 256 }), false);
  check(createTokenizer({ merges: 50000 }), true);
});

Deno.test("hf export: the engine's logits on the exported model match PyTorch's from the HF config", async () => {
  const fixture = JSON.parse(await Deno.readTextFile(TINY_LOGITS_PATH));
  assert.deepEqual(fixture.tokens, tinyTokens);
  const B = tinyTokens.length, T = tinyTokens[0].length, V = tinyConfig.vocabSize;
  const { config, params } = await loadCheckpoint(exportDir);
  const model = new GptModel(await getGpu(), config, params, { batchSize: B, seqLen: T });
  try {
    model.setBatch({ tokens: Int32Array.from(tinyTokens.flat()), lengths: Int32Array.from([T, T]) });
    model.logitsStep();
    const logits = await model.readLogits();
    const want: number[] = fixture.logits.flat(2);
    assert.equal(logits.length, B * T * V);
    let diff = 0, scale = 0;
    for (let i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs(logits[i] - want[i]));
      scale = Math.max(scale, Math.abs(want[i]));
    }
    assert.ok(diff / scale < 1e-4, `logits rel error ${diff / scale}`);
  } finally {
    model.destroy();
  }
});

Deno.test("lab export: a size that is not pretrained is refused with the command that fixes it", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "hf-export-data-" });
  tempDirs.push(dataDir);
  const out = `${dataDir}/out`;
  await assert.rejects(
    () => exportMain(["--size", "nano", "--out", out, "--data-dir", dataDir]),
    /deno task lab pretrain --size nano/,
  );
  await assert.rejects(() => exportMain(["--size", "nano"]), UsageError);
  await assert.rejects(() => exportMain(["--size", "nano", "--out", out, "--outt", "x"]), UsageError);
  await assert.rejects(() => Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("hf export: a tokenizer that does not fit the model is refused", async () => {
  await assert.rejects(
    () => writeHfExport(`${exportDir}-bad`, { ...tinyModel, tokenizer: createTokenizer({ merges: 0 }) }),
    /tokenizer gpt2-bpe-0 has 256 ids, the model's vocabulary 298/,
  );
});
