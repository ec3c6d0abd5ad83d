/**
 * Every method on imported models: three tiny random HF GPT-2 folders (GPT-2's full vocabulary) are
 * registered as a ladder and run through `lab w2s --ladder` with auxconf, bootstrap (through the middle
 * model), generative (LM finetuning on GPT-2's encoding of the task's texts), per-layer probes and
 * prompting. Each must give finite readings in [0, 1] and its roles; a rerun reads every role from the cache,
 * and one changed weight byte (re-registered with --force) changes the checkpoint's hash, so the cache misses.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type GptConfig, paramLayout } from "../kernels/config.ts";
import { main as modelsCli } from "../scripts/cli/models.ts";
import { main as w2sCli } from "../scripts/cli/w2s.ts";
import { runCli, sha256Hex, taskLines, writeFolder } from "./helpers/hf-folders.ts";

const SMALL: GptConfig = { vocabSize: 50257, contextLength: 32, width: 16, layers: 1, heads: 2 };
const MIDDLE: GptConfig = { ...SMALL, layers: 2 };
const LARGE: GptConfig = { ...SMALL, width: 32, layers: 2 };
/** GPT-2's ids of " good", " bad", " yes" and " no" (its published vocabulary). */
const GPT2_ID = { good: 922, bad: 2089, yes: 3763, no: 645 };

/**
 * A strong model that answers by its prompt's last token: blocks and positions add nothing, so the final
 * LayerNorm reads that token's embedding; " good" and " yes" share one zero-mean direction, " bad" and " no"
 * its negative. Zero-shot, it is right on every review exactly when the prompt is GPT-2's encoding.
 */
function answerByLastToken(config: GptConfig) {
  return (params: Float32Array) => {
    const layout = paramLayout(config);
    const zero = (name: string) => {
      const spec = layout.byName.get(name)!;
      params.fill(0, spec.offset, spec.offset + spec.size);
    };
    zero("wpe.weight");
    for (let l = 0; l < config.layers; l++) {
      for (const p of ["attn.c_proj.weight", "attn.c_proj.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"]) {
        zero(`h.${l}.${p}`);
      }
    }
    const wte = layout.byName.get("wte.weight")!.offset;
    const C = config.width;
    for (const [token, sign] of [[GPT2_ID.good, 1], [GPT2_ID.yes, 1], [GPT2_ID.bad, -1], [GPT2_ID.no, -1]]) {
      for (let c = 0; c < C; c++) params[wte + token * C + c] = sign * (c % 2 === 0 ? 1 : -1);
    }
  };
}

const TRAINING = ["--epochs", "1", "--batch-size", "8", "--seed", "1"];

interface CliResult {
  chain: string[];
  weak_acc: number;
  ceiling_acc: number;
  student_acc: number;
  runs: { role: string; size: string; cached: boolean; description: string }[];
  probes?: { kind: string; layer: number; accuracy: number }[];
  prompting?: { k: number; zero_shot: number; k_shot_gt: number; k_shot_weak: number };
  cache: { hits: number; misses: number };
}

const inUnitRange = (x: unknown, what: string) =>
  assert.ok(typeof x === "number" && Number.isFinite(x) && x >= 0 && x <= 1, `${what}: ${x}`);

