/**
 * Checkpoint directories: lab save/load round trip, Hugging Face GPT-2 import (with and without the
 * `transformer.` prefix, tied lm_head and mask buffers ignored, the heads zero), a lab checkpoint
 * written before the reward head (loads it at zero), and the named errors for missing files, corrupted
 * JSON, missing and mis-shaped tensors.
 */
import assert from "node:assert/strict";
import { type GptConfig, HEAD_PARAMS, initParameters, paramLayout } from "../kernels/config.ts";
import { CHECKPOINT_FORMAT, loadCheckpoint, saveCheckpoint } from "../kernels/checkpoint.ts";
import { decodeSafetensors, encodeSafetensors, type TensorToWrite } from "../kernels/safetensors.ts";
import { TORCH_CHECKPOINT_DIR } from "./fixtures/torch-reference.ts";

const config: GptConfig = { vocabSize: 13, contextLength: 6, width: 8, layers: 2, heads: 2 };

Deno.test("lab checkpoint round trip keeps config, every parameter and meta; no temp files left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const params = initParameters(config, 3);
    params[paramLayout(config).byName.get("cls.bias")!.offset + 1] = 0.25; // a non-zero head survives
    params[paramLayout(config).byName.get("reward.weight")!.offset + 2] = -0.5;
    await saveCheckpoint(`${dir}/ckpt`, { config, params, meta: { step: 7, note: "hi" } });
    const files = [...Deno.readDirSync(`${dir}/ckpt`)].map((e) => e.name).sort();
    assert.deepEqual(files, ["config.json", "model.safetensors"]);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/ckpt/config.json`));
    assert.equal(json.format, CHECKPOINT_FORMAT);
    assert.deepEqual(json.config, config);

    const loaded = await loadCheckpoint(`${dir}/ckpt`);
    assert.equal(loaded.source, "lab");
    assert.deepEqual(loaded.config, config);
    assert.deepEqual(loaded.meta, { step: 7, note: "hi" });
    assert.deepEqual(loaded.params, params);
    assert.deepEqual(loaded.ignoredTensors, []);

    // The file holds one tensor per parameter with the layout's shape, read back independently.
    const file = decodeSafetensors(await Deno.readFile(`${dir}/ckpt/model.safetensors`));
    assert.equal(file.tensors.size, paramLayout(config).specs.length);
    assert.deepEqual(file.tensors.get("h.1.mlp.c_fc.weight")!.shape, [8, 32]);
    assert.equal((file.tensors.get("cls.bias")!.data as Float32Array)[1], 0.25);
    assert.deepEqual(file.tensors.get("reward.weight")!.shape, [8, 1]);
    assert.equal((file.tensors.get("reward.weight")!.data as Float32Array)[2], -0.5);

    // Overwriting in place works (rename over the old files).
    await saveCheckpoint(`${dir}/ckpt`, { config, params: initParameters(config, 4) });
    assert.deepEqual((await loadCheckpoint(`${dir}/ckpt`)).params, initParameters(config, 4));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveCheckpoint refuses a buffer of the wrong size", async () => {
  await assert.rejects(
    saveCheckpoint("/nonexistent/never", { config, params: new Float32Array(10) }),
    /params has 10 elements, the layout of this config needs \d+/,
  );
});

Deno.test("imports the Hugging Face GPT-2 fixture: prefix stripped, lm_head and mask buffers ignored, heads zero", async () => {
  const hf = await loadCheckpoint(TORCH_CHECKPOINT_DIR);
  assert.equal(hf.source, "hf");
  assert.deepEqual(hf.config, { vocabSize: 37, contextLength: 9, width: 16, layers: 2, heads: 4 });
  assert.deepEqual(hf.ignoredTensors.sort(), ["h.0.attn.bias", "h.1.attn.bias", "lm_head.weight"]);
  const layout = paramLayout(hf.config);
  const file = decodeSafetensors(await Deno.readFile(`${TORCH_CHECKPOINT_DIR}/model.safetensors`));
  for (const name of ["wte.weight", "h.1.attn.c_attn.weight", "h.0.mlp.c_proj.bias", "ln_f.weight"]) {
    const spec = layout.byName.get(name)!;
    assert.deepEqual(
      hf.params.subarray(spec.offset, spec.offset + spec.size),
      file.tensors.get("transformer." + name)!.data,
      name,
    );
  }
  for (const name of HEAD_PARAMS) {
    const head = layout.byName.get(name)!;
    assert.ok(hf.params.subarray(head.offset, head.offset + head.size).every((x) => x === 0), name);
  }
});

Deno.test("a lab checkpoint written before the reward head loads with reward.weight at zero", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const layout = paramLayout(config);
    const params = initParameters(config, 5);
    const reward = layout.byName.get("reward.weight")!;
    params.fill(0.75, reward.offset, reward.offset + reward.size);
    await saveCheckpoint(dir, { config, params });
    // Rewrite the weights file without reward.weight, as every checkpoint saved before it existed.
    const file = decodeSafetensors(await Deno.readFile(`${dir}/model.safetensors`));
    const older = new Map<string, TensorToWrite>();
    for (const [name, t] of file.tensors) {
      if (name !== "reward.weight") {
        older.set(name, { dtype: "F32", shape: t.shape, data: t.data as Float32Array });
      }
    }
    await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(older));
    // Those checkpoints also predate the weights' checksum in config.json.
    const { weights: _, ...olderConfig } = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(olderConfig));
    const loaded = await loadCheckpoint(dir);
    assert.equal(loaded.verified, false);
    const want = params.slice();
    want.fill(0, reward.offset, reward.offset + reward.size);
    assert.deepEqual(loaded.params, want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Writes an HF-style directory from the fixture's tensors after `edit` renames/reshapes/drops some. */
async function writeHuggingFaceDir(
  dir: string,
  edit: (tensors: Map<string, TensorToWrite>) => void,
  configText?: string,
): Promise<void> {
  const file = decodeSafetensors(await Deno.readFile(`${TORCH_CHECKPOINT_DIR}/model.safetensors`));
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of file.tensors) {
    tensors.set(name, { dtype: "F32", shape: t.shape, data: t.data as Float32Array });
  }
  edit(tensors);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/model.safetensors`, encodeSafetensors(tensors));
  await Deno.writeTextFile(
    `${dir}/config.json`,
    configText ?? await Deno.readTextFile(`${TORCH_CHECKPOINT_DIR}/config.json`),
  );
}

