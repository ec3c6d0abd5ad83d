/**
 * Issue 15's GPU target, the matmul half: the engine's square products beside cuBLAS on the same card.
 *
 *   deno run --allow-read scripts/gpu/matmul-compare.ts KERNELS_LOG CUBLAS_JSON
 *
 * KERNELS_LOG is the output of `scripts/bench.ts --kernels-only --json` (its last line is the report; on a
 * hardware adapter the kernel table runs 256³ … 4096³), CUBLAS_JSON the line of
 * `kernels/bench/peers/torch-gpt.py --matmul 1024,2048,4096` (fp32, TF32 off). Prints, per size, the
 * engine's fastest version of each layout and its GFLOP/s, cuBLAS's NN GFLOP/s and the NN ratio. Imports
 * nothing, so the GPU machine runs it from the carried Deno alone (scripts/gpu/check.sh).
 */

interface KernelRow {
  kernel: string;
  version: string;
  shape: string;
  gflops?: number;
}

interface CublasRow {
  size: number;
  gflops: number;
}

const [kernelsLog, cublasJson] = Deno.args;
if (!kernelsLog || !cublasJson) {
  console.error("usage: matmul-compare.ts KERNELS_LOG CUBLAS_JSON (scripts/gpu/check.sh writes both)");
  Deno.exit(2);
}

/** The last line of a file that parses as a JSON object, or an error naming the file. */
async function lastJson(path: string): Promise<Record<string, unknown>> {
  const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l.startsWith("{"));
  if (lines.length === 0) throw new Error(`${path} holds no JSON line (did its command finish?)`);
  return JSON.parse(lines[lines.length - 1]);
}

const kernels = ((await lastJson(kernelsLog)).kernels ?? []) as KernelRow[];
const peer = await lastJson(cublasJson);
const cublas = (peer.matmul ?? []) as CublasRow[];

/** The fastest version of `matmul LAYOUT` at S×S×S. */
function best(layout: string, S: number): KernelRow | undefined {
  const rows = kernels.filter((r) => r.kernel === `matmul ${layout}` && r.shape === `${S}×${S}×${S}`);
  return rows.reduce<KernelRow | undefined>(
    (a, r) => ((r.gflops ?? 0) > (a?.gflops ?? 0) ? r : a),
    undefined,
  );
}

const fmt = (row: KernelRow | undefined) => row ? `${row.gflops!.toFixed(0)} (${row.version})` : "—";
// On a machine without CUDA the peer ran on the CPU (a dry run): the header says which.
const peerName = peer.device === "cpu" ? "torch CPU" : "cuBLAS";
console.log(`torch ${peer.torch} on ${peer.device}; GFLOP/s, the engine's fastest version of each layout`);
console.log(
  "size    ours NN                             NT                       TN" +
    `                       ${peerName.padStart(9)}   ours NN / ${peerName}`,
);
for (const { size, gflops } of cublas) {
  const nn = best("NN", size);
  const ratio = nn?.gflops ? (nn.gflops / gflops).toFixed(3) : "—";
  console.log(
    `${String(size).padEnd(8)}${fmt(nn).padEnd(36)}${fmt(best("NT", size)).padEnd(25)}` +
      `${fmt(best("TN", size)).padEnd(25)}${gflops.toFixed(0).padStart(9)}   ${ratio}`,
  );
}
