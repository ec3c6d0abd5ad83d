/**
 * matmul v6 (texture operands) against a float64 reference and bit for bit against v4 with the same
 * block: NN, NT and TN on ragged shapes (M and N off the block, K % 4 ≠ 0 for the tail), with a bias, an
 * alpha, and beta = 1 accumulating into a C at an offset inside a larger buffer with a row stride wider
 * than N; the GELU epilogue; the refusals (a batch, an operand wider than a texture); and a tiny GPT's
 * training steps (every head) with the engine's products and attention on textures (matmul v6, attention
 * v4), against the same on buffers.
 */
import assert from "node:assert/strict";
import { getGpu } from "../kernels/device.ts";
import { checked, createTensor, readTensor, slice, submit, type Tensor } from "../kernels/runtime.ts";
import { type MatmulSpec, planMatmul, type TiledBlock } from "../kernels/ops/matmul.ts";
import { planMatmulTextures, planProductSplitK } from "../kernels/ops/matmul-texture.ts";
import { type KernelOperands, kernelOperands, setKernelOperands } from "../kernels/ops/texture-operand.ts";
import { GptModel } from "../kernels/gpt.ts";
import { randoms } from "./helpers/kernel-check.ts";
import { B, cfg, lengths, randomBatch, T, testParameters } from "./helpers/tiny-gpt.ts";

interface Case {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  block?: TiledBlock;
  /** How many of the two operands are packed by a copy (row stride a multiple of 64 floats). */
  copies?: number;
}

const ALPHA = 0.5;

/** `data` at element `offset` of a larger buffer. */
function placed(
  gpu: Awaited<ReturnType<typeof getGpu>>,
  data: Float32Array,
  offset: number,
  label: string,
): Tensor {
  const t = slice(createTensor(gpu, offset + data.length, `${label} buffer`), offset, data.length, label);
  gpu.device.queue.writeBuffer(t.buffer, 4 * t.offset, data);
  return t;
}

/** A C buffer holding C0 at offset 8 with row stride ldc, and the spec of a product into it. */
function setUp(gpu: Awaited<ReturnType<typeof getGpu>>, c: Case) {
  const ldc = c.N + 6 + ((4 - ((c.N + 6) % 4)) % 4);
  // Operand row strides: the contiguous dimension rounded up to a multiple of 4 (v4's and v6's condition).
  const up4 = (x: number) => Math.ceil(x / 4) * 4;
  const lda = c.transA ? up4(c.M) : up4(c.K);
  const ldb = c.transB ? up4(c.K) : up4(c.N);
  const A = randoms((c.transA ? c.K : c.M) * lda, c.M + 7 * c.K, 0.5);
  const B = randoms((c.transB ? c.N : c.K) * ldb, c.N + 3 * c.K, 0.5);
  const bias = randoms(c.N, 99, 0.5);
  const C0 = randoms(c.M * ldc, 17, 0.5);
  const cTensor = (label: string): Tensor => {
    const whole = createTensor(gpu, 8 + C0.length, `${label} buffer`);
    const t = slice(whole, 8, C0.length, label);
    gpu.device.queue.writeBuffer(t.buffer, 4 * t.offset, C0);
    return t;
  };
  const spec = (label: string): MatmulSpec => ({
    label,
    a: placed(gpu, A, 4, "A"),
    b: createTensor(gpu, B.length, "B", B),
    bias: createTensor(gpu, bias.length, "bias", bias),
    c: cTensor(`${label} C`),
    M: c.M,
    N: c.N,
    K: c.K,
    transA: c.transA,
    transB: c.transB,
    lda,
    ldb,
    ldc,
    alpha: ALPHA,
    beta: 1,
    block: c.block,
  });
  const reference = () => {
    const out = Float64Array.from(C0);
    for (let m = 0; m < c.M; m++) {
      for (let n = 0; n < c.N; n++) {
        let acc = 0;
        for (let k = 0; k < c.K; k++) {
          acc += (c.transA ? A[k * lda + m] : A[m * lda + k]) * (c.transB ? B[n * ldb + k] : B[k * ldb + n]);
        }
        out[m * ldc + n] = ALPHA * acc + bias[n] + C0[m * ldc + n];
      }
    }
    return out;
  };
  return { spec, reference };
}

