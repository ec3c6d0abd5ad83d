/**
 * Tiny random Hugging Face GPT-2 folders (GPT-2's full 50,257-token vocabulary) and the imported JSONL
 * task the own-ladder tests run on, with the CLI runner and checksum they share.
 */
import { join } from "node:path";
import type { GptConfig } from "../../kernels/config.ts";
import { initParameters } from "../../kernels/config.ts";
import { encodeSafetensors } from "../../kernels/safetensors.ts";
import { createTokenizer, GPT2_MERGE_COUNT } from "../../server/corpus/tokenizer.ts";
import { hfConfig, hfTensors, writeHfExport } from "../../server/lab/hf-export.ts";

export const GPT2 = createTokenizer({ merges: GPT2_MERGE_COUNT });

/**
 * An HF folder: the export writer's (prefix, tokenizer files) or bare tensors without prefix or tokenizer;
 * `edit` changes the random parameters before they are written.
 */
export async function writeFolder(
  dir: string,
  config: GptConfig,
  seed: number,
  bare = false,
  edit?: (params: Float32Array) => void,
): Promise<Float32Array> {
  const params = initParameters(config, seed);
  edit?.(params);
  if (!bare) {
    await writeHfExport(dir, { config, params, tokenizer: GPT2 });
    return params;
  }
  const tensors = new Map(
    [...hfTensors(config, params)].map(([name, t]) => [name.replace(/^transformer\./, ""), t]),
  );
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(join(dir, "model.safetensors"), encodeSafetensors(tensors, { format: "pt" }));
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify(hfConfig({ config, params, tokenizer: GPT2 })),
  );
  return params;
}

/** `count` short reviews whose label is their last word (" good" 1, " bad" 0), after 1–4 filler words. */
export function taskLines(count = 80): string[] {
  const filler = ["the", "movie", "was", "quite", "really", "plot", "acting", "overall", "honestly", "very"];
  return Array.from({ length: count }, (_, i) => {
    const words = Array.from({ length: 1 + (i * 7) % 4 }, (_, k) => filler[(i * 3 + k * 5) % filler.length]);
    const label = (i * 11) % 3 === 0 ? 0 : 1;
    return JSON.stringify({ txt: `${words.join(" ")} ${label ? "good" : "bad"}`, hard_label: label });
  });
}

export const sha256Hex = async (path: string) =>
  Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path))),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");

/** Console lines a CLI main printed (stdout), with the data directory it runs in. */
export async function runCli(main: (args: string[]) => Promise<void>, dataDir: string, args: string[]) {
  const lines: string[] = [];
  const log = console.log;
  Deno.env.set("LAB_DATA_DIR", dataDir);
  console.log = (...parts: unknown[]) => void lines.push(parts.join(" "));
  try {
    await main(args);
  } finally {
    console.log = log;
    Deno.env.delete("LAB_DATA_DIR");
  }
  return lines;
}
