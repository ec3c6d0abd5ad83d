/**
 * Runs the peer benchmarks as subprocesses, so their runtimes and devices never share state with ours
 * (and tfjs is never loaded into this process): tfjs-backend-webgpu on the same Deno WebGPU adapter
 * (tfjs.ts here) and PyTorch on the CPU (torch-gpt.py here, Debian's /usr/bin/python3 with
 * python3-torch; skipped with a note when torch is absent; peers/blas.ts judges the BLAS it ran on).
 * compare.ts builds the table from them.
 */
import { DEFAULT_ADAMW } from "../../config.ts";
import type { PeerResults, TfjsReport } from "../report.ts";

const PEERS_DIR = new URL(".", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";

async function runJson(cmd: string, args: string[]): Promise<{ json?: unknown; error?: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim().split("\n");
    const last = stdout[stdout.length - 1] ?? "";
    if (!out.success || !last.startsWith("{")) {
      const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
      return { error: `${cmd} exited with ${out.code}: ${stderr || last}` };
    }
    return { json: JSON.parse(last) };
  } catch (err) {
    return { error: `${cmd}: ${(err as Error).message}` };
  }
}

async function torchAvailable(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(PYTHON, { args: ["-c", "import torch"], stderr: "null" }).output();
    return out.success
      ? undefined
      : `${PYTHON} has no torch module (apt-get install -y python3-torch libopenblas0-pthread)`;
  } catch {
    return `${PYTHON} not found (apt-get install -y python3-torch libopenblas0-pthread)`;
  }
}

/** tfjs matmul sizes and GPT models ("width/layers"), then PyTorch with 1 and 2 threads. */
export async function runPeers(
  opts: { quick: boolean; sizes: number[]; models: string[] },
): Promise<PeerResults> {
  const results: PeerResults = {};
  const tfjsArgs = ["run", "-A", PEERS_DIR + "tfjs.ts", "--sizes", opts.sizes.join(","), "--models"];
  tfjsArgs.push(opts.models.join(","), ...(opts.quick ? ["--quick"] : []));
  const tfjs = await runJson(Deno.execPath(), tfjsArgs);
  if (tfjs.json) results.tfjs = tfjs.json as TfjsReport;
  else results.tfjsError = tfjs.error;

  results.torchNote = await torchAvailable();
  // One process per thread count: the BLAS sizes its own thread pool when it loads (torch-gpt.py).
  for (const threads of results.torchNote ? [] : [1, 2]) {
    const args = [PEERS_DIR + "torch-gpt.py", "--adamw", JSON.stringify(DEFAULT_ADAMW), "--models"];
    args.push(opts.models.join(","), "--threads", String(threads), ...(opts.quick ? ["--quick"] : []));
    const torch = await runJson(PYTHON, args);
    if (!torch.json) {
      results.torchNote = torch.error;
      delete results.torch;
      break;
    }
    const run = torch.json as NonNullable<PeerResults["torch"]>;
    // The BLAS probe of the one-thread process: its sgemm is one core's.
    results.torch ??= { ...run, training: [] };
    results.torch.training.push(...run.training);
  }
  return results;
}
