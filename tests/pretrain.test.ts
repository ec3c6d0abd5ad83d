/**
 * Pretraining on a tiny world with tiny sizes: the loss falls from ln V, a run interrupted mid-way and
 * resumed ends with the same parameters as an uninterrupted one, a finished size is cached, and bad
 * input (unknown size, damaged checkpoint files) fails with errors that name what is wrong. Also the
 * learning-rate schedule against hand-computed values and the ladder status listing. The world's
 * validation restates only facts training states, and the world-region task uses the ladder's world.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint } from "../kernels/checkpoint.ts";
import { LADDER } from "../server/lab/ladder.ts";
import { ladderStatus } from "../server/lab/models.ts";
import { loadTaskSplits } from "../server/tasks/load.ts";
import { buildCorpus } from "../server/corpus/corpus.ts";
import {
  generateWorld,
  renderWorldCorpus,
  renderWorldValidation,
  timesStated,
  worldStatementVariants,
} from "../server/corpus/world.ts";
import { Mulberry32 } from "../kernels/random.ts";
import { labWorld, loadLabCorpus, sentenceStarts } from "../server/lab/lab-corpus.ts";
import { modelDir, statusPath, trainStatePath } from "../server/lab/model-store.ts";
import { DEFAULT_WORLD_SPEC, storeLabWorld, worldSpecWith } from "../server/corpus/world-spec.ts";
import { PretrainInterrupted, pretrainSize } from "../server/lab/pretrain.ts";
import { paraphraseWindow, validationBatches, validationWindowCount } from "../server/lab/windows.ts";
import { paramsFromFlat, refForward } from "../kernels/reference.ts";
import { learningRateAt } from "../server/lab/schedule.ts";
import { ADAMW_PRETRAIN, paramLayout } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { GptModel, NonFiniteError } from "../kernels/gpt.ts";
import { watchReadBacks } from "./helpers/read-backs.ts";
import { TINY_CORPUS, tinySize } from "./helpers/tiny-ladder.ts";

const corpus = TINY_CORPUS;
const tiny = tinySize("nano", 24);
// 24 validation windows: three training batches' worth, so validation runs on a forward-only evaluator.
const quiet = { evalEvery: 6, checkpointEvery: 8, logEvery: 4, valWindows: 24, knowledgeEntities: 8 };

Deno.test("learning rate: linear warmup, then cosine decay to a tenth", () => {
  // 10 steps, 2 of warmup, peak 1: steps 0,1 → 0.5, 1; then 0.1 + 0.9·(1 + cos(π·k/8))/2.
  assert.equal(learningRateAt(0, 10, 1, 2), 0.5);
  assert.equal(learningRateAt(1, 10, 1, 2), 1);
  assert.equal(learningRateAt(2, 10, 1, 2), 1);
  assert.ok(Math.abs(learningRateAt(6, 10, 1, 2) - 0.55) < 1e-12); // k = 4: cos(π/2) = 0
  assert.ok(Math.abs(learningRateAt(10, 10, 1, 2) - 0.1) < 1e-12);
});

Deno.test("sentence starts: every period token, the first token, and the end", () => {
  const period = 5;
  assert.deepEqual([...sentenceStarts(Uint16Array.from([5, 1, 2, 5, 3, 5]), period)], [0, 3, 5, 6]);
  assert.deepEqual([...sentenceStarts(Uint16Array.from([7, 8, 5, 9]), period)], [0, 2, 4]);
});

Deno.test("pretraining lowers validation loss from ln V, caches, and resumes exactly", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pretrain-test-" });
  try {
    const first = await pretrainSize({ size: tiny, dataDir, corpus, seed: 3, ...quiet });
    const s = first.status;
    assert.equal(s.status, "pretrained");
    assert.equal(s.step, 24);
    // At initialization the logits are almost uniform: the loss is about ln V.
    const V = s.config.vocabSize;
    assert.ok(
      Math.abs(s.curves.val[0].value - Math.log(V)) < 0.1,
      `initial val ${s.curves.val[0].value} vs ln V`,
    );
    assert.ok(s.val_loss! < s.curves.val[0].value - 1.5, `val loss fell only to ${s.val_loss}`);
    assert.equal(s.curves.knowledge.length, s.curves.val.length);

    // The lab checkpoint loads and says what it was trained on.
    const checkpoint = await loadCheckpoint(first.dir);
    assert.equal(checkpoint.meta.tokenizer, s.tokenizerId);
    assert.equal(checkpoint.meta.corpusHash, s.corpusHash);

    // The final validation loss (on a forward-only evaluator of all 24 windows, 3× the training batch)
    // equals the float64 reference's mean loss over the same windows with the final parameters.
    const T = tiny.contextLength;
    const validation = (await loadLabCorpus(dataDir, corpus)).world.validation;
    assert.equal(validationWindowCount(validation, T, quiet.valWindows), 24, "the test's world is too small");
    const [windows] = validationBatches(validation, 24, T, quiet.valWindows);
    const reference = refForward(s.config, paramsFromFlat(s.config, checkpoint.params), {
      B: 24,
      T,
      ...windows,
    }, "lm");
    assert.ok(
      Math.abs(reference.loss - s.val_loss!) < 1e-4,
      `val loss ${s.val_loss} vs float64 ${reference.loss}`,
    );

    // The status says what the corpus held of the tasks' test items: the world alone, none.
    const worldOnly = {
      realShare: 0,
      leakage: false,
      splitSeeds: [],
      excluded: { wordnetSynsets: 0, wordnetLemmas: 0, paragraphsBySource: {} },
    };
    assert.deepEqual(s.corpus, worldOnly);

    // Cached: nothing runs, the same status comes back; one written before leakage was recorded learns it.
    const { corpus: _, ...olderStatus } = JSON.parse(await Deno.readTextFile(statusPath(dataDir, "nano")));
    await Deno.writeTextFile(statusPath(dataDir, "nano"), JSON.stringify(olderStatus));
    const again = await pretrainSize({ size: tiny, dataDir, corpus, seed: 3, ...quiet });
    assert.equal(again.cached, true);
    assert.equal(again.status.val_loss, s.val_loss);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(statusPath(dataDir, "nano"))).corpus, worldOnly);

    // Interrupt a second run at step 13 (between checkpoints), then resume it.
    const controller = new AbortController();
    const otherDir = join(dataDir, "other");
    await assert.rejects(
      pretrainSize({
        size: tiny,
        dataDir: otherDir,
        corpus,
        seed: 3,
        ...quiet,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.step === 13) controller.abort();
        },
      }),
      (err) => err instanceof PretrainInterrupted && err.step === 13,
    );
    const partial = (await ladderStatus(otherDir)).find((e) => e.name === "nano")!;
    assert.equal(partial.status, "partial");
    assert.equal(partial.step, 13);
    const resumed = await pretrainSize({ size: tiny, dataDir: otherDir, corpus, seed: 3, ...quiet });
    assert.equal(resumed.resumedFromStep, 13);
    assert.equal(resumed.status.step, 24);
    const a = (await loadCheckpoint(first.dir)).params;
    const b = (await loadCheckpoint(resumed.dir)).params;
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    assert.ok(maxDiff < 1e-5, `resumed parameters differ by ${maxDiff}`);
    assert.ok(Math.abs(resumed.status.val_loss! - s.val_loss!) < 1e-4);
    assert.deepEqual(resumed.status.curves.val.map((p) => p.step), s.curves.val.map((p) => p.step));
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("loss reads overlap the next step, checkpoints read in one wait, the same parameters", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pretrain-overlap-test-" });
  try {
    // Loss read at every 4th step; steps 4 and 20 fall on no evaluation, snapshot or checkpoint.
    const controller = new AbortController();
    const log = await watchReadBacks(async () => {
      await assert.rejects(
        pretrainSize({
          size: tiny,
          dataDir,
          corpus,
          seed: 3,
          ...quiet,
          signal: controller.signal,
          onProgress: (p) => p.step === 20 && controller.abort(),
        }),
        // Step 21 was already submitted when the abort came: it finishes, then the checkpoint is taken.
        (err) => err instanceof PretrainInterrupted && err.step === 21,
      );
    });
    const steps = log.pendingAtTrainSteps;
    assert.equal(steps.length, 21);
    assert.deepEqual([...steps.keys()].filter((i) => steps[i] > 0).map((i) => i + 1), [5, 21]);
    const resumed = await pretrainSize({ size: tiny, dataDir, corpus, seed: 3, ...quiet });
    assert.equal(resumed.resumedFromStep, 21);
    const paramBytes = paramLayout(resumed.status.config).total * 4;
    assert.equal(log.mostPendingBySize.get(paramBytes), 3, "parameters, m and v read back in one wait");
    // No loss read until the last step: nothing overlaps, and training is bit for bit the same.
    const plain = await pretrainSize({
      size: tiny,
      dataDir: join(dataDir, "plain"),
      corpus,
      seed: 3,
      ...quiet,
      logEvery: 24,
    });
    assert.deepEqual((await loadCheckpoint(resumed.dir)).params, (await loadCheckpoint(plain.dir)).params);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a non-finite step stops pretraining at the next loss read, even one submitted while a read waits", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pretrain-nan-test-" });
  try {
    await assert.rejects(
      pretrainSize({ size: tiny, dataDir, corpus, seed: 3, ...quiet, lr: 1e30 }),
      /pretraining nano diverged near step 4: non-finite loss or gradient norm: \d+ update\(s\) skipped/,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
  // One non-finite step submitted while the previous step's read waits is counted by the next read.
  const cfg = { vocabSize: 64, contextLength: 8, width: 8, layers: 1, heads: 1 };
  const model = new GptModel(await getGpu(), cfg, new Float32Array(paramLayout(cfg).total).fill(0.01), {
    batchSize: 2,
    seqLen: 8,
  });
  try {
    model.setOptimizer({ ...ADAMW_PRETRAIN, lr: 1e-3 });
    const batch = {
      tokens: new Int32Array(16).fill(3),
      lengths: new Int32Array([8, 8]),
      targets: new Int32Array(16).fill(5),
    };
    const good = new Float32Array(paramLayout(cfg).total).fill(0.01);
    model.setBatch(batch);
    model.trainStep("lm");
    const waiting = model.readStats();
    model.loadParams(new Float32Array(good.length).fill(NaN));
    model.trainStep("lm");
    assert.ok(Number.isFinite((await waiting).loss));
    model.loadParams(good);
    model.trainStep("lm");
    await assert.rejects(model.readStats(), (err) => err instanceof NonFiniteError && err.skipped === 1);
  } finally {
    model.destroy();
  }
});

Deno.test("bad input: unknown size, damaged training state, damaged model", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pretrain-test-" });
  try {
    await assert.rejects(
      pretrainSize({ size: "huge", dataDir, corpus }),
      /unknown ladder size "huge"; known sizes: nano, micro/,
    );
    // A partial run leaves a training state; truncating it must name the file on the next run.
    const controller = new AbortController();
    await assert.rejects(
      pretrainSize({
        size: tiny,
        dataDir,
        corpus,
        ...quiet,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.step === 2) controller.abort();
        },
      }),
      PretrainInterrupted,
    );
    const statePath = trainStatePath(dataDir, "nano");
    const bytes = await Deno.readFile(statePath);
    await Deno.writeFile(statePath, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(
      pretrainSize({ size: tiny, dataDir, corpus, ...quiet }),
      (err: Error) => err.message.includes(statePath) && /corrupted/.test(err.message),
    );
    // --force starts over and finishes; then a damaged model file is an error, not a cache hit.
    await pretrainSize({ size: tiny, dataDir, corpus, ...quiet, force: true });
    const modelPath = join(modelDir(dataDir, "nano"), "model.safetensors");
    await Deno.writeFile(modelPath, new TextEncoder().encode("not a safetensors file"));
    await assert.rejects(
      pretrainSize({ size: tiny, dataDir, corpus, ...quiet }),
      (err: Error) => err.message.includes(modelPath),
    );
    await Deno.writeTextFile(statusPath(dataDir, "nano"), "{ truncated");
    const nano = (await ladderStatus(dataDir)).find((e) => e.name === "nano")!;
    assert.equal(nano.status, "broken");
    assert.match(nano.brokenReason!, /status\.json is corrupted/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("ladder status lists every size; missing sizes get parameter counts from the config", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pretrain-test-" });
  try {
    const entries = await ladderStatus(dataDir);
    assert.deepEqual(entries.map((e) => e.name), LADDER.map((s) => s.name));
    assert.ok(entries.every((e) => e.status === "missing" && e.val_loss === null));
    // Hand count for nano: V·C + T·C + per layer (C·3C + 3C + C·C + C + C·4C + 4C + 4C·C + C + 4C)
    // + ln_f 2C + cls head 2C + 2, with V from the default lab corpus's tokenizer.
    const nano = LADDER[0];
    const C = nano.width;
    const perLayer = 12 * C * C + 13 * C;
    const V = (entries[0].params - nano.contextLength * C - nano.layers * perLayer - 4 * C - 2) / C;
    assert.ok(Number.isInteger(V) && V > 256, `vocabulary implied by nano's count: ${V}`);
    const micro = LADDER[1];
    const Cm = micro.width;
    assert.equal(
      entries[1].params,
      V * Cm + micro.contextLength * Cm + micro.layers * (12 * Cm * Cm + 13 * Cm) + 4 * Cm + 2,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

// The sentences of rendered world documents, without the leading ". " and the final period.
const sentencesOf = (documents: string[]) =>
  documents.flatMap((d) => d.replace(/^\. /, "").split(/\. ?/)).map((s) => s.trim()).filter(Boolean);

Deno.test("world validation restates facts that training states; the world is not split by document", async () => {
  const world = generateWorld({ seed: 3, entities: 40, maxMentions: 12, halfStatementsPerRegion: 2 });
  const names = new Set(world.entities.map((e) => e.name));
  const regions = world.attributes[0].values;
  const allValues = new Set([...world.attributes.flatMap((a) => a.values), "north", "south"]);
  // (subject, value) of a sentence, read from its words: the subject is the one name, the value the last word.
  const fact = (sentence: string) => {
    const words = sentence.split(" ");
    const subject = words.find((w) => names.has(w) || regions.includes(w));
    const value = words.findLast((w) => allValues.has(w) && w !== subject);
    assert.ok(subject && value, `cannot read a fact from "${sentence}"`);
    return `${subject} ${value}`;
  };
  const train = new Set(sentencesOf(renderWorldCorpus(world)).map(fact));
  const validation = sentencesOf(renderWorldValidation(world)).map(fact);
  // One restatement per stated (entity, attribute) fact, one per region's half.
  const stated = world.entities.reduce((n, e) => n + e.order.filter((a) => timesStated(e, a) > 0).length, 0);
  assert.equal(validation.length, stated + regions.length);
  for (const f of validation) assert.ok(train.has(f), `validation fact "${f}" is not stated in training`);
  // Left-out facts are in neither.
  const leaveOut = { entities: [world.entities[0].name] };
  const held = sentencesOf(renderWorldValidation(world, { leaveOut })).join(" ");
  assert.ok(!held.includes(` ${world.entities[0].name} `) && !held.startsWith(world.entities[0].name));

  // The built corpus: every training statement is in the train tokens, none is held out by document.
  const dir = await Deno.makeTempDir();
  try {
    const built = await buildCorpus({ dataDir: dir, sources: [], world, merges: 32 });
    const trainText = built.tokenizer.decode([...built.train]);
    for (const s of sentencesOf(renderWorldCorpus(world))) {
      assert.ok(trainText.includes(s), `"${s}" not in train`);
    }
    const validationText = built.tokenizer.decode([...built.validation]);
    assert.equal(sentencesOf(validationText.split("\n\n")).length, stated + regions.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("world tasks ask about the ladder's own world: the lab's world file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ladderWorld = (await labWorld(dir)).world;
    assert.equal(ladderWorld.entities.length, DEFAULT_WORLD_SPEC.entities.count);
    assert.deepEqual(ladderWorld.spec, DEFAULT_WORLD_SPEC);
    const splits = await loadTaskSplits("world-region", 0, undefined, ladderWorld);
    const names = new Set(ladderWorld.entities.map((e) => e.name));
    for (const split of Object.values(splits)) {
      for (const e of split) {
        const name = / ([A-Za-z]+) lives in$/.exec(e.txt)![1];
        assert.ok(names.has(name), `task entity ${name} is not in the ladder's world`);
      }
    }
    // Another world file in the data directory is the ladder's world from then on, under its own key.
    const before = modelDir(dir, "nano");
    await storeLabWorld(dir, worldSpecWith(DEFAULT_WORLD_SPEC, { seed: 77 }));
    assert.notEqual(modelDir(dir, "nano"), before);
    const other = (await labWorld(dir)).world;
    assert.notDeepEqual(other.entities.map((e) => e.name), ladderWorld.entities.map((e) => e.name));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("paraphrase augmentation: every wording of a statement, drawn at random per use", () => {
  const world = generateWorld({ seed: 4, entities: 5, maxMentions: 2, halfStatementsPerRegion: 1 });
  const variants = worldStatementVariants(world);
  const stated = world.entities.reduce((n, e) => n + e.mentions, 0);
  assert.equal(variants.length, stated + 12);
  const first = world.entities[0];
  const region = first.attrs.region;
  // Region is the first statement of the first entity: its three templates, filled by hand.
  assert.deepEqual(variants[0], [
    `${first.name} lives in ${region}`,
    `the ${first.name} is found in ${region}`,
    `${first.name} comes from ${region}`,
  ]);
  const half = world.derived[0].map[world.attributes[0].values[0]];
  assert.deepEqual(variants[stated], [
    `${world.attributes[0].values[0]} is in the ${half}`,
    `${world.attributes[0].values[0]} lies in the ${half}`,
    `the land of ${world.attributes[0].values[0]} is in the ${half}`,
  ]);
  // Left-out facts have no wording at all.
  assert.equal(
    worldStatementVariants(world, { leaveOut: { entities: [first.name] } }).length,
    stated - first.mentions + 12,
  );

  // Windows: one statement with wordings [1 2], [3 4 5] (periods are 9): both wordings appear, whole.
  const rng = new Mulberry32(7);
  const seen = new Set<string>();
  for (let draw = 0; draw < 40; draw++) {
    const window = paraphraseWindow([[Int32Array.from([9, 1, 2]), Int32Array.from([9, 3, 4, 5])]], rng, 8);
    assert.equal(window.length, 9);
    // Split at periods: each piece is one complete wording (the last one may be cut by the window).
    const pieces = [...window].join(" ").split("9 ").filter(Boolean).map((p) => p.trim());
    pieces.slice(0, -1).forEach((p) => assert.ok(p === "1 2" || p === "3 4 5", `piece "${p}"`));
    pieces.forEach((p) => seen.add(p));
  }
  assert.ok(seen.has("1 2") && seen.has("3 4 5"));
});
