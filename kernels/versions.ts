/**
 * The versions of every kernel family, numbered v1…vN in the order they were written, one line each
 * (each family's header in kernels/ops/ describes them in full). A newer version does not delete the
 * older ones: options select them and the benchmark times them side by side, so every speed-up stays
 * visible. Data only, no imports: the dashboard reads the labels too.
 */
export const KERNEL_VERSIONS = {
  matmul: { v1: "naive", v2: "blocked", v3: "vec4", v4: "tiled", v5: "split-K", v6: "texture operands" },
  attention: { v1: "per row", v2: "batched matmuls", v3: "flash", v4: "flash, texture operands" },
  layernorm: {
    v1: "workgroup per row",
    v2: "invocation per row",
    v3: "vec4 rows",
    v4: "vec4 rows, texture operands",
  },
  crossEntropy: { v1: "workgroup per row", v2: "invocation per row", v3: "vec4 rows" },
  gelu: { v1: "elementwise" },
  adamw: { v1: "elementwise", v2: "vec4" },
  gradNorm: { v1: "scalar", v2: "vec4" },
  biasGrad: { v1: "ones-vector product", v2: "vec4 column sums", v3: "column sums, texture operand" },
} as const;

export type KernelFamily = keyof typeof KERNEL_VERSIONS;
export type KernelVersion<F extends KernelFamily> = keyof (typeof KERNEL_VERSIONS)[F] & string;

/** "v4 (tiled 16×16)": the version, its description, and what tells apart several rows of one version. */
export function versionLabel<F extends KernelFamily>(
  family: F,
  version: KernelVersion<F>,
  detail?: string,
): string {
  return knownVersionLabel(family, version, detail)!;
}

/** versionLabel of a version name read from elsewhere (stored rows); undefined if the family has none such. */
export function knownVersionLabel(
  family: KernelFamily,
  version: string,
  detail?: string,
): string | undefined {
  const versions: Record<string, string> = KERNEL_VERSIONS[family];
  if (!Object.hasOwn(versions, version)) return undefined;
  return `${version} (${versions[version]}${detail ? " " + detail : ""})`;
}
