/**
 * Checkpoint directories: `config.json` + `model.safetensors`.
 *
 * - Lab format (written here): config.json = {format: "w2s-lab-gpt", version: 1, config: GptConfig,
 *   meta}; model.safetensors holds one F32 tensor per parameter name of the layout, in layout order.
 * - Hugging Face GPT-2 (read only): config.json with n_embd / n_layer / n_head / n_positions /
 *   vocab_size; tensors named like `h.0.attn.c_attn.weight`, with or without a `transformer.` prefix, in
 *   Conv1D layout (in × out, same as ours). `lm_head.weight` is tied to wte and ignored, as are the
 *   attention mask buffers; the task heads (HEAD_PARAMS: `cls.*`, `reward.weight`) are ours and start at
 *   zero when absent.
 * - A head added to the layout after a lab checkpoint was written (`reward.weight`) starts at zero too;
 *   the class head, in every lab checkpoint since version 1, is required there.
 *
 * Files are written to a temporary name and renamed, so a reader never sees half a file.
 */

import { type GptConfig, HEAD_PARAMS, paramLayout, validateConfig } from "./config.ts";
import { decodeSafetensors, encodeSafetensors, type Tensor, type TensorToWrite } from "./safetensors.ts";

export const CHECKPOINT_FORMAT = "w2s-lab-gpt";
export const CHECKPOINT_VERSION = 1;

export interface Checkpoint {
  config: GptConfig;
  /** Flat float32 buffer in `paramLayout(config)` order. */
  params: Float32Array;
  meta: Record<string, unknown>;
  source: "lab" | "hf";
  /** Tensors of the file that the model does not use (e.g. `lm_head.weight`, `attn.bias`). */
  ignoredTensors: string[];
}

/** Head tensors a checkpoint may lack, per source; they load as zeros (the heads' initial value). */
const OPTIONAL_TENSORS: Record<Checkpoint["source"], readonly string[]> = {
  hf: HEAD_PARAMS,
  lab: ["reward.weight"],
};

/** HF GPT-2 activations that are the tanh-form GELU we implement. */
const TANH_GELU_NAMES = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"];

async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const temporary = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeFile(temporary, data);
    await Deno.rename(temporary, path);
  } catch (err) {
    await Deno.remove(temporary).catch(() => {});
    throw err;
  }
}

export async function saveCheckpoint(
  dir: string,
  checkpoint: { config: GptConfig; params: Float32Array; meta?: Record<string, unknown> },
): Promise<void> {
  const { config, params } = checkpoint;
  const layout = paramLayout(config);
  if (params.length !== layout.total) {
    throw new Error(`params has ${params.length} elements, the layout of this config needs ${layout.total}`);
  }
  const tensors = new Map<string, TensorToWrite>();
  for (const spec of layout.specs) {
    tensors.set(spec.name, {
      dtype: "F32",
      shape: spec.shape,
      data: params.subarray(spec.offset, spec.offset + spec.size),
    });
  }
  const { vocabSize, contextLength, width, layers, heads } = config;
  const configJson = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    config: { vocabSize, contextLength, width, layers, heads },
    meta: checkpoint.meta ?? {},
  };
  await Deno.mkdir(dir, { recursive: true });
  // Weights first: config.json appearing last marks the checkpoint complete.
  await writeFileAtomic(`${dir}/model.safetensors`, encodeSafetensors(tensors, { format: "pt" }));
  await writeFileAtomic(
    `${dir}/config.json`,
    new TextEncoder().encode(JSON.stringify(configJson, null, 2) + "\n"),
  );
}

async function readCheckpointFile(dir: string, name: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(`${dir}/${name}`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        `checkpoint ${dir}: ${name} not found (a checkpoint needs config.json and model.safetensors)`,
      );
    }
    throw err;
  }
}

