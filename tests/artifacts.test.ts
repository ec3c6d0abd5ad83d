/**
 * Integrity of what the lab keeps on disk: checkpoints carry their weights' length and sha-256 and a
 * truncated, overwritten or NaN-filled one is refused on load and listed as broken; a damaged status.json
 * breaks its own size, never the listing; bad or mismatched pretraining budgets and seeds are refused
 * with the flag and --force named; the data directory and the database files are owner-only.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type GptConfig, initParameters } from "../kernels/config.ts";
import { checkCheckpoint, loadCheckpoint, saveCheckpoint } from "../kernels/checkpoint.ts";
import { openDb } from "../db/client.ts";
import { listModels } from "../server/api/catalog.ts";
import { loadLabCorpus } from "../server/lab/lab-corpus.ts";
import { ladderStatus } from "../server/lab/models.ts";
import {
  makeModelDir,
  modelDir,
  type PretrainStatus,
  statusPath,
  writeStatus,
} from "../server/lab/model-store.ts";
import { pretrainSize } from "../server/lab/pretrain.ts";
import { main as pretrainCommand } from "../scripts/cli/pretrain.ts";
import { TINY_CORPUS, tinySize } from "./helpers/tiny-ladder.ts";

const config: GptConfig = { vocabSize: 13, contextLength: 6, width: 8, layers: 1, heads: 2 };

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Writes float32 NaN over the first weight after the safetensors header, keeping the file's length. */
async function overwriteFirstWeightWithNaN(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  new DataView(bytes.buffer).setFloat32(8 + headerLength, NaN, true);
  await Deno.writeFile(path, bytes);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "artifacts-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a checkpoint records its weights' length and sha-256; damage is refused on load", async () => {
  await withTempDir(async (dir) => {
    const params = initParameters(config, 1);
    await saveCheckpoint(dir, { config, params });
    const weights = await Deno.readFile(join(dir, "model.safetensors"));
    const recorded = JSON.parse(await Deno.readTextFile(join(dir, "config.json"))).weights;
    assert.deepEqual(recorded, { bytes: weights.length, sha256: await sha256Hex(weights) });
    const loaded = await loadCheckpoint(dir);
    assert.equal(loaded.verified, true);
    assert.deepEqual(await checkCheckpoint(dir), { state: "verified" });

    // NaN written over one weight in place: same length, another checksum.
    await overwriteFirstWeightWithNaN(join(dir, "model.safetensors"));
    await assert.rejects(loadCheckpoint(dir), /model\.safetensors does not match the sha-256.*--force/);
    const nan = await checkCheckpoint(dir);
    assert.equal(nan.state, "broken");

    // Truncated: the length alone shows it, also when the listing does not read the weights.
    await Deno.writeFile(join(dir, "model.safetensors"), weights.subarray(0, weights.length - 40));
    await assert.rejects(loadCheckpoint(dir), /is \d+ bytes, config\.json recorded \d+ \(truncated/);
    const truncated = await checkCheckpoint(dir, 0);
    assert.ok(truncated.state === "broken" && /truncated/.test(truncated.reason), JSON.stringify(truncated));
  });
});

Deno.test("a checkpoint written before the checksum loads unverified; NaN weights are refused anyway", async () => {
  await withTempDir(async (dir) => {
    const params = initParameters(config, 2);
    await saveCheckpoint(dir, { config, params });
    const configJson = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    delete configJson.weights;
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(configJson));
    const loaded = await loadCheckpoint(dir);
    assert.equal(loaded.verified, false);
    assert.deepEqual(loaded.params, params);
    assert.deepEqual(await checkCheckpoint(dir), { state: "unverified" });

    await overwriteFirstWeightWithNaN(join(dir, "model.safetensors"));
    await assert.rejects(loadCheckpoint(dir), /tensor wte\.weight holds NaN or infinite weights/);
  });
});

/** A pretrained status of `size` with a checkpoint beside it, as a finished run leaves them. */
async function writePretrained(dataDir: string, size: string, over: Partial<PretrainStatus> = {}) {
  await makeModelDir(dataDir, size);
  await saveCheckpoint(modelDir(dataDir, size), { config, params: initParameters(config, 3) });
  const status: PretrainStatus = {
    size,
    status: "pretrained",
    params: 1234,
    config,
    step: 4,
    totalSteps: 4,
    tokens: 4 * 8 * 16,
    batchSize: 8,
    seqLen: 16,
    seed: 1,
    lr: 1e-2,
    corpusHash: "h",
    tokenizerId: "t",
    knowledgeAttribute: "region",
    val_loss: 2.5,
    knowledge: null,
    wallSeconds: 1,
    tokensPerSecond: null,
    curves: { train: [], val: [], knowledge: [] },
    updatedAt: new Date(0).toISOString(),
    ...over,
  };
  await writeStatus(dataDir, size, status);
}

