/** The names of the weak-to-strong methods and student modes (their science: server/lab/methods.ts). */
import { z } from "zod";

export const METHOD_NAMES = ["naive", "auxconf", "bootstrap", "generative"] as const;
export type MethodName = typeof METHOD_NAMES[number];
export const Method = z.enum(METHOD_NAMES, { error: `method must be one of: ${METHOD_NAMES.join(", ")}` });

/** How student and ceiling learn: the whole model, or a logistic probe on frozen last-layer features. */
export const STUDENT_MODES = ["finetune", "probe"] as const;
export type StudentMode = typeof STUDENT_MODES[number];
export const StudentMode = z.enum(STUDENT_MODES, {
  error: `studentMode must be one of: ${STUDENT_MODES.join(", ")}`,
});

/** The loss the generative method finetunes with after its LM finetuning. */
export const GENERATIVE_BASES = ["naive", "auxconf"] as const;
export type GenerativeBase = typeof GENERATIVE_BASES[number];
export const GenerativeBase = z.enum(GENERATIVE_BASES, {
  error: `generativeBase must be one of: ${GENERATIVE_BASES.join(", ")}`,
});