function stripPrefix(tensors: Map<string, TensorToWrite>): void {
  for (const [name, t] of [...tensors]) {
    if (name.startsWith("transformer.")) {
      tensors.delete(name);
      tensors.set(name.slice("transformer.".length), t);
    }
  }
}

Deno.test("HF import without the transformer. prefix gives the same parameters", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeHuggingFaceDir(dir, stripPrefix);
    const plain = await loadCheckpoint(dir);
    const prefixed = await loadCheckpoint(TORCH_CHECKPOINT_DIR);
    assert.equal(plain.source, "hf");
    assert.deepEqual(plain.params, prefixed.params);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad checkpoints give errors naming the file, tensor and shapes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(loadCheckpoint(`${dir}/absent`), /checkpoint directory .*absent does not exist/);

    await writeHuggingFaceDir(`${dir}/missing`, (t) => t.delete("transformer.h.1.ln_2.bias"));
    await assert.rejects(
      loadCheckpoint(`${dir}/missing`),
      /missing tensor h\.1\.ln_2\.bias \(expected shape \[16\]\)/,
    );

    await writeHuggingFaceDir(`${dir}/misshaped`, (t) => {
      t.set("transformer.h.0.attn.c_attn.weight", {
        dtype: "F32",
        shape: [48, 16],
        data: new Float32Array(768),
      });
    });
    await assert.rejects(
      loadCheckpoint(`${dir}/misshaped`),
      /tensor h\.0\.attn\.c_attn\.weight has shape \[48, 16\], expected \[16, 48\]/,
    );

    await writeHuggingFaceDir(`${dir}/extra-layer`, (t) => {
      t.set("h.2.ln_1.weight", { dtype: "F32", shape: [16], data: new Float32Array(16) });
    });
    await assert.rejects(
      loadCheckpoint(`${dir}/extra-layer`),
      /unexpected tensor h\.2\.ln_1\.weight \(config has 2 layers\)/,
    );

    await writeHuggingFaceDir(`${dir}/corrupt`, () => {}, '{"n_embd": 16, "n_layer": ');
    await assert.rejects(loadCheckpoint(`${dir}/corrupt`), /config\.json is not valid JSON/);

    await writeHuggingFaceDir(
      `${dir}/no-heads`,
      () => {},
      '{"n_embd": 16, "n_layer": 2, "n_positions": 9, "vocab_size": 37}',
    );
    await assert.rejects(
      loadCheckpoint(`${dir}/no-heads`),
      /n_head must be a positive integer, got undefined/,
    );

    await writeHuggingFaceDir(
      `${dir}/relu`,
      () => {},
      JSON.stringify({
        n_embd: 16,
        n_layer: 2,
        n_head: 4,
        n_positions: 9,
        vocab_size: 37,
        activation_function: "relu",
      }),
    );
    await assert.rejects(loadCheckpoint(`${dir}/relu`), /activation_function "relu" is not supported/);

    await writeHuggingFaceDir(`${dir}/unknown`, () => {}, '{"hidden_size": 16}');
    await assert.rejects(
      loadCheckpoint(`${dir}/unknown`),
      /neither a lab checkpoint .* nor a Hugging Face GPT-2 config/,
    );

    await writeHuggingFaceDir(`${dir}/no-weights`, () => {});
    await Deno.remove(`${dir}/no-weights/model.safetensors`);
    await assert.rejects(loadCheckpoint(`${dir}/no-weights`), /model\.safetensors not found/);

    await writeHuggingFaceDir(`${dir}/no-config`, () => {});
    await Deno.remove(`${dir}/no-config/config.json`);
    await assert.rejects(loadCheckpoint(`${dir}/no-config`), /config\.json not found/);

    await writeHuggingFaceDir(`${dir}/truncated`, () => {});
    const bytes = await Deno.readFile(`${dir}/truncated/model.safetensors`);
    await Deno.writeFile(`${dir}/truncated/model.safetensors`, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(
      loadCheckpoint(`${dir}/truncated`),
      /truncated\/model\.safetensors: tensor .* out of range/,
    );

    // A lab checkpoint whose config disagrees with its tensors.
    await saveCheckpoint(`${dir}/lab`, { config, params: initParameters(config, 1) });
    const json = JSON.parse(await Deno.readTextFile(`${dir}/lab/config.json`));
    json.config.width = 16;
    json.config.heads = 4;
    await Deno.writeTextFile(`${dir}/lab/config.json`, JSON.stringify(json));
    await assert.rejects(
      loadCheckpoint(`${dir}/lab`),
      /tensor wte\.weight has shape \[13, 8\], expected \[13, 16\]/,
    );
    // Our own format requires the classification head.
    await writeHuggingFaceDir(
      `${dir}/lab-no-cls`,
      stripPrefix,
      JSON.stringify({
        format: CHECKPOINT_FORMAT,
        version: 1,
        config: { vocabSize: 37, contextLength: 9, width: 16, layers: 2, heads: 4 },
      }),
    );
    await assert.rejects(
      loadCheckpoint(`${dir}/lab-no-cls`),
      /missing tensor cls\.weight \(expected shape \[16, 2\]\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
