/**
 * matmul v6 (texture operands): v4's kernel (the same register block, the same sums in the same order,
 * so the same bits) reading A and B from `rgba32float` textures instead of storage buffers
 * (texture-operand.ts: why, and how an operand is packed). A product is three steps: pack A, pack B, the
 * product; each operand's contiguous dimension lies along x (A along k for NN and NT, along m for TN; B
 * along n for NN and TN, along k for NT). The packs read each operand once; the product reads it M/TM or
 * N/TN times. On an AVX2 EPYC (Zen 3) v4 ran a 2048 × 128 · 128 × 512 product at 3.2 GFLOP/s and the same
 * block from textures at 10.9; on an AVX-512 EPYC 1.0–1.2× (README, "Where llvmpipe's ceiling is").
 *
 * Batch 1 only, operands whose rows start 4-aligned (v4's condition), and each operand's texture within
 * the device's maxTextureDimension2D (columns / 4 wide, rows high); planMatmulTextures refuses others, and
 * planProduct plans v4 for them. The textures ("A", "B", "aux") are pooled (texture-operand.ts).
 */
import type { Gpu } from "../device.ts";
import { type Dispatch, slice, type Tensor } from "../runtime.ts";
import { kernelOperands, packTexture, type TextureOperand, textureUnfit } from "./texture-operand.ts";
import { type MatmulSpec, planMatmul, planMatmulSplitK, planSplitKSum, splitKLayout } from "./matmul.ts";

/**
 * v6 (see the header): pack A, pack B, then the product, as three steps to run in that order (launches
 * may share a pass; a copy runs between passes). Takes everything planMatmul does but batches and a version.
 */
export function planMatmulTextures(gpu: Gpu, s: MatmulSpec): Dispatch[] {
  const why = whyNotTextures(gpu, s);
  if (why) throw new Error(`${s.label}: matmul v6 (texture operands) ${why}`);
  const [a, b] = operands(s);
  const A = packTexture(gpu, `${s.label} (pack A)`, "A", a, "matmul");
  const B = packTexture(gpu, `${s.label} (pack B)`, "B", b, "matmul");
  // gelu-grad's aux (M × N in C's layout) from a texture too where C's vec4 stores let the epilogue read
  // it by texel: the same values, so the same bits.
  const auxOperand = s.epilogue?.kind === "gelu-grad"
    ? { tensor: s.epilogue.aux, rows: s.M, cols: s.N, ld: s.ldc ?? s.N }
    : undefined;
  const packAux = auxOperand && s.N % 4 === 0 && s.c.offset % 4 === 0 && !textureUnfit(gpu, auxOperand);
  const AUX = packAux ? packTexture(gpu, `${s.label} (pack aux)`, "aux", auxOperand, "matmul") : undefined;
  const views = { a: A.view, b: B.view, aux: AUX?.view };
  const product = planMatmul(gpu, { ...s, lda: a.ld, ldb: b.ld, version: "v6" }, views);
  return [A.dispatch, B.dispatch, ...(AUX ? [AUX.dispatch] : []), product];
}

/** A and B as the product reads them. */
function operands(s: MatmulSpec): [TextureOperand, TextureOperand] {
  const { M, N, K } = s;
  const transA = s.transA ?? false;
  const transB = s.transB ?? false;
  return [
    { tensor: s.a, ...(transA ? { rows: K, cols: M } : { rows: M, cols: K }), ld: s.lda ?? (transA ? M : K) },
    { tensor: s.b, ...(transB ? { rows: N, cols: K } : { rows: K, cols: N }), ld: s.ldb ?? (transB ? K : N) },
  ];
}

/** Why v6 cannot plan this product, or undefined when it can. */
function whyNotTextures(gpu: Gpu, s: MatmulSpec): string | undefined {
  if ((s.batch ?? 1) !== 1 || (s.batchSplit ?? 1) !== 1 || s.version) return "takes batch 1 and no version";
  const [a, b] = operands(s);
  const whyA = textureUnfit(gpu, a);
  if (whyA) return `A ${whyA}; use v4`;
  const whyB = textureUnfit(gpu, b);
  return whyB && `B ${whyB}; use v4`;
}

/**
 * One product of the model: v6's three launches where textures are preferred and the product allows them
 * (batch 1, no version asked for, 4-aligned rows, within the texture limits), else planMatmul's one. Both
 * give the same bits, so the choice changes speed only.
 */
export function planProduct(gpu: Gpu, s: MatmulSpec): Dispatch[] {
  if (kernelOperands() === "textures" && whyNotTextures(gpu, s) === undefined) {
    return planMatmulTextures(gpu, s);
  }
  return [planMatmul(gpu, s)];
}

/**
 * A split-K product (v5) of the model: where textures are preferred, each slice of K is its own v6
 * product into the scratch (slice z's rows of A and B, the sums v5's batched v4 makes), then v5's sum, so
 * the same bits as planMatmulSplitK, which plans it otherwise.
 */
export function planProductSplitK(
  gpu: Gpu,
  s: MatmulSpec & { splits: number; scratch?: Tensor },
): Dispatch[] {
  if (kernelOperands() !== "textures") return planMatmulSplitK(gpu, s);
  const { lda, ldb, scratch, slice: length } = splitKLayout(gpu, s);
  const slices = [...Array(s.splits).keys()].map((z): MatmulSpec => {
    // Slice z of K: rows z · length … of A (TN) or B (NN), or the same columns where the operand is along k.
    const aStart = z * length * (s.transA ? lda : 1);
    const bStart = z * length * (s.transB ? 1 : ldb);
    return {
      label: `${s.label} (slice ${z})`,
      a: slice(s.a, aStart, s.a.length - aStart),
      b: slice(s.b, bStart, s.b.length - bStart),
      c: slice(scratch, z * s.M * s.N, s.M * s.N),
      M: s.M,
      N: s.N,
      K: length,
      transA: s.transA,
      transB: s.transB,
      lda,
      ldb,
    };
  });
  if (slices.some((p) => whyNotTextures(gpu, p) !== undefined)) return planMatmulSplitK(gpu, s);
  return [...slices.flatMap((p) => planMatmulTextures(gpu, p)), planSplitKSum(gpu, s, scratch)];
}