function positiveInteger(value: unknown, what: string): number {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new Error(`${what} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

/** Our GptConfig from a Hugging Face GPT-2 config.json, refusing architectures we would compute wrongly. */
function configFromHuggingFace(hf: Record<string, unknown>, where: string): GptConfig {
  const config: GptConfig = {
    vocabSize: positiveInteger(hf.vocab_size, `${where} vocab_size`),
    contextLength: positiveInteger(hf.n_positions ?? hf.n_ctx, `${where} n_positions`),
    width: positiveInteger(hf.n_embd, `${where} n_embd`),
    layers: positiveInteger(hf.n_layer, `${where} n_layer`),
    heads: positiveInteger(hf.n_head, `${where} n_head`),
  };
  if (hf.layer_norm_epsilon !== undefined && Math.abs((hf.layer_norm_epsilon as number) - 1e-5) > 1e-12) {
    throw new Error(
      `${where} layer_norm_epsilon ${hf.layer_norm_epsilon} is not supported (the engine uses 1e-5)`,
    );
  }
  if (hf.activation_function !== undefined && !TANH_GELU_NAMES.includes(hf.activation_function as string)) {
    throw new Error(
      `${where} activation_function ${JSON.stringify(hf.activation_function)} is not supported ` +
        `(the engine uses the tanh GELU: ${TANH_GELU_NAMES.join(", ")})`,
    );
  }
  if (hf.n_inner !== undefined && hf.n_inner !== null && hf.n_inner !== 4 * config.width) {
    throw new Error(`${where} n_inner ${hf.n_inner} is not supported (the engine uses 4 × n_embd)`);
  }
  return config;
}

/** True for tensors of a HF GPT-2 file that carry nothing we need. */
function isIgnorableHuggingFaceTensor(name: string): boolean {
  return name === "lm_head.weight" || /^h\.\d+\.attn\.(bias|masked_bias)$/.test(name);
}

/** Loads a lab checkpoint or imports a Hugging Face GPT-2 directory into the flat float32 layout. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  try {
    const stat = await Deno.stat(dir);
    if (!stat.isDirectory) throw new Error(`checkpoint ${dir} is not a directory`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(`checkpoint directory ${dir} does not exist`);
    throw err;
  }
  const configText = new TextDecoder().decode(await readCheckpointFile(dir, "config.json"));
  let configJson: Record<string, unknown>;
  try {
    configJson = JSON.parse(configText);
  } catch (err) {
    throw new Error(`checkpoint ${dir}: config.json is not valid JSON (${(err as Error).message})`);
  }
  if (typeof configJson !== "object" || configJson === null || Array.isArray(configJson)) {
    throw new Error(`checkpoint ${dir}: config.json must hold a JSON object`);
  }

  let source: "lab" | "hf";
  let config: GptConfig;
  let meta: Record<string, unknown> = {};
  if (configJson.format === CHECKPOINT_FORMAT) {
    source = "lab";
    if (configJson.version !== CHECKPOINT_VERSION) {
      throw new Error(
        `checkpoint ${dir}: config.json version ${configJson.version} is not supported (expected ${CHECKPOINT_VERSION})`,
      );
    }
    const c = (configJson.config ?? {}) as Record<string, unknown>;
    config = {
      vocabSize: positiveInteger(c.vocabSize, `${dir}/config.json config.vocabSize`),
      contextLength: positiveInteger(c.contextLength, `${dir}/config.json config.contextLength`),
      width: positiveInteger(c.width, `${dir}/config.json config.width`),
      layers: positiveInteger(c.layers, `${dir}/config.json config.layers`),
      heads: positiveInteger(c.heads, `${dir}/config.json config.heads`),
    };
    meta = (configJson.meta ?? {}) as Record<string, unknown>;
  } else if ("n_embd" in configJson) {
    source = "hf";
    config = configFromHuggingFace(configJson, `${dir}/config.json`);
  } else {
    throw new Error(
      `checkpoint ${dir}: config.json is neither a lab checkpoint (format "${CHECKPOINT_FORMAT}") ` +
        `nor a Hugging Face GPT-2 config (n_embd, n_layer, n_head, n_positions, vocab_size)`,
    );
  }
  try {
    validateConfig(config);
  } catch (err) {
    throw new Error(`checkpoint ${dir}: ${(err as Error).message}`);
  }

  const file = decodeSafetensors(
    await readCheckpointFile(dir, "model.safetensors"),
    `${dir}/model.safetensors`,
  );
  // Strip HF's `transformer.` prefix; refuse a file that holds a name both with and without it.
  const byName = new Map<string, Tensor>();
  const ignoredTensors: string[] = [];
  for (const [fileName, tensor] of file.tensors) {
    const name = source === "hf" && fileName.startsWith("transformer.")
      ? fileName.slice("transformer.".length)
      : fileName;
    if (byName.has(name)) {
      throw new Error(
        `${dir}/model.safetensors: tensor ${name} appears twice (with and without "transformer.")`,
      );
    }
    byName.set(name, tensor);
  }

  const layout = paramLayout(config);
  const params = new Float32Array(layout.total);
  for (const spec of layout.specs) {
    const tensor = byName.get(spec.name);
    if (!tensor) {
      if (OPTIONAL_TENSORS[source].includes(spec.name)) continue; // a head: zeros
      throw new Error(
        `${dir}/model.safetensors: missing tensor ${spec.name} (expected shape [${spec.shape.join(", ")}])`,
      );
    }
    if (tensor.shape.length !== spec.shape.length || tensor.shape.some((d, i) => d !== spec.shape[i])) {
      throw new Error(
        `${dir}/model.safetensors: tensor ${spec.name} has shape [${tensor.shape.join(", ")}], ` +
          `expected [${spec.shape.join(", ")}] for this config`,
      );
    }
    if (!(tensor.data instanceof Float32Array || tensor.data instanceof Float64Array)) {
      throw new Error(
        `${dir}/model.safetensors: tensor ${spec.name} has integer dtype ${tensor.dtype}, expected a float type`,
      );
    }
    params.set(tensor.data, spec.offset);
  }
  for (const name of byName.keys()) {
    if (layout.byName.has(name)) continue;
    // A block tensor we do not know means the file and config disagree (e.g. more layers).
    if (/^h\.\d+\./.test(name) && !isIgnorableHuggingFaceTensor(name)) {
      throw new Error(
        `${dir}/model.safetensors: unexpected tensor ${name} (config has ${config.layers} layers)`,
      );
    }
    ignoredTensors.push(name);
  }
  return { config, params, meta, source, ignoredTensors };
}
