/**
 * The prepared GPU check (scripts/gpu/): its list of engine tests covers every kernel family's test file,
 * the kernel table adds 2048³ and 4096³ only on a hardware adapter, and matmul-compare.ts sets the fastest
 * version of each layout beside cuBLAS from hand-written outputs. Nothing here needs a GPU.
 */
import assert from "node:assert/strict";
import { matmulSizes } from "../kernels/bench/kernel-table.ts";

const root = new URL("../", import.meta.url);

Deno.test("GPU check: kernel-tests.sh lists every kernel family's test that runs without the server or Chromium", async () => {
  const listed = new Set(
    (await Deno.readTextFile(new URL("scripts/gpu/kernel-tests.sh", root))).match(/tests\/[\w-]+\.test\.ts/g),
  );
  for (const name of listed) await Deno.stat(new URL(name, root)); // every listed file exists
  const missing: string[] = [];
  for await (const entry of Deno.readDir(new URL("tests/", root))) {
    if (!entry.name.endsWith(".test.ts")) continue;
    const text = await Deno.readTextFile(new URL(`tests/${entry.name}`, root));
    const kernelFamily = text.includes('from "../kernels/ops/');
    const needsMore = /from "\.\.\/server\/|browser-webgpu/.test(text);
    if (kernelFamily && !needsMore && !listed.has(`tests/${entry.name}`)) missing.push(entry.name);
  }
  assert.deepEqual(
    missing,
    [],
    "kernel tests the GPU check would not run: add them to scripts/gpu/kernel-tests.sh",
  );
});

Deno.test("GPU check: the kernel table's square products reach 4096³ on a hardware adapter only", () => {
  assert.deepEqual(matmulSizes(true, false), [256, 512]);
  assert.deepEqual(matmulSizes(false), [256, 512, 1024]);
  assert.deepEqual(matmulSizes(false, true), [256, 512, 1024]);
  assert.deepEqual(matmulSizes(false, false), [256, 512, 1024, 2048, 4096]);
});

async function compare(kernelsLog: string, cublasJson: string): Promise<{ code: number; out: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gpu-check-" });
  try {
    await Deno.writeTextFile(`${dir}/kernels.log`, kernelsLog);
    await Deno.writeTextFile(`${dir}/cublas.json`, cublasJson);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "scripts/gpu/matmul-compare.ts",
        `${dir}/kernels.log`,
        `${dir}/cublas.json`,
      ],
      cwd: root,
      env: { NO_COLOR: "1" },
    }).output();
    return { code, out: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("GPU check: matmul-compare.ts puts the fastest version beside cuBLAS, ours / theirs", async () => {
  const row = (kernel: string, version: string, S: number, gflops: number) => ({
    kernel,
    version,
    shape: `${S}×${S}×${S}`,
    ms: 1,
    gflops,
    timer: "gpu",
  });
  const report = {
    kernels: [
      row("matmul NN", "v3 (vec4)", 1024, 900),
      row("matmul NN", "v4 (tiled 16×16)", 1024, 6000),
      row("matmul NN", "v4 (tiled auto)", 1024, 5000),
      row("matmul NT", "v4 (tiled 24×24)", 1024, 4000),
      row("matmul TN", "v2 (blocked)", 1024, 700),
      row("attention forward", "v3 (flash)", 1024, 99999),
    ],
  };
  const kernelsLog = "bench table lines first\n" + JSON.stringify(report) + "\n";
  const cublas = JSON.stringify({
    torch: "2.5.0",
    device: "NVIDIA H100 80GB HBM3",
    matmul: [{ size: 1024, ms: 0.05, gflops: 12000 }, { size: 4096, ms: 3, gflops: 45000 }],
  });
  const { code, out } = await compare(kernelsLog, cublas);
  assert.equal(code, 0, out);
  assert.match(out, /torch 2\.5\.0 on NVIDIA H100/);
  // 6000 / 12000 by hand; the slower v4 and v3 rows lose; attention is not a matmul layout.
  assert.match(
    out,
    /^1024\s+6000 \(v4 \(tiled 16×16\)\)\s+4000 \(v4 \(tiled 24×24\)\)\s+700 \(v2 \(blocked\)\)\s+12000\s+0\.500$/m,
  );
  assert.match(out, /^4096\s+—\s+—\s+—\s+45000\s+—$/m, "a size the table lacks shows a dash");

  const unfinished = await compare("the table was cut off by its timeout\n", cublas);
  assert.notEqual(unfinished.code, 0);
  assert.match(unfinished.out, /kernels\.log holds no JSON line \(did its command finish\?\)/);
});