const CASES: Case[] = [
  { M: 37, N: 22, K: 30 },
  { M: 37, N: 22, K: 30, transB: true },
  { M: 22, N: 37, K: 30, transA: true },
  { M: 130, N: 70, K: 65, transB: true, block: [4, 8] },
  // Rows 256 bytes apart: copies instead of the pack launch (A at a 16-byte offset in its buffer).
  { M: 37, N: 64, K: 64, copies: 2 },
  { M: 64, N: 30, K: 64, transA: true, copies: 1 },
  { M: 40, N: 64, K: 128, transB: true, block: [4, 8], copies: 2 },
];

Deno.test("matmul v6 (texture operands): NN, NT, TN, packed or copied, match float64 and v4's bits", async () => {
  const gpu = await getGpu();
  for (const c of CASES) {
    const { spec, reference } = setUp(gpu, c);
    const v4 = spec("v4");
    const v6 = spec("v6");
    await checked(gpu, () => submit(gpu, [planMatmul(gpu, { ...v4, version: "v4" })]));
    const steps = planMatmulTextures(gpu, v6);
    assert.equal(steps.filter((d) => "copy" in d).length, c.copies ?? 0, `copies in ${JSON.stringify(c)}`);
    await checked(gpu, () => submit(gpu, steps));
    const [got4, got6] = [await readTensor(gpu, v4.c), await readTensor(gpu, v6.c)];
    const want = reference();
    const error = want.reduce((worst, w, i) => Math.max(worst, Math.abs(got6[i] - w)), 0);
    const name = `${c.transA ? "T" : "N"}${c.transB ? "T" : "N"} ${c.M}×${c.N}×${c.K}`;
    assert.ok(error < 1e-5 * c.K, `${name}: v6 off float64 by ${error}`);
    const differ = got6.findIndex((x, i) => !Object.is(x, got4[i]));
    assert.equal(differ, -1, `${name}: v6 ${got6[differ]} against v4 ${got4[differ]} at ${differ}`);
  }
});

Deno.test("matmul v6: the GELU epilogues give v4's bits (C and aux; gelu-grad's aux from a texture)", async () => {
  const gpu = await getGpu();
  // C's row stride 32, then 64: gelu-grad's aux is packed by a launch, then by a copy.
  for (const [N, kind] of [[24, "gelu"], [24, "gelu-grad"], [56, "gelu-grad"]] as const) {
    const c: Case = { M: 33, N, K: 20 };
    const { spec } = setUp(gpu, c);
    const pre = randoms(c.M * (c.N + 6 + 2), 5, 1.5);
    const runs: Float32Array[][] = [];
    for (const version of ["v4", "v6"] as const) {
      const aux = createTensor(gpu, pre.length, `${version} aux`, pre);
      const s = { ...spec(version), epilogue: { kind, aux } };
      const dispatches = version === "v4"
        ? [planMatmul(gpu, { ...s, version: "v4" })]
        : planMatmulTextures(gpu, s);
      if (version === "v6") {
        const aux = dispatches.find((d) => d.label.endsWith("(pack aux)"));
        assert.equal(aux === undefined, kind === "gelu", `${kind} N ${N}: a pack of aux for gelu-grad only`);
        if (aux) {
          assert.equal("copy" in aux, N === 56, `${kind} N ${N}: aux copied where rows are 256 bytes apart`);
        }
      }
      await checked(gpu, () => submit(gpu, dispatches));
      runs.push([await readTensor(gpu, s.c), await readTensor(gpu, aux)]);
    }
    for (const part of [0, 1]) {
      const [v4, v6] = [runs[0][part], runs[1][part]];
      const differ = v6.findIndex((x, i) => !Object.is(x, v4[i]));
      assert.equal(differ, -1, `${kind} ${part ? "aux" : "C"}: v6 ${v6[differ]} against v4 ${v4[differ]}`);
    }
  }
});

Deno.test("matmul v6: a batch, a version or an operand wider than a texture is refused, naming it", async () => {
  const gpu = await getGpu();
  const { spec } = setUp(gpu, { M: 8, N: 8, K: 8 });
  assert.throws(() => planMatmulTextures(gpu, { ...spec("batched"), batch: 2 }), /v6 .*batch 1/);
  assert.throws(() => planMatmulTextures(gpu, { ...spec("versioned"), version: "v4" }), /no version/);
  assert.throws(() => planMatmul(gpu, { ...spec("direct"), version: "v6" }), /planMatmulTextures/);
  const max = gpu.device.limits.maxTextureDimension2D;
  const K = 4 * (max + 1);
  const wide = {
    ...spec("wide"),
    K,
    lda: K,
    ldb: 8,
    a: createTensor(gpu, 8 * K, "wide A"),
    b: createTensor(gpu, 8 * K, "tall B"),
  };
  assert.throws(() => planMatmulTextures(gpu, wide), /A needs .*maxTextureDimension2D .*use v4/);
});

