/**
 * What a pretrained model knows about the knowledge world: LM completion accuracy per attribute. For
 * each entity the model reads the canonical pretraining prompt (". X lives in") and its answer is the
 * most likely value among the attribute's candidates — by the next-token logit when every candidate is
 * one token, otherwise by the summed log-probability of the candidate's tokens. Accuracy is reported
 * overall and by how often the fact was stated in the pretraining corpus (0, 1, 2–3, 4–8, 9+).
 */

import { loadCheckpoint } from "../../kernels/checkpoint.ts";
import { type GptConfig, paramLayout } from "../../kernels/config.ts";
import { getGpu, type Gpu } from "../../kernels/device.ts";
import { GptModel } from "../../kernels/gpt.ts";
import { createRandom } from "../../kernels/random.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import { factKey, knowledgeQueries, type LeaveOut, leftOutFacts, type World } from "../corpus/world.ts";
import { ladderSize } from "./ladder.ts";
import { type LabCorpusOptions, labWorld } from "./lab-corpus.ts";
import { modelDir, readStatus, statusPath } from "./model-store.ts";

/** Buckets of "times the fact is stated in pretraining" (0: never stated, e.g. left out). */
export const STATED_BUCKETS: readonly { label: string; min: number; max: number }[] = [
  { label: "0", min: 0, max: 0 },
  { label: "1", min: 1, max: 1 },
  { label: "2-3", min: 2, max: 3 },
  { label: "4-8", min: 4, max: 8 },
  { label: "9+", min: 9, max: Infinity },
];

/** Bound on the logits read back in one wait (staging copies of whole batches held at once). */
const MAX_QUEUED_LOGITS_BYTES = 32 * 1024 * 1024;

export interface BucketKnowledge {
  label: string;
  n: number;
  correct: number;
  accuracy: number | null;
}

export interface AttributeKnowledge {
  attribute: string;
  n: number;
  correct: number;
  accuracy: number;
  /** Accuracy of always answering the most frequent value. */
  majority: number;
  candidates: number;
  buckets: BucketKnowledge[];
  /** The chosen candidate's index for each probed entity, in world order. */
  predictions: number[];
}

export interface KnowledgeReport {
  attributes: AttributeKnowledge[];
}

export interface KnowledgeProbeOptions {
  /** Default: every attribute of the world. */
  attributes?: string[];
  /** Probe a seeded subset of this many entities (default: all). */
  maxEntities?: number;
  /** The leave-out the pretraining corpus used: its facts count as stated 0 times. */
  leaveOut?: LeaveOut;
  batchSize?: number;
  seed?: number;
}

interface Row {
  ids: number[];
  query: number;
  candidate: number;
  /** Positions whose next-token log-probabilities score the candidate, with the tokens they predict. */
  scored: { position: number; token: number }[];
}

export interface ProbeQuery {
  attribute: string;
  answer: number;
  stated: number;
  candidates: string[];
}

export class KnowledgeProbe {
  private readonly queries: ProbeQuery[] = [];
  private readonly rows: Row[] = [];
  private readonly model: GptModel;
  private readonly attributes: string[];
  private readonly seqLen: number;
  private readonly batchSize: number;