Deno.test("a damaged status.json or checkpoint lists its size as broken; the others list as usual", async () => {
  await withTempDir(async (dataDir) => {
    await writePretrained(dataDir, "nano");
    await makeModelDir(dataDir, "micro");
    await Deno.writeTextFile(statusPath(dataDir, "micro"), "{ not json");
    await makeModelDir(dataDir, "mini");
    await Deno.writeTextFile(statusPath(dataDir, "mini"), "{}");
    await writePretrained(dataDir, "small");
    await overwriteFirstWeightWithNaN(join(modelDir(dataDir, "small"), "model.safetensors"));
    await writePretrained(dataDir, "medium");
    const weightsPath = join(modelDir(dataDir, "medium"), "model.safetensors");
    const weights = await Deno.readFile(weightsPath);
    await Deno.writeFile(weightsPath, weights.subarray(0, 100));

    const byName = new Map((await ladderStatus(dataDir)).map((e) => [e.name, e]));
    assert.equal(byName.get("nano")!.status, "pretrained");
    assert.equal(byName.get("nano")!.val_loss, 2.5);
    const reasons: Record<string, RegExp> = {
      micro: /not valid JSON/,
      mini: /field status is undefined/,
      small: /sha-256/,
      medium: /truncated/,
    };
    for (const [size, reason] of Object.entries(reasons)) {
      const entry = byName.get(size)!;
      assert.equal(entry.status, "broken", size);
      assert.match(entry.brokenReason!, reason, size);
    }
    assert.equal(byName.get("large")!.status, "missing");

    // GET /api/models and `lab models` read the same merge: the database adds nothing to break it.
    const opened = await openDb({ dataDir });
    try {
      const listing = new Map((await listModels(opened.db, dataDir)).map((m) => [m.name, m]));
      assert.equal(listing.get("nano")!.status, "pretrained");
      assert.equal(listing.get("nano")!.brokenReason, null);
      assert.equal(listing.get("mini")!.status, "broken");
      assert.match(listing.get("mini")!.brokenReason!, /status\.json is corrupted/);
    } finally {
      await opened.close();
    }
  });
});

Deno.test("the data directory and the database files are owner-only", async () => {
  await withTempDir(async (parent) => {
    const dataDir = join(parent, "data");
    await Deno.mkdir(dataDir, { mode: 0o777 });
    await Deno.chmod(dataDir, 0o777);
    const opened = await openDb({ dataDir });
    await opened.close();
    assert.equal(Deno.statSync(dataDir).mode! & 0o777, 0o700);
    assert.equal(Deno.statSync(join(dataDir, "db")).mode! & 0o777, 0o700);
    const open: string[] = [];
    const walk = (dir: string) => {
      for (const entry of Deno.readDirSync(dir)) {
        const path = join(dir, entry.name);
        if ((Deno.lstatSync(path).mode! & 0o077) !== 0) open.push(path);
        if (entry.isDirectory) walk(path);
      }
    };
    walk(join(dataDir, "db"));
    assert.deepEqual(open.slice(0, 5), [], `${open.length} files readable or writable by others`);
  });
});

const corpus = TINY_CORPUS;
const tiny = tinySize("nano", 4);

Deno.test("pretraining refuses a bad budget or seed, and a cached size trained otherwise names --force", async () => {
  for (const tokens of ["-5", "0", "NaN", "1.5"]) {
    await assert.rejects(
      pretrainCommand(["--size", "nano", "--tokens", tokens]),
      /--tokens must be (≥ 1|an integer|a number)/,
      tokens,
    );
  }
  await assert.rejects(pretrainCommand(["--size", "nano", "--seed", "-1"]), /--seed must be ≥ 0, got -1$/);
  await withTempDir(async (dataDir) => {
    for (const tokens of [-5, 0, NaN]) {
      await assert.rejects(
        pretrainSize({ size: tiny, dataDir, corpus, tokens }),
        /tokens must be a positive/,
      );
    }
    const { hash } = await loadLabCorpus(dataDir, corpus);
    await writePretrained(dataDir, "nano", { corpusHash: hash, tokens: tiny.tokens, seed: 1 });
    await assert.rejects(
      pretrainSize({ size: tiny, dataDir, corpus, tokens: 400_000 }),
      /pretrained with a budget of 512 tokens, not the requested 400000 \(--tokens 400000\); .*--force/,
    );
    await assert.rejects(
      pretrainSize({ size: tiny, dataDir, corpus, seed: 7 }),
      /pretrained with seed 1, not the requested 7; pretrain with --force/,
    );
    // Asking for what it was trained with (or for nothing) is a cache hit.
    const cached = await pretrainSize({ size: tiny, dataDir, corpus, tokens: tiny.tokens, seed: 1 });
    assert.equal(cached.cached, true);
    assert.equal((await pretrainSize({ size: tiny, dataDir, corpus })).cached, true);
  });
});
