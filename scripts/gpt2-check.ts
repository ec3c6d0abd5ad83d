/**
 * The engine's LM loss and gradients against PyTorch float32 and float64 at any GPT-2 shape, up to
 * 124M (vocabulary 50257, context 1024, width 768, 12 layers, 12 heads). The weights are
 * initParameters(cfg, seed); the batch is B full rows of random ids in [0, V) (or --tokens pattern:
 * kernels/bench/training.ts benchBatch). Torch (scripts/torch-lm-check.py, Debian's /usr/bin/python3
 * with python3-torch) reads the same flat buffer; the table gives each figure and its error against
 * float64.
 *
 *   deno run -A scripts/gpt2-check.ts [--vocab 256] [--context 64] [--width 64] [--layers 2]
 *     [--heads 2] [--batch 1] [--seed 1] [--tokens random|pattern] [--forward-only] [--python PATH]
 *
 * On an adapter whose storage bindings are smaller than a tensor, the engine plans windows
 * (LAB_MAX_BINDING_BYTES forces a smaller limit).
 */
import { type GptConfig, initParameters, paramLayout } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { GptModel } from "../kernels/gpt.ts";
import { mulberry32 } from "../kernels/random.ts";
import { benchBatch } from "../kernels/bench/training.ts";
import { parseFlags } from "../server/contract/command-flags.ts";

/** The figures one side computed: loss, global gradient norm and per parameter the gradient norm. */
interface LmFigures {
  loss: number;
  gradNorm?: number;
  gradNorms?: Record<string, number>;
}

/** Gradients shown by name besides the global norm: the tied embedding, first and last layers. */
function namedGradients(cfg: GptConfig): string[] {
  const last = cfg.layers - 1;
  return [
    "wte.weight",
    "wpe.weight",
    "h.0.attn.c_attn.weight",
    "h.0.mlp.c_fc.weight",
    `h.${last}.attn.c_proj.weight`,
    `h.${last}.mlp.c_proj.weight`,
    "ln_f.weight",
    "ln_f.bias",
  ];
}

function batchTokens(kind: string, B: number, T: number, V: number, seed: number): Int32Array {
  if (kind === "pattern") return benchBatch(B, T, V).tokens;
  if (kind !== "random") throw new Error(`--tokens must be random or pattern, got ${kind}`);
  const uniform = mulberry32(seed + 1000);
  return Int32Array.from({ length: B * T }, () => Math.floor(uniform() * V));
}

async function engineFigures(
  cfg: GptConfig,
  params: Float32Array,
  tokens: Int32Array,
  B: number,
  forwardOnly: boolean,
): Promise<LmFigures> {
  const T = cfg.contextLength;
  const model = new GptModel(await getGpu(), cfg, params, { batchSize: B, seqLen: T });
  try {
    model.setBatch({ tokens, lengths: new Int32Array(B).fill(T) });
    if (forwardOnly) {
      model.evalStep("lm");
      return { loss: (await model.readStats()).loss };
    }
    model.setOptimizer({ lr: 0 });
    model.trainStep("lm");
    const stats = await model.readStats();
    const grads = await model.readGrads();
    const gradNorms: Record<string, number> = {};
    for (const spec of paramLayout(cfg).specs) {
      let sq = 0;
      for (let i = spec.offset; i < spec.offset + spec.size; i++) sq += grads[i] * grads[i];
      gradNorms[spec.name] = Math.sqrt(sq);
    }
    return { loss: stats.loss, gradNorm: stats.gradNorm, gradNorms };
  } finally {
    model.destroy();
  }
}