  constructor(
    gpu: Gpu,
    readonly cfg: GptConfig,
    tokenizer: Tokenizer,
    world: World,
    opts: KnowledgeProbeOptions = {},
  ) {
    this.attributes = opts.attributes ?? world.attributes.map((a) => a.name);
    let entityIndices = world.entities.map((_, i) => i);
    if (opts.maxEntities !== undefined && opts.maxEntities < entityIndices.length) {
      entityIndices = createRandom(opts.seed ?? 7).shuffle(entityIndices).slice(0, opts.maxEntities).sort((
        a,
        b,
      ) => a - b);
    }
    const leftOut = leftOutFacts(world, opts.leaveOut);
    for (const attribute of this.attributes) {
      const all = knowledgeQueries(world, attribute);
      const candidateIds = all[0].candidates.map((value) => tokenizer.encode(" " + value));
      const singleToken = candidateIds.every((ids) => ids.length === 1) &&
        new Set(candidateIds.map((ids) => ids[0])).size === candidateIds.length;
      for (const index of entityIndices) {
        const q = all[index];
        const queryIndex = this.queries.length;
        this.queries.push({
          attribute,
          answer: q.candidates.indexOf(q.answer),
          stated: leftOut.has(factKey(q.entity, attribute)) ? 0 : q.timesStated,
          candidates: q.candidates,
        });
        const prompt = tokenizer.encode(q.prompt);
        if (singleToken) {
          // One row: the next-token distribution after the prompt scores every candidate.
          candidateIds.forEach((ids, c) =>
            this.rows.push({
              ids: prompt,
              query: queryIndex,
              candidate: c,
              scored: [{ position: prompt.length - 1, token: ids[0] }],
            })
          );
        } else {
          candidateIds.forEach((ids, c) =>
            this.rows.push({
              ids: [...prompt, ...ids.slice(0, -1)],
              query: queryIndex,
              candidate: c,
              scored: ids.map((token, j) => ({ position: prompt.length - 1 + j, token })),
            })
          );
        }
      }
    }
    this.seqLen = Math.max(...this.rows.map((r) => r.ids.length));
    if (this.seqLen > cfg.contextLength) {
      throw new Error(
        `knowledge prompts need ${this.seqLen} tokens; the model's context is ${cfg.contextLength}`,
      );
    }
    this.batchSize = opts.batchSize ?? 64;
    this.model = new GptModel(gpu, cfg, new Float32Array(paramLayout(cfg).total), {
      batchSize: this.batchSize,
      seqLen: this.seqLen,
      forwardOnly: true,
    });
  }

  /** Runs the probe on a flat parameter buffer. */
  async measure(params: Float32Array): Promise<KnowledgeReport> {
    this.model.loadParams(params);
    const T = this.seqLen;
    const V = this.cfg.vocabSize;
    // Rows that share a prompt (single-token candidates) are run once.
    const unique = new Map<string, number>();
    const distinct: number[][] = [];
    const rowInput = this.rows.map((row) => {
      const key = row.ids.join(",");
      let at = unique.get(key);
      if (at === undefined) {
        at = distinct.length;
        unique.set(key, at);
        distinct.push(row.ids);
      }
      return at;
    });
    const scoresByInput = new Map<number, Map<number, Float64Array>>();
    // Which (position) log-softmax rows each distinct input needs.
    const neededPositions = distinct.map(() => new Set<number>());
    this.rows.forEach((row, r) => row.scored.forEach((s) => neededPositions[rowInput[r]].add(s.position)));
    const batchBytes = this.batchSize * T * V * 4;
    const batchesPerWait = Math.max(1, Math.floor(MAX_QUEUED_LOGITS_BYTES / batchBytes));
    const waitSpan = batchesPerWait * this.batchSize;
    for (let first = 0; first < distinct.length; first += waitSpan) {
      // Every batch's logits copy is queued behind its forward pass and all are awaited together: a
      // read-back waits a fixed poll interval however small, so one wait per group instead of per batch.
      const reads: { start: number; logits: Promise<Float32Array> }[] = [];
      for (let start = first; start < Math.min(distinct.length, first + waitSpan); start += this.batchSize) {
        const inputs = distinct.slice(start, start + this.batchSize);
        const tokens = new Int32Array(inputs.length * T);
        const lengths = new Int32Array(inputs.length);
        inputs.forEach((ids, b) => {
          tokens.set(ids, b * T);
          lengths[b] = ids.length;
        });
        this.model.setBatch({ tokens, lengths });
        this.model.logitsStep();
        reads.push({ start, logits: this.model.readLogits() });
      }
      const logitsOfBatches = await Promise.all(reads.map((read) => read.logits));
      reads.forEach(({ start }, k) => {
        const logits = logitsOfBatches[k];
        for (let b = 0; b < logits.length / (T * V); b++) {
          const perPosition = new Map<number, Float64Array>();
          for (const position of neededPositions[start + b]) {
            perPosition.set(
              position,
              logSoftmax(logits.subarray((b * T + position) * V, (b * T + position + 1) * V)),
            );
          }
          scoresByInput.set(start + b, perPosition);
        }
      });
    }
    const scores = this.queries.map((q) => new Float64Array(q.candidates.length));
    this.rows.forEach((row, r) => {
      const perPosition = scoresByInput.get(rowInput[r])!;
      let score = 0;
      for (const s of row.scored) score += perPosition.get(s.position)![s.token];
      scores[row.query][row.candidate] = score;
    });
    return summarize(this.attributes, this.queries, scores);
  }

