/**
 * Storage bindings for kernels whose tensors may share a buffer.
 *
 * WebGPU forbids binding one buffer twice in a dispatch when one of the bindings is writable, and the
 * model keeps all parameters in one flat buffer and all gradients in another. So every tensor that
 * shares a buffer with a written tensor is reached through ONE binding: a window covering all of
 * them, with each tensor's element offset inside that window. Read-only tensors that share no buffer
 * with a written one get a binding each (read-only double binding is legal).
 *
 * The kernel's WGSL is generated from the result: `declarations` declares the arrays from @binding(1)
 * in order, `array[name]` is the WGSL array through which tensor `name` is reached and
 * `offset[name]` the value the kernel's `params.<name>_off` must hold.
 */
import type { Gpu } from "../device.ts";
import type { Tensor } from "../runtime.ts";

export interface Operand {
  /** Short WGSL-safe name (also the prefix of its `_off` parameter). */
  name: string;
  tensor: Tensor;
  write?: boolean;
  /**
   * Element type; integer inputs (token ids, targets, lengths) are i32. Default f32. vec4f reads the
   * f32 tensor 4 elements at a time: its offset must be a multiple of 4, and `_off` counts vec4s.
   */
  type?: "f32" | "i32" | "vec4f";
}

export interface BoundOperands {
  declarations: string;
  array: Record<string, string>;
  offset: Record<string, number>;
  bindings: GPUBufferBinding[];
}

export function bindOperands(gpu: Gpu, label: string, operands: Operand[]): BoundOperands {
  const groups: Operand[][] = [];
  const written = new Set(operands.filter((o) => o.write).map((o) => o.tensor.buffer));
  for (const op of operands) {
    const shared = written.has(op.tensor.buffer)
      ? groups.find((g) => g[0].tensor.buffer === op.tensor.buffer)
      : undefined;
    if (shared) shared.push(op);
    else groups.push([op]);
  }
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const result: BoundOperands = { declarations: "", array: {}, offset: {}, bindings: [] };
  groups.forEach((group, index) => {
    const type = group[0].type ?? "f32";
    const wgslType = type === "vec4f" ? "vec4<f32>" : type;
    const mixed = group.find((o) => (o.type ?? "f32") !== type);
    if (mixed) {
      throw new Error(
        `${label}: tensors ${group[0].tensor.label} (${type}) and ${mixed.tensor.label} (${
          mixed.type ?? "f32"
        }) ` +
          `share a buffer that is written; keep integer tensors in their own buffer`,
      );
    }
    const buffer = group[0].tensor.buffer;
    const first = Math.min(...group.map((o) => o.tensor.offset));
    const end = Math.max(...group.map((o) => o.tensor.offset + Math.max(1, o.tensor.length)));
    const startByte = Math.floor((first * 4) / align) * align;
    const endByte = Math.min(buffer.size, Math.ceil((end * 4) / 16) * 16);
    const size = endByte - startByte;
    if (size > gpu.limits.maxStorageBufferBindingSize) {
      throw new Error(
        `${label}: tensors ${
          group.map((o) => o.tensor.label).join(", ")
        } span ${size} bytes of one buffer, ` +
          `more than this adapter's maxStorageBufferBindingSize (${gpu.limits.maxStorageBufferBindingSize})`,
      );
    }
    const name = `buf${index + 1}`;
    const access = group.some((o) => o.write) ? "read_write" : "read";
    result.declarations += `@group(0) @binding(${
      index + 1
    }) var<storage, ${access}> ${name}: array<${wgslType}>;\n`;
    result.bindings.push({ buffer, offset: startByte, size });
    for (const op of group) {
      const offset = op.tensor.offset - startByte / 4;
      if (type === "vec4f" && offset % 4 !== 0) {
        throw new Error(
          `${label}: ${op.tensor.label} starts at element ${op.tensor.offset}, not a multiple of 4 (vec4)`,
        );
      }
      result.array[op.name] = name;
      result.offset[op.name] = type === "vec4f" ? offset / 4 : offset;
    }
  });
  return result;
}

/**
 * Why a vec4 kernel cannot read these element offsets ("" when every one is a multiple of 4), naming the
 * first that is not: the check before choosing a vec4 version, where bindOperands would refuse the binding.
 */
export function vec4Misfit(offsets: [name: string, offset: number][]): string {
  const off = offsets.find(([, o]) => o % 4 !== 0);
  return off ? `${off[0]} starts at element ${off[1]}, not a multiple of 4` : "";
}

/**
 * The version a vec4 kernel family runs: the caller's, where `vec4` is asked for and cannot apply refused
 * with the reason (`kernel` names it, e.g. "AdamW v2 (vec4)"); unasked, `vec4` where it applies, else
 * `otherwise`.
 */
export function vec4Version<V extends string>(
  label: string,
  kernel: string,
  asked: V | undefined,
  vec4: V,
  misfit: string,
  otherwise: V,
): V {
  if (asked === vec4 && misfit) throw new Error(`${label}: ${kernel} does not apply: ${misfit}`);
  return asked ?? (misfit ? otherwise : vec4);
}

/** Parameter values `<name>_off` for every operand. */
export function offsetParams(bound: BoundOperands): Record<string, number> {
  const params: Record<string, number> = {};
  for (const [name, offset] of Object.entries(bound.offset)) params[`${name}_off`] = offset;
  return params;
}

/** Throws a named error when a tensor is shorter than a kernel needs. */
export function requireLength(
  label: string,
  t: Pick<Tensor, "length" | "label">,
  needed: number,
  what: string,
): void {
  if (t.length < needed) {
    throw new Error(`${label}: ${what} ${t.label} has ${t.length} elements, needs ${needed}`);
  }
}

/** Throws a named error unless `value` is a positive integer (a shape). */
export function requireShape(label: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${label}: ${name} must be a positive integer, got ${value}`);
  }
}

/** WGSL helpers shared by several families. */
export const WGSL_COMMON = /* wgsl */ `
fn is_nonfinite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u; }
// Through a variable: Tint (Chromium, Dawn) rejects a NaN that is a constant expression.
fn nan_f32() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}
`;
