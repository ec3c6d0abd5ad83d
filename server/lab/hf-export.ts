/**
 * A model in the folder layout Hugging Face tools load (`GPT2LMHeadModel.from_pretrained`,
 * `GPT2Tokenizer.from_pretrained`):
 *   config.json               model_type "gpt2": n_embd, n_layer, n_head, n_positions, n_ctx, vocab_size,
 *                             layer_norm_epsilon, activation_function "gelu_new", tied word embeddings
 *   model.safetensors         the language model only, F32, under GPT2LMHeadModel's names
 *                             (`transformer.h.0.attn.c_attn.weight`, Conv1D in × out as in the lab); no
 *                             class or reward head, no optimizer state; lm_head is tied to wte, so absent
 *   vocab.json, merges.txt    the byte-level BPE in GPT-2's byte-to-unicode form (merge i makes id 256 + i)
 *   added_tokens.json,        the tokenizer's added tokens (whole pre-tokens such as " Zorblax": one id
 *   tokenizer_config.json,    each), and <|endoftext|> as bos/eos/unk only when the vocabulary has it (the
 *   special_tokens_map.json   full GPT-2 merges; the lab's world tokenizer has no special token)
 * The lab matches an added token only when it is a whole pre-token; HF's `single_word` added tokens are
 * the nearest equivalent (they may differ on a name glued to punctuation other than a space).
 */
import { type GptConfig, HEAD_PARAMS, paramLayout, validateConfig } from "../../kernels/config.ts";
import { encodeSafetensors, type TensorToWrite } from "../../kernels/safetensors.ts";
import {
  GPT2_END_OF_TEXT_ID,
  GPT2_MERGE_COUNT,
  loadGpt2Tables,
  type Tokenizer,
} from "../corpus/tokenizer.ts";
import { LAYERNORM_EPS } from "../../kernels/reference.ts";

/** What an export needs of a model: its shape, its flat parameters and the tokenizer it was trained with. */
export interface ExportableModel {
  config: GptConfig;
  params: Float32Array;
  tokenizer: Tokenizer;
  /** Recorded under config.json's `w2s_lab` (size, checkpoint hash …); HF ignores the key. */
  provenance?: Record<string, unknown>;
}

export const END_OF_TEXT = "<|endoftext|>";

/** HF's prefix for the transformer's tensors inside GPT2LMHeadModel. */
const HF_PREFIX = "transformer.";

/** The tokenizer's end-of-text id, or null when its vocabulary has none. */
function endOfTextId(tokenizer: Tokenizer): number | null {
  return tokenizer.vocabSize > GPT2_END_OF_TEXT_ID && tokenizer.merges === GPT2_MERGE_COUNT
    ? GPT2_END_OF_TEXT_ID
    : null;
}

/** config.json of GPT2LMHeadModel for this model. */
export function hfConfig(model: ExportableModel): Record<string, unknown> {
  const { config, tokenizer } = model;
  const eos = endOfTextId(tokenizer);
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: config.vocabSize,
    n_positions: config.contextLength,
    n_ctx: config.contextLength,
    n_embd: config.width,
    n_layer: config.layers,
    n_head: config.heads,
    n_inner: null,
    activation_function: "gelu_new",
    layer_norm_epsilon: LAYERNORM_EPS,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    initializer_range: 0.02,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    bos_token_id: eos,
    eos_token_id: eos,
    torch_dtype: "float32",
    w2s_lab: { tokenizer: tokenizer.id, ...model.provenance },
  };
}

/** The language model's tensors under HF names, in layout order (the task heads left out). */
export function hfTensors(config: GptConfig, params: Float32Array): Map<string, TensorToWrite> {
  const layout = paramLayout(config);
  if (params.length !== layout.total) {
    throw new Error(`params has ${params.length} elements, the layout of this config needs ${layout.total}`);
  }
  const heads: readonly string[] = HEAD_PARAMS;
  const tensors = new Map<string, TensorToWrite>();
  for (const spec of layout.specs) {
    if (heads.includes(spec.name)) continue;
    const data = params.subarray(spec.offset, spec.offset + spec.size);
    tensors.set(HF_PREFIX + spec.name, { dtype: "F32", shape: spec.shape, data });
  }
  return tensors;
}

