/**
 * Models a user brings: Hugging Face GPT-2 folders on this machine (config.json + model.safetensors, with
 * or without the `transformer.` prefix; vocab.json + merges.txt when present, else GPT-2's own BPE),
 * registered by name after every check the pipeline would otherwise fail on later: the config, each
 * tensor's shape, the tokenizer against the model's vocabulary, and the memory a finetune needs on this
 * adapter. A list of registered names sharing one tokenizer is a ladder (`ownLadder`) that experiments and
 * sweeps may take instead of the lab's own.
 *
 * The registry is a JSON file in the data directory (`own-models.json`), not a database table: it names
 * folders on this machine's disk, as the data directory's ladder checkpoints are, and the CLI reads it
 * without opening the database.
 */

import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { loadCheckpoint } from "../../kernels/checkpoint.ts";
import { type GptConfig, parameterCount } from "../../kernels/config.ts";
import { getGpu } from "../../kernels/device.ts";
import {
  adapterMemoryLimits,
  formatBytes,
  type MemoryLimits,
  memoryProblems,
  modelMemory,
  planMicroBatch,
} from "../../kernels/memory.ts";
import { createTokenizer, GPT2_MERGE_COUNT, loadGpt2Tables, type Tokenizer } from "../corpus/tokenizer.ts";
import { isWorldTask } from "../tasks/load.ts";
import type { ModelListing, OwnModelInfo } from "../contract/models.ts";
import { addedTokenIds, hfVocabulary } from "./hf-export.ts";
import { BASE_HYPER, LADDER } from "./ladder.ts";
import { ladderModelSource, type LoadedModel, type ModelSource } from "./model-source.ts";

/** A registered model: where its folder is and what the checks found. */
export interface OwnModel extends OwnModelInfo {
  name: string;
  /** Absolute path of the folder. */
  dir: string;
  config: GptConfig;
  params: number;
}

interface Registry {
  version: 1;
  models: OwnModel[];
}

/** A refused registration; `conflict`: the name is taken (the fix is another name or --force). */
export class OwnModelError extends Error {
  constructor(message: string, readonly conflict = false) {
    super(message);
    this.name = "OwnModelError";
  }
}

const REGISTRY_FILE = "own-models.json";
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const registryPath = (dataDir: string) => join(dataDir, REGISTRY_FILE);

