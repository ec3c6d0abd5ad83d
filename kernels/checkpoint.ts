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
 * - A lab checkpoint records the byte length and sha-256 of its model.safetensors in config.json
 *   (`weights`); loading verifies both, so a truncated or overwritten file is an error, never a model.
 *   One written before the checksum loads as `verified: false`; `checkCheckpoint` is the listing's probe.
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
  /** True when config.json recorded the weights' length and sha-256 and both matched the file. */
  verified: boolean;
}

/** What config.json records of model.safetensors, written last so it describes the complete file. */
interface WeightsRecord {
  bytes: number;
  sha256: string;
}

/** A checkpoint directory as a listing sees it: whole, without a checksum to check, or why it is not. */
export type CheckpointHealth =
  | { state: "verified" | "unverified" }
  | { state: "broken"; reason: string };

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Why the weights file does not match its record (length first: a truncation shows without hashing). */
function weightsMismatch(dir: string, record: WeightsRecord, bytes: number, sha256?: string): string | null {
  if (bytes !== record.bytes) {
    return `${dir}/model.safetensors is ${bytes} bytes, config.json recorded ${record.bytes} (truncated or replaced)`;
  }
  if (sha256 !== undefined && sha256 !== record.sha256) {
    return `${dir}/model.safetensors does not match the sha-256 in config.json (overwritten or damaged)`;
  }
  return null;
}

function weightsRecordOf(configJson: Record<string, unknown>): WeightsRecord | null {
  const w = configJson.weights as Partial<WeightsRecord> | undefined;
  if (w === undefined) return null;
  if (typeof w !== "object" || w === null || !Number.isInteger(w.bytes) || typeof w.sha256 !== "string") {
    throw new Error("config.json weights must be {bytes, sha256}");
  }
  return w as WeightsRecord;
}

/** Head tensors a checkpoint may lack, per source; they load as zeros (the heads' initial value). */
const OPTIONAL_TENSORS: Record<Checkpoint["source"], readonly string[]> = {
  hf: HEAD_PARAMS,
  lab: ["reward.weight"],
};

/** HF GPT-2 activations that are the tanh-form GELU we implement. */
const TANH_GELU_NAMES = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"];

/** Writes under a temporary name and renames, so a reader (or a crash) never sees half a file. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temporary = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    await Deno.writeFile(temporary, bytes);
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
  const weights = encodeSafetensors(tensors, { format: "pt" });
  const configJson = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    config: { vocabSize, contextLength, width, layers, heads },
    weights: { bytes: weights.length, sha256: await sha256Hex(weights) } satisfies WeightsRecord,
    meta: checkpoint.meta ?? {},
  };
  await Deno.mkdir(dir, { recursive: true });
  // Weights first: config.json appearing last marks the checkpoint complete.
  await writeFileAtomic(`${dir}/model.safetensors`, weights);
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

function allFinite(data: Float32Array | Float64Array): boolean {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return false;
  return true;
}

/** True when config.json records the weights and they match; false when it predates the record. */
async function verifyWeights(
  dir: string,
  configJson: Record<string, unknown>,
  weights: Uint8Array,
): Promise<boolean> {
  let record: WeightsRecord | null;
  try {
    record = weightsRecordOf(configJson);
  } catch (err) {
    throw new Error(`checkpoint ${dir}: ${(err as Error).message}`);
  }
  if (record === null) return false;
  const why = weightsMismatch(dir, record, weights.length, await sha256Hex(weights));
  if (why) throw new Error(`${why}; ${REWRITE_FIX}`);
  return true;
}

const REWRITE_FIX = "save it again (a ladder size: lab pretrain --size NAME --force)";

/** Weights up to this size are loaded (checksum, shapes, finite values) by a listing; larger: length only. */
export const FULL_CHECK_MAX_BYTES = 64 * 1024 * 1024;

/** Health by directory, kept while neither file's length or modification time changes. */
const healthCache = new Map<string, { key: string; health: CheckpointHealth }>();

/**
 * Whether a lab checkpoint directory holds a model that loads, for a listing: weights up to `fullCheckBytes`
 * are loaded in full (checksum, shapes, finite values); larger ones are checked by their recorded length.
 */
export async function checkCheckpoint(
  dir: string,
  fullCheckBytes = FULL_CHECK_MAX_BYTES,
): Promise<CheckpointHealth> {
  let key: string;
  try {
    const [config, weights] = await Promise.all([
      Deno.stat(`${dir}/config.json`),
      Deno.stat(`${dir}/model.safetensors`),
    ]);
    key =
      `${config.size}:${config.mtime?.getTime()}:${weights.size}:${weights.mtime?.getTime()}:${fullCheckBytes}`;
    const cached = healthCache.get(dir);
    if (cached?.key === key) return cached.health;
    if (weights.size > fullCheckBytes) {
      const configJson = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
      const record = weightsRecordOf(configJson);
      const why = record && weightsMismatch(dir, record, weights.size);
      const health: CheckpointHealth = why ? { state: "broken", reason: why } : { state: "unverified" };
      healthCache.set(dir, { key, health });
      return health;
    }
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "config.json or model.safetensors is missing"
      : (err as Error).message;
    return { state: "broken", reason };
  }
  const health: CheckpointHealth = await loadCheckpoint(dir).then(
    (c) => ({ state: c.verified ? "verified" : "unverified" }),
    (err) => ({ state: "broken", reason: (err as Error).message }),
  );
  healthCache.set(dir, { key, health });
  return health;
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

  const weights = await readCheckpointFile(dir, "model.safetensors");
  const verified = source === "lab" && await verifyWeights(dir, configJson, weights);
  const file = decodeSafetensors(weights, `${dir}/model.safetensors`);
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
    if (!allFinite(tensor.data)) {
      throw new Error(`${dir}/model.safetensors: tensor ${spec.name} holds NaN or infinite weights`);
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
  return { config, params, meta, source, ignoredTensors, verified };
}
