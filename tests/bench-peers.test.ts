/**
 * The PyTorch peer's BLAS (kernels/bench/peers/blas.ts) from hand-written torch.__config__.show() texts
 * and library lists, and how its verdict reaches the peer table (compare.ts): no Python needed.
 */
import assert from "node:assert/strict";
import { blasInfoOf, classifyTorchBlas, type TorchBlasProbe } from "../kernels/bench/peers/blas.ts";
import { peerTrainingRows } from "../kernels/bench/peers/compare.ts";
import type { PeerResults, TrainingResult } from "../kernels/bench/report.ts";

const DEBIAN_CONFIG = `PyTorch built with:
  - GCC 12.2
  - CPU capability usage: AVX2
  - Build settings: BLAS_INFO=generic, BUILD_TYPE=RelWithDebInfo, LAPACK_INFO=generic, USE_CUDA=OFF, `;
const MKL_CONFIG =
  "  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, CXX_COMPILER=/opt/rh/bin/c++, LAPACK_INFO=mkl";
const OPENBLAS_LIBS = [
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so",
];
const REFERENCE_LIBS = ["/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"];

const probe = (config: string, libraries: string[], sgemmGflops: number): TorchBlasProbe => ({
  config,
  libraries,
  sgemmGflops,
});

Deno.test("peer BLAS: BLAS_INFO is read from the build settings, absent when unstated", () => {
  assert.equal(blasInfoOf(DEBIAN_CONFIG), "generic");
  assert.equal(blasInfoOf(MKL_CONFIG), "mkl");
  assert.equal(blasInfoOf("PyTorch built with:\n  - GCC 12.2\n"), undefined);
});

Deno.test("peer BLAS: the mapped library decides, a slow sgemm marks any BLAS as reference-class", () => {
  const cases: [TorchBlasProbe, string, boolean][] = [
    // Debian's generic build calling OpenBLAS: comparable.
    [probe(DEBIAN_CONFIG, OPENBLAS_LIBS, 206), "openblas", false],
    // The same build on the netlib reference (no libopenblas0-pthread).
    [probe(DEBIAN_CONFIG, REFERENCE_LIBS, 5.6), "reference", true],
    // The reference library even where the sgemm figure looks fine.
    [probe(DEBIAN_CONFIG, REFERENCE_LIBS, 40), "reference", true],
    // No library visible (no /proc): the sgemm figure alone.
    [probe(DEBIAN_CONFIG, [], 5.6), "unknown", true],
    [probe(DEBIAN_CONFIG, [], 120), "unknown", false],
    // An MKL wheel: MKL is linked statically, so only BLAS_INFO names it.
    [probe(MKL_CONFIG, [], 150), "mkl", false],
    // OpenBLAS far below its class.
    [probe(DEBIAN_CONFIG, OPENBLAS_LIBS, 8), "openblas", true],
  ];
  for (const [p, kind, reference] of cases) {
    const blas = classifyTorchBlas(p);
    assert.deepEqual(
      [blas.kind, blas.reference],
      [kind, reference],
      JSON.stringify(p.libraries) + p.sgemmGflops,
    );
  }
  assert.ok(
    classifyTorchBlas(probe(DEBIAN_CONFIG, REFERENCE_LIBS, 5.6)).reason.includes("BLAS_INFO=generic"),
  );
});

// 128/2 is a model the peers did not train at that depth: its row gets no peer figures (rows match on
// width and layers, not width alone).
const ours: TrainingResult[] = [[128, 4], [192, 4], [128, 2]].map(([width, layers]) => ({
  name: `${width}/${layers}`,
  width,
  layers,
  contextLength: 64,
  batchSize: 32,
  vocabSize: 256,
  params: 0,
  tokensPerSecond: width === 128 && layers === 4 ? 3000 : width === 192 ? 1800 : 9000,
  msPerStep: 0,
  matmulShare: 0,
  dispatchesPerStep: 0,
  encodeMsPerStep: 0,
}));

function torchRun(blas?: TorchBlasProbe): PeerResults {
  const training = [128, 192].flatMap((width) =>
    [1, 2].map((threads) => ({
      width,
      layers: 4,
      threads,
      tokensPerSecond: width === 128 ? 12000 * threads : 7200 * threads,
      msPerStep: 0,
      loss: 5,
    }))
  );
  return { torch: { torch: "1.13.0", blas, training } };
}

Deno.test("peer table: ratios against torch on OpenBLAS are ours / theirs", () => {
  const { rows, torchBlas, notes } = peerTrainingRows(
    ours,
    torchRun(probe(DEBIAN_CONFIG, OPENBLAS_LIBS, 206)),
  );
  assert.equal(torchBlas?.kind, "openblas");
  assert.deepEqual(notes, []);
  assert.deepEqual(rows.map((r) => [r.ratioTorch1, r.ratioTorch2]), [
    [3000 / 12000, 3000 / 24000],
    [1800 / 7200, 1800 / 14400],
    [undefined, undefined],
  ]);
  assert.deepEqual(rows.map((r) => r.torch1TokensPerSecond), [12000, 7200, undefined]);
});

Deno.test("peer table: on the reference BLAS the torch ratios are withheld with the fix named", () => {
  for (const raw of [torchRun(probe(DEBIAN_CONFIG, REFERENCE_LIBS, 5.6)), torchRun(undefined)]) {
    const { rows, notes } = peerTrainingRows(ours, raw);
    assert.deepEqual(rows.map((r) => [r.ratioTorch1, r.ratioTorch2]), [
      [undefined, undefined],
      [undefined, undefined],
      [undefined, undefined],
    ]);
    // The peer's own figures stay in the table.
    assert.deepEqual(rows.map((r) => r.torch1TokensPerSecond), [12000, 7200, undefined]);
    assert.equal(notes.length, 1);
    assert.ok(notes[0].includes("withheld"), notes[0]);
  }
  const { notes } = peerTrainingRows(ours, torchRun(probe(DEBIAN_CONFIG, REFERENCE_LIBS, 5.6)));
  assert.ok(notes[0].includes("libopenblas0-pthread"), notes[0]);
});
