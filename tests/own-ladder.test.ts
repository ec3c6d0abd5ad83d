/**
 * Bring your own ladder: two tiny random Hugging Face GPT-2 folders (GPT-2's full 50,257-token vocabulary,
 * one with the `transformer.` prefix and vocab.json + merges.txt, one without either) are registered and
 * run as a weak→strong ladder on an imported JSONL task, through the CLI (`lab models add`, `lab w2s
 * --ladder`) and through the API (POST /api/models/import, /api/tasks/import, /api/experiments with a
 * ladder, the worker in-process). The task's label is its last word, so only a class head that reads the
 * last real token of GPT-2's encoding learns it. Broken folders are refused naming the tensor or file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openDb } from "../db/client.ts";
import type { GptConfig } from "../kernels/config.ts";
import { initParameters, paramLayout } from "../kernels/config.ts";
import { encodeSafetensors } from "../kernels/safetensors.ts";
import { createTokenizer } from "../server/corpus/tokenizer.ts";
import { createApp } from "../server/api/app.ts";
import { EventBus } from "../server/jobs/bus.ts";
import "../server/jobs/handlers.ts";
import { startWorker } from "../server/jobs/worker.ts";
import { hfTensors, writeHfExport } from "../server/lab/hf-export.ts";
import { addOwnModel, listOwnModels, ownLadder, ownModelSource } from "../server/lab/own-models.ts";
import { main as modelsCli } from "../scripts/cli/models.ts";
import { main as w2sCli } from "../scripts/cli/w2s.ts";
import { runCli, sha256Hex, taskLines, writeFolder } from "./helpers/hf-folders.ts";
import { checkResponses } from "./helpers/openapi-check.ts";
import { waitFor } from "./helpers/wait.ts";

const WEAK: GptConfig = { vocabSize: 50257, contextLength: 32, width: 16, layers: 1, heads: 2 };
const STRONG: GptConfig = { vocabSize: 50257, contextLength: 32, width: 32, layers: 2, heads: 2 };
/** Limits no tiny model comes near (the memory refusal is tested with small ones). */
const ROOMY = { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 27 };

const TRAINING = ["--epochs", "2", "--batch-size", "8", "--seed", "1"];