Deno.test("own ladder methods: auxconf, bootstrap, generative, probes, prompting and the cache on HF folders", async () => {
  const root = await Deno.makeTempDir({ prefix: "own-ladder-methods-" });
  try {
    const dataDir = join(root, "data");
    const dirs = { "gpt-s": join(root, "s"), "gpt-m": join(root, "m"), "gpt-l": join(root, "l") };
    await writeFolder(dirs["gpt-s"], SMALL, 1);
    await writeFolder(dirs["gpt-m"], MIDDLE, 2, true);
    await writeFolder(dirs["gpt-l"], LARGE, 3, false, answerByLastToken(LARGE));
    for (const [name, dir] of Object.entries(dirs)) {
      await runCli(modelsCli, dataDir, ["add", "--name", name, "--dir", dir]);
    }
    const taskFile = join(root, "reviews.jsonl");
    await Deno.writeTextFile(taskFile, taskLines(48).join("\n") + "\n");
    const w2s = async (...extra: string[]): Promise<CliResult> => {
      const args = [
        "--task",
        taskFile,
        "--ladder",
        "gpt-l,gpt-s,gpt-m",
        "--weak",
        "gpt-s",
        "--strong",
        "gpt-l",
      ];
      const out = await runCli(w2sCli, dataDir, [...args, "--json", ...TRAINING, ...extra]);
      const result = JSON.parse(out.at(-1)!) as CliResult;
      for (const key of ["weak_acc", "ceiling_acc", "student_acc"] as const) inUnitRange(result[key], key);
      return result;
    };
    const roles = (r: CliResult) => r.runs.map((x) => `${x.role}:${x.size}`);

    const auxconf = await w2s("--method", "auxconf");
    assert.deepEqual(roles(auxconf), ["weak:gpt-s", "ceiling:gpt-l", "student:gpt-l"]);
    assert.deepEqual(auxconf.chain, ["gpt-s", "gpt-l"]);

    const bootstrap = await w2s("--method", "bootstrap");
    assert.deepEqual(bootstrap.chain, ["gpt-s", "gpt-m", "gpt-l"]);
    assert.deepEqual(roles(bootstrap).filter((r) => r.startsWith("bootstrap")), [
      "bootstrap:gpt-m",
      "bootstrap:gpt-m",
    ]);

    // The ceiling and the student start from the LM-finetuned strong model: new parameters, new cache keys.
    const generative = await w2s("--method", "generative", "--base", "naive");
    assert.deepEqual(generative.runs.map((r) => `${r.role}:${r.size}:${r.cached}`), [
      "weak:gpt-s:true",
      "ceiling:gpt-l:false",
      "student:gpt-l:false",
    ]);
    assert.match(generative.runs[1].description, /after LM finetuning/);

    // Probes: each kind reads every layer once — embeddings, after each of LARGE's blocks, final LayerNorm.
    const probed = await w2s("--method", "naive", "--probes", "--prompting", "2");
    const layers = Array.from({ length: LARGE.layers + 2 }, (_, l) => l);
    const kinds = [...new Set(probed.probes!.map((p) => p.kind))];
    assert.ok(kinds.includes("lp(weak)") && kinds.includes("lp(gt)"), kinds.join());
    for (const kind of kinds) {
      assert.deepEqual(probed.probes!.filter((p) => p.kind === kind).map((p) => p.layer), layers, kind);
    }
    for (const p of probed.probes!) inUnitRange(p.accuracy, `${p.kind} layer ${p.layer}`);
    assert.equal(probed.prompting!.zero_shot, 1, 'the prompt\'s last token is not GPT-2\'s " good"/" bad"');
    assert.equal(probed.prompting!.k, 2);
    for (const key of ["zero_shot", "k_shot_gt", "k_shot_weak"] as const) {
      inUnitRange(probed.prompting![key], key);
    }

    // A rerun trains nothing; one changed weight byte of the strong model is a new checkpoint.
    const again = await w2s("--method", "auxconf");
    assert.equal(again.cache.misses, 0);
    assert.ok(again.runs.every((r) => r.cached), JSON.stringify(again.runs));
    assert.equal(again.student_acc, auxconf.student_acc);
    const weights = join(dirs["gpt-l"], "model.safetensors");
    const before = await sha256Hex(weights);
    const bytes = await Deno.readFile(weights);
    bytes[bytes.length - 1] ^= 1;
    await Deno.writeFile(weights, bytes);
    await assert.rejects(w2s("--method", "auxconf"), /changed since gpt-l was registered .*--force/);
    await runCli(modelsCli, dataDir, ["add", "--name", "gpt-l", "--dir", dirs["gpt-l"], "--force"]);
    assert.notEqual(await sha256Hex(weights), before);
    const changed = await w2s("--method", "auxconf");
    assert.deepEqual(changed.runs.map((r) => `${r.role}:${r.cached}`), [
      "weak:true",
      "ceiling:false",
      "student:false",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