/** vocab.json (token text in byte-to-unicode form → id) and merges.txt's pair lines, in rank order. */
export function hfVocabulary(tokenizer: Tokenizer): { vocab: Record<string, number>; merges: string[] } {
  const { tokenText, mergePairs } = loadGpt2Tables();
  const vocab: Record<string, number> = {};
  for (let id = 0; id < 256 + tokenizer.merges; id++) vocab[tokenText[id]] = id;
  const eos = endOfTextId(tokenizer);
  if (eos !== null) vocab[END_OF_TEXT] = eos;
  const merges = mergePairs.slice(0, tokenizer.merges).map(([left, right]) => `${left} ${right}`);
  return { vocab, merges };
}

/** Added tokens by id: the ids after the BPE vocabulary (and after <|endoftext|> when present). */
export function addedTokenIds(tokenizer: Tokenizer): Map<string, number> {
  const first = tokenizer.vocabSize - tokenizer.addedTokens.length;
  return new Map(tokenizer.addedTokens.map((token, i) => [token, first + i]));
}

function tokenizerFiles(model: ExportableModel): Record<string, unknown> {
  const { tokenizer, config } = model;
  const { vocab, merges } = hfVocabulary(tokenizer);
  const added = addedTokenIds(tokenizer);
  const eos = endOfTextId(tokenizer) === null ? null : END_OF_TEXT;
  const addedDecoder: Record<string, unknown> = {};
  for (const [content, id] of added) {
    addedDecoder[id] = {
      content,
      lstrip: false,
      rstrip: false,
      normalized: false,
      single_word: true,
      special: false,
    };
  }
  if (eos !== null) {
    addedDecoder[GPT2_END_OF_TEXT_ID] = {
      content: eos,
      lstrip: false,
      rstrip: false,
      normalized: true,
      single_word: false,
      special: true,
    };
  }
  return {
    "vocab.json": vocab,
    "merges.txt": ["#version: 0.2", ...merges].join("\n") + "\n",
    "added_tokens.json": Object.fromEntries(added),
    "special_tokens_map.json": eos === null ? {} : { bos_token: eos, eos_token: eos, unk_token: eos },
    "tokenizer_config.json": {
      tokenizer_class: "GPT2Tokenizer",
      model_max_length: config.contextLength,
      add_prefix_space: false,
      bos_token: eos,
      eos_token: eos,
      unk_token: eos,
      added_tokens_decoder: addedDecoder,
    },
  };
}

/** The export's files by name, as bytes (a tokenizer that does not fit the model is refused). */
export function hfExportFiles(model: ExportableModel): Map<string, Uint8Array> {
  validateConfig(model.config);
  if (model.tokenizer.vocabSize !== model.config.vocabSize) {
    throw new Error(
      `the tokenizer ${model.tokenizer.id} has ${model.tokenizer.vocabSize} ids, the model's vocabulary ` +
        `${model.config.vocabSize}: export the model with the tokenizer it was trained with`,
    );
  }
  const encoder = new TextEncoder();
  const files = new Map<string, Uint8Array>();
  files.set("config.json", encoder.encode(JSON.stringify(hfConfig(model), null, 2) + "\n"));
  files.set("model.safetensors", encodeSafetensors(hfTensors(model.config, model.params), { format: "pt" }));
  for (const [name, value] of Object.entries(tokenizerFiles(model))) {
    const text = typeof value === "string" ? value : JSON.stringify(value, null, 2) + "\n";
    files.set(name, encoder.encode(text));
  }
  return files;
}

/** Writes the export into `dir` (created if needed; files of the same names are replaced). */
export async function writeHfExport(dir: string, model: ExportableModel): Promise<string[]> {
  const files = hfExportFiles(model);
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, bytes] of files) {
    const temporary = `${dir}/.${name}.tmp-${Deno.pid}`;
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, `${dir}/${name}`);
  }
  return [...files.keys()];
}