async function torchFigures(
  python: string,
  dir: string,
  forwardOnly: boolean,
): Promise<{ float32: LmFigures; float64: LmFigures }> {
  const args = ["scripts/torch-lm-check.py", dir, ...(forwardOnly ? ["--forward-only"] : [])];
  const out = await new Deno.Command(python, { args, stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${python} scripts/torch-lm-check.py failed (exit ${out.code})`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

function row(name: string, ours?: number, f32?: number, f64?: number): string {
  const rel = (x?: number) =>
    x === undefined || f64 === undefined ? "" : (Math.abs(x - f64) / Math.abs(f64)).toExponential(1);
  const fmt = (x?: number) => x === undefined ? "" : x.toPrecision(7);
  return [name.padEnd(26), fmt(ours).padStart(14), fmt(f32).padStart(14), fmt(f64).padStart(14)]
    .concat([rel(ours).padStart(9), rel(f32).padStart(9)]).join(" ");
}

async function main(args: string[]): Promise<void> {
  const num = { type: "string" } as const;
  const { values } = parseFlags(args, {
    vocab: num,
    context: num,
    width: num,
    layers: num,
    heads: num,
    batch: num,
    seed: num,
    tokens: num,
    python: num,
    "forward-only": { type: "boolean" },
  });
  const int = (v: string | undefined, fallback: number) => v === undefined ? fallback : Number(v);
  const cfg: GptConfig = {
    vocabSize: int(values.vocab, 256),
    contextLength: int(values.context, 64),
    width: int(values.width, 64),
    layers: int(values.layers, 2),
    heads: int(values.heads, 2),
  };
  const B = int(values.batch, 1), seed = int(values.seed, 1);
  const forwardOnly = values["forward-only"] ?? false;
  const tokenKind = values.tokens ?? "random";
  const params = initParameters(cfg, seed);
  const tokens = batchTokens(tokenKind, B, cfg.contextLength, cfg.vocabSize, seed);

  const dir = await Deno.makeTempDir({ prefix: "gpt2-check-" });
  const specs = paramLayout(cfg).specs;
  await Deno.writeTextFile(
    `${dir}/layout.json`,
    JSON.stringify({ config: cfg, specs, B, T: cfg.contextLength }),
  );
  await Deno.writeFile(`${dir}/params.f32`, new Uint8Array(params.buffer));
  await Deno.writeFile(`${dir}/tokens.i32`, new Uint8Array(tokens.buffer));

  let start = performance.now();
  const ours = await engineFigures(cfg, params, tokens, B, forwardOnly);
  const oursS = (performance.now() - start) / 1000;
  start = performance.now();
  const torch = await torchFigures(values.python ?? "/usr/bin/python3", dir, forwardOnly);
  const torchS = (performance.now() - start) / 1000;
  await Deno.remove(dir, { recursive: true });

  const { vocabSize: V, contextLength: T, width: C, layers: L, heads: H } = cfg;
  console.log(`V ${V} T ${T} C ${C} L ${L} H ${H}, batch ${B}×${T}, tokens ${tokenKind}, seed ${seed}`);
  console.log(
    `engine ${oursS.toFixed(1)} s, torch f32+f64 ${torchS.toFixed(1)} s; ln V = ${Math.log(V).toFixed(4)}`,
  );
  const heads = ["ours", "torch f32", "torch f64"].map((h) => h.padStart(14));
  console.log(["".padEnd(26), ...heads, ...["ours rel", "f32 rel"].map((h) => h.padStart(9))].join(" "));
  const { float32: f32, float64: f64 } = torch;
  console.log(row("lm loss", ours.loss, f32.loss, f64.loss));
  if (!forwardOnly) {
    console.log(row("grad norm", ours.gradNorm, f32.gradNorm, f64.gradNorm));
    for (const name of namedGradients(cfg)) {
      console.log(row(`  ${name}`, ours.gradNorms![name], f32.gradNorms![name], f64.gradNorms![name]));
    }
    let worst = { name: "", rel: 0 };
    for (const name of Object.keys(f64.gradNorms!)) {
      const want = f64.gradNorms![name];
      if (want === 0) continue;
      const rel = Math.abs(ours.gradNorms![name] - want) / want;
      if (rel > worst.rel) worst = { name, rel };
    }
    console.log(
      `worst per-parameter gradient norm (ours vs f64): ${worst.name} rel ${worst.rel.toExponential(1)}`,
    );
  }
}

if (import.meta.main) await main(Deno.args);