Deno.test("a GPT's steps with texture operands (matmul v6, attention v4, bias gradient v3, layernorm v4) give the parameters of buffers, bit for bit", async () => {
  const gpu = await getGpu();
  const flat = testParameters(5);
  const { tokens, classTargets } = randomBatch(11);
  const pairTargets = Float32Array.from([0.3, 0.7, 0.5, 0.5]);
  const trained = async (operands: KernelOperands) => {
    const before = kernelOperands();
    setKernelOperands(operands);
    const model = new GptModel(gpu, cfg, flat, { batchSize: B, seqLen: T });
    try {
      for (const head of ["lm", "lm", "cls", "reward"] as const) {
        model.setBatch(
          head === "reward" ? { tokens, lengths, pairTargets } : { tokens, lengths, classTargets },
        );
        model.trainStep(head);
      }
      await model.readStats();
      const labels = model.dispatches("lm").map((d) => d.label);
      const packs = labels.filter((l) => l.endsWith("(pack A)")).length;
      const attention = labels.filter((l) => l.endsWith("(pack qkv)") || l.endsWith("(pack dout)")).length;
      const biases = labels.filter((l) => l.endsWith(".bias (pack dy)")).length;
      const layernorms = labels.filter((l) => /^(h\.\d+\.ln_[12]|ln_f)\b.*\(pack /.test(l)).length;
      return { params: await model.readParams(), packs, attention, biases, layernorms };
    } finally {
      setKernelOperands(before);
      model.destroy();
    }
  };
  const buffers = await trained("buffers");
  const textures = await trained("textures");
  // Every product of the trunk (4 forward, 4 backward, 4 weight gradients a layer; none is split-K at these
  // shapes) and the LM head's 3 read textures.
  assert.equal(buffers.packs, 0);
  assert.equal(textures.packs, 12 * cfg.layers + 3, "products that read textures");
  // Attention v4 a layer: qkv for the forward, qkv and dout for the backward.
  assert.equal(buffers.attention, 0);
  assert.equal(textures.attention, 3 * cfg.layers, "attention operands in textures");
  // Bias gradient v3 for the four linear layers of a block.
  assert.equal(buffers.biases, 0);
  assert.equal(textures.biases, 4 * cfg.layers, "bias gradients from textures");
  // Layernorm v4: forward x for the first ln_1, stream and branch for each fused one (ln_1 after the first
  // block, ln_2, ln_f); backward dy and x for each of the 2 · layers + 1.
  assert.equal(buffers.layernorms, 0);
  const lns = 2 * cfg.layers + 1;
  assert.equal(textures.layernorms, 1 + 2 * (lns - 1) + 2 * lns, "layernorm operands in textures");
  const differ = textures.params.findIndex((x, i) => !Object.is(x, buffers.params[i]));
  assert.equal(
    differ,
    -1,
    `parameter ${differ}: ${textures.params[differ]} against ${buffers.params[differ]}`,
  );
});

Deno.test("split-K on textures: each slice a v6 product, then v5's sum, gives v5's bits", async () => {
  const gpu = await getGpu();
  for (
    const c of [{ M: 12, N: 20, K: 72, transA: true }, { M: 20, N: 12, K: 48 }, {
      M: 20,
      N: 12,
      K: 48,
      transB: true,
    }]
  ) {
    const { spec } = setUp(gpu, c);
    const runs: Float32Array[] = [];
    for (const operands of ["buffers", "textures"] as const) {
      const s = { ...spec(operands), bias: undefined, splits: 3 };
      const before = kernelOperands();
      setKernelOperands(operands);
      try {
        const dispatches = planProductSplitK(gpu, s);
        assert.equal(dispatches.some((d) => d.label.endsWith("(pack A)")), operands === "textures");
        await checked(gpu, () => submit(gpu, dispatches));
      } finally {
        setKernelOperands(before);
      }
      runs.push(await readTensor(gpu, s.c));
    }
    const differ = runs[1].findIndex((x, i) => !Object.is(x, runs[0][i]));
    assert.equal(
      differ,
      -1,
      `${JSON.stringify(c)}: textures ${runs[1][differ]} against v5 ${runs[0][differ]}`,
    );
  }
});
