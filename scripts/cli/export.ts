/**
 * `deno task lab export --size S --out DIR [--force] [--data-dir D]`: a pretrained size (or a snapshot, SIZE@PCT)
 * as a folder Hugging Face tools load — config.json (model_type gpt2), model.safetensors (the language
 * model only, lm_head tied to wte), vocab.json + merges.txt of the world tokenizer and its added tokens
 * (server/lab/hf-export.ts lists every file). DIR must be new or empty; --force writes into a folder that
 * holds files (replacing an export's). The data directory defaults to $LAB_DATA_DIR or ./data.
 * Check it loads: /usr/bin/python3 scripts/hf-check.py DIR (GPT-2 built from config.json in PyTorch).
 */
import { flagList, parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { ladderModelSource } from "../../server/lab/model-source.ts";
import { writeHfExport } from "../../server/lab/hf-export.ts";

const FLAGS = {
  size: { type: "string" },
  out: { type: "string" },
  force: { type: "boolean", default: false },
  "data-dir": { type: "string" },
} as const;

/** Refuses an --out that is a file, or a folder with files in it (a registered model, say) without --force. */
async function checkOut(out: string, force: boolean): Promise<void> {
  const info = await Deno.stat(out).catch(() => null);
  if (!info) return;
  if (!info.isDirectory) throw new UsageError(`--out ${out} is a file: name a new or empty folder`);
  for await (const _ of Deno.readDir(out)) {
    if (force) return;
    throw new UsageError(
      `--out ${out} already holds files: name a new or empty folder, or add --force to write over them`,
    );
  }
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, FLAGS);
  if (!values.size) {
    throw new UsageError("--size S is required (a ladder size, or SIZE@PCT)", flagList(FLAGS));
  }
  if (!values.out) throw new UsageError("--out DIR is required (the folder to write)", flagList(FLAGS));
  await checkOut(values.out, values.force);
  const dataDir = values["data-dir"] ?? Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const model = await ladderModelSource(dataDir).load(values.size);
  const files = await writeHfExport(values.out, {
    config: model.config,
    params: model.params,
    tokenizer: model.tokenizer,
    provenance: { size: model.size, checkpoint: model.hash },
  });
  const { width, layers, heads, vocabSize } = model.config;
  console.log(
    `exported ${model.size} (width ${width}, ${layers} layers, ${heads} heads, vocabulary ${vocabSize}, ` +
      `tokenizer ${model.tokenizer.id}) to ${values.out}: ${files.join(", ")}`,
  );
}
