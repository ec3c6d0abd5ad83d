/** Field schemas shared by the contract's request bodies. */
import { z } from "zod";

export const int = (label: string) =>
  z.number({ error: `${label} must be a number` }).int(`${label} must be an integer`);

export const SIZE_NAME = z.string().min(1, "size name must not be empty").max(64);
export const TASK_NAME = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
  "task name must be 1–64 letters, digits, '_', '-' or '.', starting with a letter or digit",
);