  destroy(): void {
    this.model.destroy();
  }
}

/** log softmax of one row of logits, in float64. */
function logSoftmax(row: Float32Array): Float64Array {
  const V = row.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(row[i] - max);
  const logSum = max + Math.log(sum);
  const logProbs = new Float64Array(V);
  for (let i = 0; i < V; i++) logProbs[i] = row[i] - logSum;
  return logProbs;
}

/** Accuracy per attribute and bucket from the candidates' scores (argmax; ties go to the first). */
export function summarize(
  attributes: string[],
  queries: ProbeQuery[],
  scores: Float64Array[],
): KnowledgeReport {
  return {
    attributes: attributes.map((attribute) => {
      const indices = queries.map((q, i) => (q.attribute === attribute ? i : -1)).filter((i) => i >= 0);
      const predictionOf = (i: number) => {
        const s = scores[i];
        let best = 0;
        for (let c = 1; c < s.length; c++) if (s[c] > s[best]) best = c;
        return best;
      };
      const correctOf = (i: number) => predictionOf(i) === queries[i].answer;
      const correct = indices.filter(correctOf).length;
      const counts = new Map<number, number>();
      for (const i of indices) counts.set(queries[i].answer, (counts.get(queries[i].answer) ?? 0) + 1);
      const buckets = STATED_BUCKETS.map((bucket) => {
        const inBucket = indices.filter((i) =>
          queries[i].stated >= bucket.min && queries[i].stated <= bucket.max
        );
        const c = inBucket.filter(correctOf).length;
        return {
          label: bucket.label,
          n: inBucket.length,
          correct: c,
          accuracy: inBucket.length ? c / inBucket.length : null,
        };
      });
      return {
        attribute,
        n: indices.length,
        correct,
        accuracy: indices.length ? correct / indices.length : 0,
        majority: indices.length ? Math.max(...counts.values()) / indices.length : 0,
        candidates: indices.length ? queries[indices[0]].candidates.length : 0,
        buckets,
        predictions: indices.map(predictionOf),
      };
    }),
  };
}

export interface SizeKnowledge extends KnowledgeReport {
  size: string;
  checkpoint: string;
  tokenizerId: string;
  entities: number;
}

/** The knowledge of a pretrained ladder size (its checkpoint in the model store). */
export async function sizeKnowledge(opts: {
  size: string;
  dataDir?: string;
  corpus?: LabCorpusOptions;
  attributes?: string[];
  gpu?: Gpu;
}): Promise<SizeKnowledge> {
  const size = ladderSize(opts.size);
  const dataDir = opts.dataDir ?? Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const dir = modelDir(dataDir, size.name);
  const status = await readStatus(dataDir, size.name);
  if (!status) {
    throw new Error(
      `size ${size.name} is not pretrained (no ${
        statusPath(dataDir, size.name)
      }); run: deno task lab pretrain --size ${size.name}`,
    );
  }
  const checkpoint = await loadCheckpoint(dir);
  const { world, tokenizer } = await labWorld(dataDir, opts.corpus);
  if (checkpoint.meta.tokenizer !== tokenizer.id) {
    throw new Error(
      `checkpoint ${dir} was trained with tokenizer ${checkpoint.meta.tokenizer}, the lab corpus uses ${tokenizer.id}`,
    );
  }
  const gpu = opts.gpu ?? await getGpu();
  const probe = new KnowledgeProbe(gpu, checkpoint.config, tokenizer, world, {
    attributes: opts.attributes,
    leaveOut: opts.corpus?.worldLeaveOut,
  });
  try {
    const report = await probe.measure(checkpoint.params);
    return {
      size: size.name,
      checkpoint: dir,
      tokenizerId: tokenizer.id,
      entities: world.entities.length,
      ...report,
    };
  } finally {
    probe.destroy();
  }
}
