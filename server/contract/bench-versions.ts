/**
 * Version labels of stored benchmark rows. Rows written before the versions were numbered hold the old
 * names (matmul "naive" … "tuned", the other families a bare "v1"); storedVersionLabel gives each its
 * current label, so the dashboard shows old and new rows of one version in one column. Imports data
 * only (the dashboard bundles it): the contract between stored bench rows and the page that shows them.
 */
import { type KernelFamily, knownVersionLabel } from "../../kernels/versions.ts";

/** The names of the stored rows that are not kernel versions, and the ceiling share (for the dashboard). */
export { CEILING_KERNEL, ceilingPercent, TRAIN_STEP_KERNEL } from "../../kernels/bench/report.ts";

/** Kernel-name prefixes of the benchmark's rows ("matmul NN", "lm cross-entropy fwd+bwd", …). */
const FAMILY_OF_KERNEL: [string, KernelFamily][] = [
  ["matmul", "matmul"],
  ["attention", "attention"],
  ["layernorm", "layernorm"],
  ["lm cross-entropy", "crossEntropy"],
  ["gelu", "gelu"],
  ["adamw", "adamw"],
  ["bias gradient", "biasGrad"],
  ["gradient norm", "gradNorm"],
];

/** Matmul's names before the numbering: the version and the detail kernel-table.ts now labels it with. */
const OLD_MATMUL_NAMES: Record<string, [string, string?]> = {
  naive: ["v1"],
  blocked: ["v2"],
  vec4: ["v3"],
  tiled16: ["v4", "16×16"],
  tiled24: ["v4", "24×24"],
  tuned: ["v4", "auto"],
};

/** The current label of a stored row's version; unknown kernels and labels pass through unchanged. */
export function storedVersionLabel(kernel: string, version: string): string {
  const family = FAMILY_OF_KERNEL.find(([prefix]) => kernel === prefix || kernel.startsWith(prefix + " "))
    ?.[1];
  if (!family) return version;
  const old = family === "matmul" && Object.hasOwn(OLD_MATMUL_NAMES, version)
    ? OLD_MATMUL_NAMES[version]
    : undefined;
  const [id, detail] = old ?? [version];
  return knownVersionLabel(family, id, detail) ?? version;
}