/** The same experiment through the API: register by POST, import the task, run it in the in-process worker. */
async function runThroughApi(root: string, weakDir: string, strongDir: string): Promise<void> {
  const apiDir = join(root, "api-data");
  const opened = await openDb({ dataDir: apiDir });
  const bus = new EventBus();
  const app = checkResponses(
    createApp({ db: opened.db, dataDir: apiDir, token: "t", bus, dbKind: opened.kind }),
  );
  const worker = startWorker({
    db: opened.db,
    dataDir: apiDir,
    bus,
    pollMs: 20,
    log: () => {},
    types: ["w2s"],
  });
  const call = (method: string, path: string, body?: unknown) =>
    app.request(path, {
      method,
      headers: { Authorization: "Bearer t", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  try {
    for (const [name, dir] of [["gpt-a", weakDir], ["gpt-b", strongDir]]) {
      const res = await call("POST", "/api/models/import", { name, dir });
      assert.equal(res.status, 201, await res.clone().text());
      assert.equal((await res.json()).model.source, "imported");
    }
    const again = await call("POST", "/api/models/import", { name: "gpt-a", dir: weakDir });
    assert.equal(again.status, 409);
    const listing = await (await call("GET", "/api/models")).json();
    assert.deepEqual(
      listing.filter((m: { source: string }) => m.source === "imported").map((m: { name: string }) => m.name),
      ["gpt-a", "gpt-b"],
    );
    assert.ok(
      listing.some((m: { name: string; source: string }) => m.name === "nano" && m.source === "ladder"),
    );
    const task = await call("POST", "/api/tasks/import", {
      name: "reviews",
      jsonl: taskLines().join("\n"),
    });
    assert.equal(task.status, 201, await task.clone().text());

    const base = { task: "reviews", weak: "gpt-a", strong: "gpt-b", ladder: ["gpt-b", "gpt-a"] };
    const world = await call("POST", "/api/experiments", { ...base, task: "world-region" });
    assert.equal(world.status, 400);
    assert.match(
      (await world.json()).error.message,
      /world-region is a world task: .*only the lab's ladder/,
    );
    const created = await call("POST", "/api/experiments", { ...base, epochs: 2, batchSize: 8, seed: 1 });
    assert.equal(created.status, 201, await created.clone().text());
    const { experiment } = await created.json();
    const done = await waitFor("the w2s job", async () => {
      const row = await (await call("GET", `/api/experiments/${experiment.id}`)).json();
      if (row.status === "failed") throw new Error(row.job.error);
      return row.status === "done" ? row : undefined;
    }, 50_000);
    const [result] = done.results;
    assert.deepEqual([result.weakSize, result.strongSize, result.task], ["gpt-a", "gpt-b", "reviews"]);
    assert.ok(result.ceilingAcc >= 0.9, `ceiling ${result.ceilingAcc}`);
    assert.deepEqual(done.runs.map((r: { modelSize: string }) => r.modelSize).sort(), [
      "gpt-a",
      "gpt-b",
      "gpt-b",
    ]);
  } finally {
    await worker.stop();
    await opened.close();
  }
}

Deno.test("own ladder: two HF GPT-2 folders registered and run weak→strong through the CLI and the API", async () => {
  const root = await Deno.makeTempDir({ prefix: "own-ladder-" });
  try {
    const weakDir = join(root, "hf-weak");
    const strongDir = join(root, "hf-strong");
    const weakParams = await writeFolder(weakDir, WEAK, 1);
    await writeFolder(strongDir, STRONG, 2, true);
    const taskFile = join(root, "reviews.jsonl");
    await Deno.writeTextFile(taskFile, taskLines().join("\n") + "\n");

    // CLI: register both (listed from small to large whatever the order given), then run.
    const cliDir = join(root, "cli-data");
    const added = await runCli(modelsCli, cliDir, ["add", "--name", "tiny-b", "--dir", strongDir]);
    assert.match(added[0], /^registered tiny-b: GPT-2 32\/2 layers\/2 heads, context 32, vocabulary 50257/);
    await runCli(modelsCli, cliDir, ["add", "--name", "tiny-a", "--dir", weakDir]);
    const registered = await listOwnModels(cliDir);
    assert.equal(
      registered.find((m) => m.name === "tiny-b")!.sha256,
      await sha256Hex(join(strongDir, "model.safetensors")),
    );
    assert.equal(registered.find((m) => m.name === "tiny-a")!.tokenizerFiles, "vocab.json + merges.txt");
    assert.equal(registered.find((m) => m.name === "tiny-b")!.tokenizerFiles, "GPT-2's own BPE");
    // Parameters: wte V×C + wpe T×C + per layer 12C² + 13C + ln_f 2C, plus the class head 2C + 2 and reward C.
    const expectedParams = (c: GptConfig) =>
      c.vocabSize * c.width + c.contextLength * c.width + c.layers * (12 * c.width ** 2 + 13 * c.width) +
      2 * c.width + 2 * c.width + 2 + c.width;
    assert.equal(registered.find((m) => m.name === "tiny-a")!.params, expectedParams(WEAK));
    const ladder = await ownLadder(cliDir, ["tiny-b", "tiny-a"]);
    assert.deepEqual(ladder.sizes, ["tiny-a", "tiny-b"]);

    // The loaded model is the folder's: the weights written, the weights' sha-256 as hash, GPT-2's ids.
    const loaded = await ownModelSource(ladder).load("tiny-a");
    const layout = paramLayout(WEAK);
    const wte = layout.byName.get("wte.weight")!;
    assert.deepEqual(
      loaded.params.subarray(wte.offset, wte.offset + wte.size),
      weakParams.subarray(wte.offset, wte.offset + wte.size),
    );
    assert.equal(loaded.hash, await sha256Hex(join(weakDir, "model.safetensors")));
    assert.deepEqual(loaded.tokenizer.encode("Hello world"), [15496, 995]); // GPT-2's ids

    const out = await runCli(w2sCli, cliDir, [
      "--task",
      taskFile,
      "--ladder",
      "tiny-a,tiny-b",
      "--weak",
      "tiny-a",
      "--strong",
      "tiny-b",
      "--json",
      ...TRAINING,
    ]);
    const cli = JSON.parse(out.at(-1)!);
    assert.deepEqual([cli.weak, cli.strong], ["tiny-a", "tiny-b"]);
    assert.deepEqual(cli.runs.map((r: { role: string; size: string }) => `${r.role}:${r.size}`), [
      "weak:tiny-a",
      "ceiling:tiny-b",
      "student:tiny-b",
    ]);
    // The label is the last word: a head on the last real token separates it, one on padding cannot.
    assert.ok(cli.ceiling_acc >= 0.9, `ceiling ${cli.ceiling_acc}`);
    assert.ok(cli.weak_acc >= 0.9, `weak ${cli.weak_acc}`);

    await runThroughApi(root, weakDir, strongDir);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("own ladder: wrong shape, missing tensor, mismatched tokenizer, mixed tokenizers and memory are refused by name", async () => {
  const root = await Deno.makeTempDir({ prefix: "own-ladder-bad-" });
  const add = (name: string, dir: string, limits = ROOMY) => addOwnModel(root, { name, dir }, limits);
  try {
    const good = join(root, "good");
    await writeFolder(good, WEAK, 3);

    // A tensor of the wrong shape: the config says width 16, c_attn is written 16 × 40.
    const shape = join(root, "shape");
    await writeFolder(shape, WEAK, 3, true);
    const tensors = hfTensors(WEAK, initParameters(WEAK, 3));
    const renamed = new Map([...tensors].map(([n, t]) => [n.replace(/^transformer\./, ""), t]));
    renamed.set("h.0.attn.c_attn.weight", { dtype: "F32", shape: [16, 40], data: new Float32Array(640) });
    await Deno.writeFile(join(shape, "model.safetensors"), encodeSafetensors(renamed, { format: "pt" }));
    await assert.rejects(
      add("shape", shape),
      /tensor h\.0\.attn\.c_attn\.weight has shape \[16, 40\], expected \[16, 48\]/,
    );

    // A missing tensor.
    const missing = join(root, "missing");
    await writeFolder(missing, WEAK, 3, true);
    renamed.delete("h.0.attn.c_attn.weight");
    await Deno.writeFile(join(missing, "model.safetensors"), encodeSafetensors(renamed, { format: "pt" }));
    await assert.rejects(add("missing", missing), /missing tensor h\.0\.attn\.c_attn\.weight/);

    // vocab.json that disagrees with merges.txt (two ids swapped), and vocab.json without merges.txt.
    const swapped = join(root, "swapped");
    await writeFolder(swapped, WEAK, 3);
    const vocab = JSON.parse(await Deno.readTextFile(join(swapped, "vocab.json")));
    [vocab["Hello"], vocab["world"]] = [vocab["world"], vocab["Hello"]];
    await Deno.writeTextFile(join(swapped, "vocab.json"), JSON.stringify(vocab));
    await assert.rejects(
      add("swapped", swapped),
      /swapped\/vocab\.json: token "world" has id 15496, .* gives it 6894/,
    );
    await Deno.remove(join(swapped, "merges.txt"));
    await assert.rejects(add("swapped", swapped), /swapped\/merges\.txt is missing beside vocab\.json/);

    // Tokenizer files of 100 merges (356 ids) beside a model of 400 ids (144 merges).
    const small = join(root, "small-vocab");
    const mismatched = join(root, "mismatched-vocab");
    for (const [dir, merges] of [[small, 100], [mismatched, 144]] as const) {
      const config = { ...WEAK, vocabSize: 256 + merges };
      const tokenizer = createTokenizer({ merges });
      await writeHfExport(dir, { config, params: initParameters(config, 4), tokenizer });
    }
    for (const file of ["vocab.json", "merges.txt"]) {
      await Deno.copyFile(join(small, file), join(mismatched, file));
    }
    await assert.rejects(
      add("mismatched", mismatched),
      /mismatched-vocab\/config\.json: vocab_size 400 does not match the tokenizer \(vocab\.json \+ merges\.txt: 356 ids\)/,
    );

    // Two registered models with different tokenizers cannot form a ladder; a ladder size cannot join one.
    await add("good", good);
    await add("bytes", small);
    await assert.rejects(
      ownLadder(root, ["good", "bytes"]),
      /share one tokenizer.*good gpt2-bpe-50000; bytes gpt2-bpe-100/,
    );
    await assert.rejects(ownLadder(root, ["good", "nano"]), /"nano" is a size of the lab's ladder/);

    // A model that cannot be finetuned here: wte (50257 × 16 floats) exceeds a 1 MB maxBufferSize.
    await assert.rejects(
      add("tight", good, { maxBufferSize: 1_000_000, maxStorageBufferBindingSize: 1_000_000 }),
      /tight .* cannot be finetuned on this adapter: .*exceeds maxBufferSize/,
    );
    assert.deepEqual((await listOwnModels(root)).map((m) => m.name), ["good", "bytes"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