async function readRegistry(dataDir: string): Promise<Registry> {
  let text: string;
  try {
    text = await Deno.readTextFile(registryPath(dataDir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { version: 1, models: [] };
    throw err;
  }
  const registry = JSON.parse(text) as Registry;
  if (registry.version !== 1 || !Array.isArray(registry.models)) {
    throw new Error(`${registryPath(dataDir)} is not a model registry (version 1 with models [])`);
  }
  return registry;
}

async function writeRegistry(dataDir: string, registry: Registry): Promise<void> {
  await Deno.mkdir(dataDir, { recursive: true });
  const temporary = `${registryPath(dataDir)}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(temporary, JSON.stringify(registry, null, 2) + "\n");
  await Deno.rename(temporary, registryPath(dataDir));
}

/** Every registered model, in registration order. */
export async function listOwnModels(dataDir: string): Promise<OwnModel[]> {
  return (await readRegistry(dataDir)).models;
}

async function readOptionalText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

function parseJsonFile(path: string, text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  } catch { /* named below */ }
  throw new Error(`${path} must hold a JSON object`);
}

/**
 * The folder's tokenizer: vocab.json + merges.txt (+ added_tokens.json) when present, which the lab reads
 * only when they are GPT-2's byte-level BPE or its first K merges (the lab's own exports); else GPT-2's.
 */
export async function folderTokenizer(dir: string): Promise<{ tokenizer: Tokenizer; files: string }> {
  const [vocabText, mergesText, addedText] = await Promise.all(
    ["vocab.json", "merges.txt", "added_tokens.json"].map((f) => readOptionalText(join(dir, f))),
  );
  if (vocabText === null && mergesText === null) {
    return { tokenizer: createTokenizer({ merges: GPT2_MERGE_COUNT }), files: "GPT-2's own BPE" };
  }
  if (vocabText === null || mergesText === null) {
    const [present, missing] = vocabText === null
      ? ["merges.txt", "vocab.json"]
      : ["vocab.json", "merges.txt"];
    throw new Error(
      `${join(dir, missing)} is missing beside ${present}: a GPT-2 tokenizer needs both files ` +
        `(or neither, for GPT-2's own BPE)`,
    );
  }
  const { mergePairs } = loadGpt2Tables();
  const lines = mergesText.split("\n").map((l, i) => ({ line: l.trim(), number: i + 1 }))
    .filter((l) => l.line.length > 0 && !l.line.startsWith("#version"));
  if (lines.length > GPT2_MERGE_COUNT) {
    throw new Error(
      `${join(dir, "merges.txt")} has ${lines.length} merges, GPT-2's BPE has ${GPT2_MERGE_COUNT}`,
    );
  }
  lines.forEach(({ line, number }, rank) => {
    const expected = mergePairs[rank].join(" ");
    if (line !== expected) {
      throw new Error(
        `${
          join(dir, "merges.txt")
        } line ${number} ("${line}") is not GPT-2's merge ${rank} ("${expected}"): ` +
          `the lab tokenizes with GPT-2's byte-level BPE (all its merges or their first K) only`,
      );
    }
  });
  const added = addedText === null ? {} : parseJsonFile(join(dir, "added_tokens.json"), addedText);
  const addedTokens = Object.entries(added).sort((a, b) => Number(a[1]) - Number(b[1])).map(([t]) => t);
  const tokenizer = createTokenizer({ merges: lines.length, addedTokens });
  for (const [token, id] of addedTokenIds(tokenizer)) {
    if (added[token] !== id) {
      throw new Error(
        `${join(dir, "added_tokens.json")}: token ${JSON.stringify(token)} has id ${added[token]}, ` +
          `expected ${id} (added tokens follow the BPE vocabulary in order)`,
      );
    }
  }
  const vocab = parseJsonFile(join(dir, "vocab.json"), vocabText);
  const expected = hfVocabulary(tokenizer).vocab;
  for (const [text, id] of Object.entries(expected)) {
    if (vocab[text] !== id) {
      throw new Error(
        `${join(dir, "vocab.json")}: token ${JSON.stringify(text)} has id ${JSON.stringify(vocab[text])}, ` +
          `GPT-2's BPE with merges.txt's ${lines.length} merges gives it ${id}`,
      );
    }
  }
  const extra = Object.keys(vocab).find((t) => !(t in expected));
  if (extra !== undefined) {
    throw new Error(
      `${join(dir, "vocab.json")}: token ${JSON.stringify(extra)} (id ${
        vocab[extra]
      }) is not in GPT-2's BPE ` +
        `with merges.txt's ${lines.length} merges (added tokens belong in added_tokens.json)`,
    );
  }
  return { tokenizer, files: "vocab.json + merges.txt" };
}

async function sha256OfFile(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

/**
 * Memory to finetune at the full context (a task's texts are cut to it): the least a finetune needs
 * (batch 1) decides whether the model fits; the default batch is reported beside it, with the micro-batch
 * that runs it where it does not fit whole (gradient accumulation, finetune.ts).
 */
export function finetuneMemory(config: GptConfig, limits: MemoryLimits): OwnModelInfo["memory"] {
  const seqLen = config.contextLength;
  const { maxBufferSize } = limits;
  const least = modelMemory(config, { batchSize: 1, seqLen, maxBufferSize });
  const atDefault = modelMemory(config, { batchSize: BASE_HYPER.batchSize, seqLen, maxBufferSize });
  const problems = memoryProblems(least, limits);
  const plan = problems.length === 0
    ? planMicroBatch(config, { batchSize: BASE_HYPER.batchSize, seqLen }, limits)
    : undefined;
  return {
    seqLen,
    leastBytes: least.total,
    defaultBatch: BASE_HYPER.batchSize,
    defaultBatchBytes: atDefault.total,
    problems,
    ...(plan ? { microBatch: plan.microBatch, plan: plan.summary } : {}),
  };
}

/** A folder checked as registration checks it: the model, its tokenizer, its checksum and its memory. */
export async function inspectFolder(dir: string, limits: MemoryLimits) {
  const checkpoint = await loadCheckpoint(dir);
  if (checkpoint.source !== "hf") {
    throw new Error(
      `${join(dir, "config.json")} is a lab checkpoint: register Hugging Face GPT-2 folders ` +
        `(export a lab model first: deno task lab export)`,
    );
  }
  const { tokenizer, files } = await folderTokenizer(dir);
  if (tokenizer.vocabSize !== checkpoint.config.vocabSize) {
    throw new Error(
      `${join(dir, "config.json")}: vocab_size ${checkpoint.config.vocabSize} does not match the tokenizer ` +
        `(${files}: ${tokenizer.vocabSize} ids)`,
    );
  }
  const sha256 = await sha256OfFile(join(dir, "model.safetensors"));
  return {
    checkpoint,
    tokenizer,
    tokenizerFiles: files,
    sha256,
    memory: finetuneMemory(checkpoint.config, limits),
  };
}

/**
 * Registers the folder `dir` as `name` after checking it (config, tensor shapes, tokenizer, sha-256, memory);
 * a model that cannot fit this adapter even at batch 1 is refused. `force` replaces a registered name.
 */
export async function addOwnModel(
  dataDir: string,
  request: { name: string; dir: string; force?: boolean },
  limits?: MemoryLimits,
): Promise<OwnModel> {
  const { name, force } = request;
  if (!NAME_PATTERN.test(name)) {
    throw new OwnModelError(
      `name "${name}" must be 1–64 letters, digits, '_', '-' or '.', starting with a letter or digit`,
    );
  }
  if (LADDER.some((s) => s.name === name)) {
    throw new OwnModelError(`name "${name}" is a size of the lab's ladder; choose another name`, true);
  }
  const registry = await readRegistry(dataDir);
  if (!force && registry.models.some((m) => m.name === name)) {
    throw new OwnModelError(`a model named "${name}" is registered already; add --force to replace it`, true);
  }
  const dir = resolve(request.dir);
  const found = await inspectFolder(dir, limits ?? adapterMemoryLimits(await getGpu())).catch(
    (err: Error) => {
      throw new OwnModelError(err.message);
    },
  );
  const { memory, checkpoint } = found;
  if (memory.problems.length > 0) {
    throw new OwnModelError(
      `${name} (${dir}) cannot be finetuned on this adapter: at batch 1 × ${memory.seqLen} it needs ` +
        `${formatBytes(memory.leastBytes)}, and ${memory.problems.join("; ")}`,
    );
  }
  const model: OwnModel = {
    name,
    dir,
    config: checkpoint.config,
    params: parameterCount(checkpoint.config),
    sha256: found.sha256,
    tokenizer: found.tokenizer.id,
    tokenizerFiles: found.tokenizerFiles,
    memory,
    addedAt: new Date().toISOString(),
  };
  registry.models = [...registry.models.filter((m) => m.name !== name), model];
  await writeRegistry(dataDir, registry);
  return model;
}

/** A ladder of registered models: their names smallest first (by parameters) and the tokenizer they share. */
export interface OwnLadder {
  sizes: string[];
  models: OwnModel[];
  tokenizer: string;
}

/** The models `names` names as a ladder, or an error naming what is wrong (unknown, repeated, mixed tokenizers). */
export async function ownLadder(dataDir: string, names: readonly string[]): Promise<OwnLadder> {
  if (names.length < 2) throw new Error("ladder: name at least two models (weak and strong)");
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated !== undefined) throw new Error(`ladder: "${repeated}" is named twice`);
  const registered = await listOwnModels(dataDir);
  const models = names.map((name) => {
    const model = registered.find((m) => m.name === name);
    if (model) return model;
    if (LADDER.some((s) => s.name === name)) {
      throw new Error(
        `ladder: "${name}" is a size of the lab's ladder, which reads the lab corpus's tokenizer; a ladder ` +
          `of imported models cannot mix it in (leave the ladder out to run on the lab's ladder)`,
      );
    }
    const known = registered.map((m) => m.name).join(", ") || "none";
    throw new Error(
      `ladder: no model named "${name}" is registered (registered: ${known}); ` +
        `add it with: deno task lab models add --name ${name} --dir PATH`,
    );
  });
  const tokenizers = [...new Set(models.map((m) => m.tokenizer))];
  if (tokenizers.length > 1) {
    const groups = tokenizers.map((t) =>
      `${models.filter((m) => m.tokenizer === t).map((m) => m.name).join(", ")} ${t}`
    );
    throw new Error(
      `ladder: its models must share one tokenizer (a task is encoded once for weak and strong), ` +
        `but they use ${tokenizers.length}: ${groups.join("; ")}`,
    );
  }
  const sorted = [...models].sort((a, b) => a.params - b.params);
  return { sizes: sorted.map((m) => m.name), models: sorted, tokenizer: tokenizers[0] };
}

/**
 * Why a request cannot run on imported models, or null: world tasks and knowledge snapshots exist only for
 * the lab's ladder, and the lab cannot know whether an imported model's pretraining text held a task's items.
 */
export function ownLadderRefusal(
  request: { task: string; leakage: boolean; refs: readonly string[] },
): string | null {
  if (isWorldTask(request.task)) {
    return `${request.task} is a world task: it asks about the lab's knowledge world, which only the lab's ` +
      `ladder was pretrained on; run it without a ladder, or choose a text or imported task`;
  }
  const snapshot = request.refs.find((r) => r.includes("@"));
  if (snapshot !== undefined) {
    return `"${snapshot}" names a pretraining snapshot: snapshots exist for the lab's ladder only; ` +
      `name an imported model without "@"`;
  }
  if (request.leakage) {
    return `leakage: true needs the lab's ladder: the lab does not know what an imported model's ` +
      `pretraining text held, so it can neither keep a task's test items out nor let them in`;
  }
  return null;
}

/** The models of an own ladder as a ModelSource; each load checks the weights' sha-256 against the registry. */
export function ownModelSource(ladder: OwnLadder): ModelSource {
  const loaded = new Map<string, Promise<LoadedModel>>();
  return {
    sizes: ladder.sizes,
    refusal: ownLadderRefusal,
    load(name) {
      const model = ladder.models.find((m) => m.name === name);
      if (!model) {
        return Promise.reject(new Error(`"${name}" is not in the ladder (${ladder.sizes.join(", ")})`));
      }
      let promise = loaded.get(name);
      if (!promise) {
        promise = loadOwnModel(model);
        promise.catch(() => loaded.delete(name));
        loaded.set(name, promise);
      }
      return promise;
    },
  };
}

async function loadOwnModel(model: OwnModel): Promise<LoadedModel> {
  const sha256 = await sha256OfFile(join(model.dir, "model.safetensors"));
  if (sha256 !== model.sha256) {
    throw new Error(
      `${join(model.dir, "model.safetensors")} changed since ${model.name} was registered (sha-256 ` +
        `${model.sha256.slice(0, 12)}…, now ${sha256.slice(0, 12)}…); register it again: ` +
        `deno task lab models add --name ${model.name} --dir ${model.dir} --force`,
    );
  }
  const checkpoint = await loadCheckpoint(model.dir);
  const { tokenizer } = await folderTokenizer(model.dir);
  return { size: model.name, config: checkpoint.config, params: checkpoint.params, tokenizer, hash: sha256 };
}

/** Where an experiment's models come from: the imported models `ladder` names, or the lab's ladder. */
export async function modelSourceFor(dataDir: string, ladder?: readonly string[]): Promise<ModelSource> {
  return ladder ? ownModelSource(await ownLadder(dataDir, ladder)) : ladderModelSource(dataDir);
}

/** The models of a listing: a registered model beside the ladder's sizes, "broken" when its weights are gone. */
export async function ownModelListings(dataDir: string): Promise<ModelListing[]> {
  return await Promise.all((await listOwnModels(dataDir)).map(async (m) => {
    const { name, dir, config, params, sha256, tokenizer, tokenizerFiles, memory, addedAt } = m;
    const brokenReason = await Deno.stat(join(dir, "model.safetensors")).then(
      () => null,
      (err: Error) => `${join(dir, "model.safetensors")}: ${err.message}`,
    );
    return {
      name,
      width: config.width,
      layers: config.layers,
      heads: config.heads,
      contextLength: config.contextLength,
      tokens: 0,
      cpu: false,
      params,
      status: brokenReason === null ? "imported" : "broken",
      brokenReason,
      valLoss: null,
      knowledge: null,
      knowledgeCi: null,
      step: null,
      totalSteps: null,
      checkpointPath: dir,
      corpus: null,
      snapshots: [],
      pretrainInfo: null,
      jobId: null,
      source: "imported" as const,
      imported: { sha256, tokenizer, tokenizerFiles, memory, addedAt },
    };
  }));
}
