/**
 * Per-adapter autotune of the register block of matmul v4 (tiled). For each layout (NN, NT, TN) a few
 * candidate blocks run on a 512³ product (wall time over repeated calls in one submit); the candidates
 * take turns over five rounds and each is judged by its median, so a burst of load on a shared machine
 * hits all of them alike instead of crowning whichever ran in a quiet moment. The fastest becomes that
 * layout's default through setTiledBlocks. Then the chosen block runs from buffers (v4) and from textures
 * (v6, its packs included: copies where the layout allows, method 4), in turns; textures become the
 * engine's operands (setKernelOperands) where they win in two of the three layouts. Both give the same
 * bits. Results are cached per adapter name in a JSON file
 * ($XDG_CACHE_HOME or ~/.cache, gpt-lab/matmul-autotune.json), so a machine tunes once; an entry
 * written by an older tuning method (another TUNE_METHOD) is measured again. Candidates stay at ≤ 24×24:
 * larger blocks make llvmpipe's LLVM compile of one pipeline take too long.
 */
import type { Gpu } from "../device.ts";
import { createTensor, type Dispatch, encodeDispatches } from "../runtime.ts";
import { type MatmulSpec, planMatmul, setTiledBlocks, type TiledBlock } from "./matmul.ts";
import { planMatmulTextures } from "./matmul-texture.ts";
import { type KernelOperands, setKernelOperands } from "./texture-operand.ts";

export const TUNE_CANDIDATES: TiledBlock[] = [[16, 16], [24, 24], [16, 16, 2], [8, 16]];
const TUNE_METHOD = 4;
const ROUNDS = 5;
const LAYOUTS = ["NN", "NT", "TN"] as const;

export interface TuneResult {
  adapter: string;
  method?: number;
  blocks: Record<string, TiledBlock>;
  /** Where products read their operands: textures (v6) where they beat buffers in most layouts. */
  operands: KernelOperands;
  /** GFLOP/s of each candidate per layout ("v6 16x16": the chosen block from textures), for the record. */
  gflops: Record<string, Record<string, number>>;
  fromCache: boolean;
}

export function defaultCacheFile(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.cache`;
  return `${base}/gpt-lab/matmul-autotune.json`;
}

function readCache(file: string): Record<string, Omit<TuneResult, "fromCache">> {
  try {
    return JSON.parse(Deno.readTextFileSync(file));
  } catch {
    return {};
  }
}

/**
 * Applies the blocks cached for this adapter and never measures: undefined (the default blocks stay) when the
 * cache has no current entry. For processes that must start fast, such as a queue worker.
 */
export function applyCachedMatmulTune(gpu: Gpu, cacheFile = defaultCacheFile()): TuneResult | undefined {
  const hit = readCache(cacheFile)[gpu.adapterName];
  if (!hit || hit.method !== TUNE_METHOD) return undefined;
  setTiledBlocks(hit.blocks);
  setKernelOperands(hit.operands);
  return { ...hit, fromCache: true };
}

/**
 * applyCachedMatmulTune for the lab's workers (the job worker, device workers), unless LAB_AUTOTUNE=0,
 * which keeps the default blocks and buffers as it does for `lab` commands: runs that pin the engine (the
 * tests) then do not depend on this machine's cache.
 */
export function applyMachineTune(gpu: Gpu): TuneResult | undefined {
  return Deno.env.get("LAB_AUTOTUNE") === "0" ? undefined : applyCachedMatmulTune(gpu);
}

/** Applies the cached blocks for this adapter, or measures them (a few seconds) and caches them. */
export async function autotuneMatmul(
  gpu: Gpu,
  opts: { cacheFile?: string; force?: boolean; size?: number } = {},
): Promise<TuneResult> {
  const file = opts.cacheFile ?? defaultCacheFile();
  const cached = opts.force ? undefined : applyCachedMatmulTune(gpu, file);
  if (cached) return cached;
  const S = opts.size ?? 512;
  const random = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const a = createTensor(gpu, S * S, "tune a", random(S * S));
  const b = createTensor(gpu, S * S, "tune b", random(S * S));
  const c = createTensor(gpu, S * S, "tune c");
  const run = async (d: Dispatch[], reps: number) => {
    const encoder = gpu.device.createCommandEncoder();
    for (let r = 0; r < reps; r++) encodeDispatches(encoder, d);
    const start = performance.now();
    gpu.device.queue.submit([encoder.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
    return (performance.now() - start) / reps;
  };
  /** Median time of each list of launches, taking turns over the rounds. */
  const medians = async (plans: Dispatch[][]) => {
    const times: number[][] = plans.map(() => []);
    for (const d of plans) await run(d, 1); // compile
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < plans.length; i++) times[i].push(await run(plans[i], 3));
    }
    return times.map((t) => t.sort((x, y) => x - y)[Math.floor(t.length / 2)]);
  };
  const blocks: Record<string, TiledBlock> = {};
  const gflops: Record<string, Record<string, number>> = {};
  let texturesWin = 0;
  for (const layout of LAYOUTS) {
    const spec = (block: TiledBlock): MatmulSpec => ({
      label: "autotune",
      a,
      b,
      c,
      M: S,
      N: S,
      K: S,
      transA: layout[0] === "T",
      transB: layout[1] === "T",
      block,
    });
    const median = await medians(
      TUNE_CANDIDATES.map((block) => [planMatmul(gpu, { ...spec(block), version: "v4" })]),
    );
    gflops[layout] = {};
    TUNE_CANDIDATES.forEach((block, i) => gflops[layout][block.join("x")] = (2 * S ** 3) / median[i] / 1e6);
    const best = TUNE_CANDIDATES[median.indexOf(Math.min(...median))];
    blocks[layout] = best;
    // The best block again from buffers and from textures (its packs included), in turns.
    const [buffers, textures] = await medians([
      [planMatmul(gpu, { ...spec(best), version: "v4" })],
      planMatmulTextures(gpu, spec(best)),
    ]);
    gflops[layout][`v6 ${best.join("x")}`] = (2 * S ** 3) / textures / 1e6;
    if (textures < buffers) texturesWin++;
  }
  for (const t of [a, b, c]) t.buffer.destroy();
  const operands: KernelOperands = texturesWin >= 2 ? "textures" : "buffers";
  setTiledBlocks(blocks);
  setKernelOperands(operands);
  const entry = { adapter: gpu.adapterName, method: TUNE_METHOD, blocks, operands, gflops };
  writeCacheEntry(file, gpu.adapterName, entry);
  return { ...entry, fromCache: false };
}

/**
 * Adds one adapter's entry to the cache file, written whole to a temporary file and renamed into place: two
 * processes tuning at once never leave a torn file, and a reader sees the old file or the new one.
 */
export function writeCacheEntry(file: string, adapter: string, entry: Omit<TuneResult, "fromCache">): void {
  const temporary = `${file}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    Deno.mkdirSync(file.replace(/\/[^/]*$/, ""), { recursive: true });
    Deno.writeTextFileSync(temporary, JSON.stringify({ ...readCache(file), [adapter]: entry }, null, 1));
    Deno.renameSync(temporary, file);
  } catch (err) {
    try {
      Deno.removeSync(temporary);
    } catch { /* it was never written */ }
    console.error(`matmul autotune: could not write the cache ${file}: ${(err as Error).message}`);
  }
}
