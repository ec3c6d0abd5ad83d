/**
 * The engine's `stats` tensor: one step's scalars at fixed slots, written on the device and read only
 * when asked (GptModel.readStats). The model zero-fills the step slots (those before STAT_SKIPPED) at
 * the start of every program; the kernels only ever SET the non-finite flag (never clear it) and
 * overwrite their own slots; the last two slots carry across steps until the next read.
 *
 *   loss          mean loss of the step (cross-entropy)
 *   count         valid targets: LM positions or classified rows (cross-entropy)
 *   grad norm²    squared global gradient norm (gradient norm)
 *   non-finite    1 when the loss or a gradient was NaN/Inf (cross-entropy, gradient norm); AdamW skips
 *   correct       rows whose argmax matches the target's (class cross-entropy)
 *   skipped       sticky count of skipped updates since the last read (stats carry)
 *   steps         steps since the last read (stats carry)
 */

export const STAT_LOSS = 0;
export const STAT_COUNT = 1;
export const STAT_GRAD_NORM_SQ = 2;
export const STAT_NONFINITE = 3;
export const STAT_CORRECT = 4;
export const STAT_SKIPPED = 5;
export const STAT_STEPS = 6;
/** Length of the stats tensor (slot 7 is unused). */
export const STATS_LENGTH = 8;

/** The slots as WGSL module constants (`STAT_LOSS` … as u32), for kernels that index stats by name. */
export const STATS_WGSL = Object.entries({
  STAT_LOSS,
  STAT_COUNT,
  STAT_GRAD_NORM_SQ,
  STAT_NONFINITE,
  STAT_CORRECT,
  STAT_SKIPPED,
  STAT_STEPS,
}).map(([name, slot]) => `const ${name} = ${slot}u;`).join("\n") + "\n";
