/**
 * The gradient of a linear layer's bias, db += Σ over rows of dy (rows × width, packed): the column
 * sums of dy, added to what db holds (the model accumulates gradients).
 *
 * v1: the product onesᵀ · dy through matmul (M = 1, K = rows); planMatmul runs it on its v3, whose
 *     4 × 16 block computes the one row four times over (three clamped copies) and stores it element
 *     by element.
 * v2: sixteen columns an invocation, dy read as vec4s, 8 invocations a workgroup (one SIMD vector on
 *     llvmpipe, where every storage access is a loop over the lanes whatever its width). Each column
 *     adds the rows in order 0 … rows − 1, four rows an iteration (10–20 % faster on llvmpipe than one,
 *     and its loop stays under llvmpipe's 65,535 iterations up to 262,140 rows), then db. That is v1's
 *     arithmetic exactly: its sum acc = fma(1, dy, acc) is acc + dy (1 · dy is exact), and its store
 *     alpha · acc + beta · db with alpha = beta = 1 is acc + db, so v2 gives v1's bits. It needs the
 *     width and both offsets to be multiples of 4.
 * v3: v2 reading dy from a texture packed first (texture-operand.ts), the same sums in the same order, so
 *     v2's bits; on llvmpipe a texel fetch is not the per-lane loop a storage load is. Two steps: the pack
 *     and the launch.
 * The default is v3 where the engine reads texture operands (setKernelOperands) and dy fits a texture,
 * else v2 where it applies, else v1.
 */
import type { Gpu } from "../device.ts";
import { type Dispatch, plan, type Tensor } from "../runtime.ts";
import type { KernelVersion } from "../versions.ts";
import { planMatmul } from "./matmul.ts";
import { packTexture, textureUnfit, textureVersion, withTextureBindings } from "./texture-operand.ts";
import {
  bindOperands,
  offsetParams,
  requireLength,
  requireShape,
  vec4Misfit,
  vec4Version,
} from "./operands.ts";

export type BiasGradVersion = KernelVersion<"biasGrad">;

export interface BiasGradSpec {
  label: string;
  /** The output gradient, rows × width, packed. */
  dy: Tensor;
  /** The bias gradient (width), accumulated into. */
  db: Tensor;
  rows: number;
  width: number;
  /** At least `rows` ones: v1's left operand. */
  ones: Tensor;
  version?: BiasGradVersion;
}

/**
 * v2's shape: VEC4S vec4 columns an invocation (16 columns: with one or two, llvmpipe's loop overhead an
 * iteration outweighed the loads, up to 2× slower) and WG invocations a workgroup (one SIMD vector there).
 */
const VEC4S = 4;
const WG = 8;

/** Why v2 cannot run on these shapes ("" when it can). */
function biasGradV2Misfit(s: Pick<BiasGradSpec, "dy" | "db" | "width">): string {
  if (s.width % 4 !== 0) return `width ${s.width} is not a multiple of 4`;
  return vec4Misfit([[s.dy.label, s.dy.offset], [s.db.label, s.db.offset]]);
}

/** v2's kernel; `load(row, column)` reads the vec4 at a row (expression) and vec4 column of dy. */
function v2Source(declarations: string, load: (row: string, column: string) => string, db: string): string {
  const J = [...Array(VEC4S).keys()];
  return /* wgsl */ `
struct Params { rows: u32, columns: u32, dy_off: u32, db_off: u32 }
@group(0) @binding(0) var<uniform> params: Params;
${declarations}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let first = gid.x * ${VEC4S}u;
  if (first >= params.columns) { return; }
  ${J.map((j) => `let c${j} = min(first + ${j}u, params.columns - 1u); var s${j} = vec4(0.0);`).join("\n  ")}
  // Four rows an iteration, added in order, then the last rows one at a time.
  var n = 0u;
  for (; n + 4u <= params.rows; n += 4u) {
    ${
    [0, 1, 2, 3].map((r) => J.map((j) => `s${j} = s${j} + ${load(`n + ${r}u`, `c${j}`)};`).join(" ")).join(
      "\n    ",
    )
  }
  }
  for (; n < params.rows; n++) {
    ${J.map((j) => `s${j} = s${j} + ${load("n", `c${j}`)};`).join(" ")}
  }
  ${
    J.map((j) =>
      `if (first + ${j}u < params.columns) { ${db}[params.db_off + c${j}] = s${j} + ${db}[params.db_off + c${j}]; }`
    ).join("\n  ")
  }
}
`;
}

/** Why v3 cannot read dy from a texture ("" when it can). */
function biasGradV3Misfit(gpu: Gpu, s: BiasGradSpec): string {
  return biasGradV2Misfit(s) ||
    (textureUnfit(gpu, { tensor: s.dy, rows: s.rows, cols: s.width, ld: s.width }) ?? "");
}

function chooseVersion(gpu: Gpu, s: BiasGradSpec): BiasGradVersion {
  return textureVersion(
    s.label,
    "bias gradient v3 (texture operand)",
    s.version,
    "v3",
    () => biasGradV3Misfit(gpu, s),
    () => vec4Version(s.label, "bias gradient v2 (vec4)", s.version, "v2", biasGradV2Misfit(s), "v1"),
  );
}

/** db += Σ_rows dy (see the header for the versions): one launch, or v3's pack and launch. */
export function planBiasGrad(gpu: Gpu, s: BiasGradSpec): Dispatch[] {
  const { label, rows, width } = s;
  requireShape(label, "rows", rows);
  requireShape(label, "width", width);
  requireLength(label, s.dy, rows * width, "dy");
  requireLength(label, s.db, width, "db");
  const version = chooseVersion(gpu, s);
  if (version === "v1") {
    requireLength(label, s.ones, rows, "ones");
    // The table's rates count the sum's additions, rows × width, for both versions.
    return [{
      ...planMatmul(gpu, {
        label,
        a: s.ones,
        b: s.dy,
        c: s.db,
        M: 1,
        N: width,
        K: rows,
        transA: true,
        lda: 1,
        beta: 1,
      }),
      flops: rows * width,
    }];
  }
  const pack = version === "v3"
    ? packTexture(
      gpu,
      `${label} (pack dy)`,
      "bias dy",
      { tensor: s.dy, rows, cols: width, ld: width },
      "other",
    )
    : undefined;
  const b = bindOperands(gpu, label, [
    ...(pack ? [] : [{ name: "dy", tensor: s.dy, type: "vec4f" as const }]),
    { name: "db", tensor: s.db, write: true, type: "vec4f" },
  ]);
  const load = pack
    ? (row: string, column: string) => `textureLoad(dy_tex, vec2<u32>(${column}, ${row}), 0)`
    : (row: string, column: string) => `${b.array.dy}[params.dy_off + (${row}) * params.columns + ${column}]`;
  const { declarations, bindings } = withTextureBindings(b, pack ? [{ name: "dy", view: pack.view }] : []);
  const launch = plan(gpu, {
    label,
    code: v2Source(declarations, load, b.array.db),
    params: { rows, columns: width / 4, dy_off: 0, ...offsetParams(b) },
    bindings,
    workgroups: [Math.ceil(width / 4 / VEC4S / WG), 1, 1],
    family: "other",
    flops: rows * width,
    bytes: 4 * (rows * width + 2 * width),
  });
  return pack ? [pack.dispatch, launch] : [launch];
}
