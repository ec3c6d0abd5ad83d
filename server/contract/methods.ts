/** The names of the weak-to-strong methods and student modes (their science: server/lab/methods.ts). */
import { oneOf } from "./fields.ts";

export const METHOD_NAMES = ["naive", "auxconf", "bootstrap", "generative"] as const;
export type MethodName = typeof METHOD_NAMES[number];
export const Method = oneOf("method", METHOD_NAMES);

/** How student and ceiling learn: the whole model, or a logistic probe on frozen last-layer features. */
export const STUDENT_MODES = ["finetune", "probe"] as const;
export type StudentMode = typeof STUDENT_MODES[number];
export const StudentMode = oneOf("studentMode", STUDENT_MODES);

/** The loss the generative method finetunes with after its LM finetuning. */
export const GENERATIVE_BASES = ["naive", "auxconf"] as const;
export type GenerativeBase = typeof GENERATIVE_BASES[number];
export const GenerativeBase = oneOf("generativeBase", GENERATIVE_BASES);
