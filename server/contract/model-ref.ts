/**
 * A model reference names a pretrained model wherever an experiment names its strong model: a ladder size
 * ("medium": the final model) or a snapshot kept along that size's pretraining ("medium@30": after 30 % of
 * its token budget). `SIZE@100` is the final model, the same as `SIZE`. Snapshots let an experiment plot
 * PGR against how much the strong model knows; only the strong side (student and ceiling) takes one.
 */
import { SIZE_NAME } from "./fields.ts";
import { didYouMean } from "../tasks/did-you-mean.ts";

/** Percentages of a size's token budget at which pretraining keeps a loadable snapshot (100: the final). */
export const KNOWLEDGE_CHECKPOINTS: readonly number[] = [10, 30, 100];

/** The final model's percentage: `SIZE@100` is `SIZE`. */
export const FINAL_PCT = 100;

export interface ModelRef {
  size: string;
  /** Percent of the size's pretraining budget; 100 is the final model. */
  pct: number;
}

const KEPT = KNOWLEDGE_CHECKPOINTS.join(", ");

/** The size a reference names, unchecked: "medium@30" → "medium", "medium" → "medium". */
export function refSize(ref: string): string {
  const at = ref.indexOf("@");
  return at < 0 ? ref : ref.slice(0, at);
}

/** "medium@30": the reference of a size's snapshot. */
export function snapshotRef(size: string, pct: number): string {
  return `${size}@${pct}`;
}

/** Why `ref` is not of the form SIZE or SIZE@PCT with a kept PCT, or null when it is. */
export function modelRefFormError(ref: string): string | null {
  const at = ref.indexOf("@");
  if (at < 0) return ref.length > 0 ? null : "size name must not be empty";
  const size = ref.slice(0, at);
  const pct = ref.slice(at + 1);
  const example = snapshotRef(size || "medium", KNOWLEDGE_CHECKPOINTS[1]);
  if (size.length === 0) return `"${ref}" names no size before "@"; write SIZE@PCT, e.g. ${example}`;
  if (!/^\d+$/.test(pct)) {
    return `"${ref}" needs a percentage after "@": one of ${KEPT} (e.g. ${example}), or just ${size}`;
  }
  if (!KNOWLEDGE_CHECKPOINTS.includes(Number(pct))) {
    return `"${ref}": pretraining keeps snapshots at ${KEPT} % of the token budget; use ` +
      KNOWLEDGE_CHECKPOINTS.map((p) => snapshotRef(size, p)).join(", ");
  }
  return null;
}

/** Why `ref` names no model of the ladder `sizes`, or null when it names one. */
export function modelRefError(sizes: readonly string[], ref: string): string | null {
  const formError = modelRefFormError(ref);
  if (formError) return formError;
  const size = refSize(ref);
  if (!sizes.includes(size)) {
    return `unknown size "${size}"${size === ref ? "" : ` in "${ref}"`}; sizes are: ${sizes.join(", ")}${
      didYouMean(size, sizes)
    }`;
  }
  return null;
}

/** "medium@30" → {size: "medium", pct: 30}; "medium" → pct 100. Throws naming the fix; `sizes` checks the size. */
export function parseModelRef(ref: string, sizes?: readonly string[]): ModelRef {
  const error = sizes ? modelRefError(sizes, ref) : modelRefFormError(ref);
  if (error) throw new Error(error);
  const at = ref.indexOf("@");
  return { size: refSize(ref), pct: at < 0 ? FINAL_PCT : Number(ref.slice(at + 1)) };
}

/** True when `ref` names a snapshot before the end of pretraining ("medium@30", not "medium@100"). */
export function isSnapshot(ref: string): boolean {
  return modelRefFormError(ref) === null && parseModelRef(ref).pct < FINAL_PCT;
}

/** What to do when a reference's snapshot is not on disk. */
export function missingSnapshotMessage(ref: string): string {
  return `${ref} has no snapshot: pretrain ${refSize(ref)} again (snapshots are kept at ${KEPT} %)`;
}

/** A request field naming a strong model: SIZE or SIZE@PCT (the ladder and the disk are checked later). */
export const MODEL_REF = SIZE_NAME.superRefine((ref, ctx) => {
  const error = modelRefFormError(ref);
  if (error) ctx.addIssue({ code: "custom", message: error });
});
