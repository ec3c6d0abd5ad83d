/**
 * Which BLAS the PyTorch peer ran on, and whether its figures are fit to compare with. Debian's
 * python3-torch is built against "generic" BLAS (torch.__config__.show() says BLAS_INFO=generic) and
 * calls whatever libblas.so.3 the system links: the netlib reference (about 40× slower in sgemm) unless
 * OpenBLAS is installed. So the peer reports three signs (peers/torch-gpt.py): the build's BLAS_INFO,
 * the BLAS libraries mapped into its process, and the sgemm GFLOP/s of a 512³ product on one thread.
 */

/** What torch-gpt.py prints under "blas". */
export interface TorchBlasProbe {
  /** torch.__config__.show(), whole. */
  config: string;
  /** Paths of the mapped shared libraries whose name holds "blas" (from /proc/self/maps). */
  libraries: string[];
  /** 512×512×512 float32 matmul on one thread. */
  sgemmGflops: number;
}

export type BlasKind = "openblas" | "mkl" | "blis" | "reference" | "unknown";

export interface TorchBlas {
  /** BLAS_INFO of the build ("generic", "mkl", "open", …), or "unstated". */
  buildInfo: string;
  /** The library that ran, from the mapped libraries (else the build's BLAS_INFO). */
  kind: BlasKind;
  sgemmGflops: number;
  /** True when ratios against this peer would flatter the engine: reference BLAS or a slow sgemm. */
  reference: boolean;
  /** Why, in one line, for the table. */
  reason: string;
}

/**
 * Below this, a 512³ sgemm on one thread is the reference BLAS's class (single digits), not an
 * optimized one's (tens to hundreds on any AVX2 core, even on a loaded machine).
 */
export const OPTIMIZED_SGEMM_MIN_GFLOPS = 15;

/** The fix named wherever the reference BLAS is found. */
export const OPENBLAS_FIX = "apt-get install -y libopenblas0-pthread";

/** The BLAS_INFO value of a torch.__config__.show() text, or undefined when it names none. */
export function blasInfoOf(config: string): string | undefined {
  return config.match(/\bBLAS_INFO=([^,\s]+)/)?.[1];
}

/** The BLAS a library path belongs to: Debian keeps the netlib reference under …/blas/. */
export function blasKindOfLibrary(path: string): BlasKind {
  const p = path.toLowerCase();
  if (p.includes("openblas")) return "openblas";
  if (p.includes("mkl")) return "mkl";
  if (p.includes("blis")) return "blis";
  if (/\/blas\/libblas\.so/.test(p) || /\/libblas\.so/.test(p) || p.includes("refblas")) return "reference";
  return "unknown";
}

function kindOfBuildInfo(info: string | undefined): BlasKind {
  if (info === "mkl") return "mkl";
  if (info === "open" || info === "openblas") return "openblas";
  if (info === "blis") return "blis";
  return "unknown";
}

/** Classifies the peer's BLAS: the mapped libraries decide the kind, the sgemm figure the verdict too. */
export function classifyTorchBlas(probe: TorchBlasProbe): TorchBlas {
  const buildInfo = blasInfoOf(probe.config) ?? "unstated";
  const kinds = probe.libraries.map(blasKindOfLibrary);
  const optimized = kinds.find((k) => k === "openblas" || k === "mkl" || k === "blis");
  const kind = optimized ?? (kinds.includes("reference") ? "reference" : kindOfBuildInfo(buildInfo));
  const slow = !(probe.sgemmGflops >= OPTIMIZED_SGEMM_MIN_GFLOPS);
  const sgemm = `sgemm 512³ on one thread ${probe.sgemmGflops.toFixed(1)} GFLOP/s`;
  let reason = `${kind} BLAS (build BLAS_INFO=${buildInfo}), ${sgemm}`;
  if (kind === "reference") reason = `the reference BLAS is linked (BLAS_INFO=${buildInfo}), ${sgemm}`;
  else if (slow) {
    reason +=
      `, below the ${OPTIMIZED_SGEMM_MIN_GFLOPS} GFLOP/s of an optimized BLAS (or the machine is busy)`;
  }
  return { buildInfo, kind, sgemmGflops: probe.sgemmGflops, reference: kind === "reference" || slow, reason };
}

/** The loud note that replaces the ratios against a reference-BLAS peer. */
export function referenceBlasNote(blas: TorchBlas): string {
  return `PyTorch ran on a reference-class BLAS (${blas.reason}): ratios against it are withheld, ` +
    `they would flatter the engine. Fix: ${OPENBLAS_FIX}, then run bench --peers again.`;
}
