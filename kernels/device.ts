/**
 * Acquires the WebGPU adapter and device with the adapter's own maximum limits. Optional features
 * (subgroups, shader-f16, timestamp-query) are requested only where the adapter grants them; no kernel
 * depends on them. Any adapter works: a GPU, or the CPU through Mesa's llvmpipe/lavapipe.
 */

export interface Gpu {
  device: GPUDevice;
  adapterName: string;
  /** True for software adapters (llvmpipe, lavapipe, SwiftShader): used only for reporting. */
  isSoftware: boolean;
  features: { subgroups: boolean; shaderF16: boolean; timestamps: boolean };
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    minStorageBufferOffsetAlignment: number;
  };
}

const NO_ADAPTER_HELP = "no WebGPU adapter found. Install a driver: on Debian/Ubuntu " +
  "`apt-get install mesa-vulkan-drivers libvulkan1` (Vulkan lavapipe on the CPU) or Mesa's GL drivers " +
  "(`libgl1-mesa-dri`); on a GPU machine install the vendor's Vulkan driver.";

let shared: Promise<Gpu> | undefined;

/** Environment variable that caps the storage binding size of the process-wide device (a CLI convenience). */
export const BINDING_LIMIT_ENV = "LAB_MAX_BINDING_BYTES";
/** Environment variable that caps maxBufferSize of the process-wide device: the flat buffers shard under it. */
export const BUFFER_LIMIT_ENV = "LAB_MAX_BUFFER_BYTES";

/** The process-wide device, created on first use. */
export function getGpu(): Promise<Gpu> {
  shared ??= createGpu({
    maxBindingBytes: limitFromEnv(BINDING_LIMIT_ENV),
    maxBufferBytes: limitFromEnv(BUFFER_LIMIT_ENV),
  });
  return shared;
}

function limitFromEnv(name: string): number | undefined {
  const raw = typeof Deno !== "undefined" ? Deno.env.get(name) : undefined;
  return raw === undefined || raw === "" ? undefined : Number(raw);
}

export interface GpuOptions {
  /**
   * Caps maxStorageBufferBindingSize below the adapter's: every kernel then splits what it binds into
   * windows of at most this many bytes (tests force it small to exercise the windows with tiny models).
   */
  maxBindingBytes?: number;
  /**
   * Caps maxBufferSize below the adapter's: the flat parameter, gradient and AdamW buffers are then
   * split in shards of at most this many bytes (as GPT-2 XL's are on a real adapter).
   */
  maxBufferBytes?: number;
}

/**
 * The same device seen through a smaller storage binding limit (the one place kernels read it):
 * programs planned with the result bind windows of at most `maxBindingBytes`.
 */
export function withBindingLimit(gpu: Gpu, maxBindingBytes: number): Gpu {
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  if (!Number.isInteger(maxBindingBytes) || maxBindingBytes < 2 * align || maxBindingBytes % 4 !== 0) {
    throw new Error(
      `maxBindingBytes must be a multiple of 4 bytes and at least twice the offset alignment ` +
        `(${2 * align} bytes on this adapter), got ${maxBindingBytes}; set ${BINDING_LIMIT_ENV} accordingly`,
    );
  }
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, maxBindingBytes);
  return { ...gpu, limits: { ...gpu.limits, maxStorageBufferBindingSize: limit } };
}

/** The same device seen through a smaller maxBufferSize: models planned with it shard their flat buffers. */
export function withBufferLimit(gpu: Gpu, maxBufferBytes: number): Gpu {
  if (!Number.isInteger(maxBufferBytes) || maxBufferBytes < 1024 || maxBufferBytes % 16 !== 0) {
    throw new Error(
      `maxBufferBytes must be a multiple of 16 bytes, at least 1024, got ${maxBufferBytes}; ` +
        `set ${BUFFER_LIMIT_ENV} accordingly`,
    );
  }
  const limit = Math.min(gpu.limits.maxBufferSize, maxBufferBytes);
  return { ...gpu, limits: { ...gpu.limits, maxBufferSize: limit } };
}

export async function createGpu(options: GpuOptions = {}): Promise<Gpu> {
  let gpu = await createAdapterGpu();
  if (options.maxBindingBytes !== undefined) gpu = withBindingLimit(gpu, options.maxBindingBytes);
  if (options.maxBufferBytes !== undefined) gpu = withBufferLimit(gpu, options.maxBufferBytes);
  return gpu;
}

async function createAdapterGpu(): Promise<Gpu> {
  // wgpu prints an error line on every start when XDG_RUNTIME_DIR is unset.
  if (typeof Deno !== "undefined" && !Deno.env.get("XDG_RUNTIME_DIR")) {
    // One private directory per user, reused by every process (not a new temp dir each start).
    const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/webgpu-runtime-${Deno.uid() ?? "user"}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  }
  if (typeof navigator === "undefined" || !navigator.gpu) {
    throw new Error("WebGPU is not available in this runtime: " + NO_ADAPTER_HELP);
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error(NO_ADAPTER_HELP);

  const wanted = ["subgroups", "shader-f16", "timestamp-query"] as GPUFeatureName[];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const names = [
    "maxStorageBufferBindingSize",
    "maxBufferSize",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupSizeX",
    "maxComputeWorkgroupSizeY",
    "maxComputeWorkgroupSizeZ",
    "maxComputeWorkgroupsPerDimension",
    "maxStorageBuffersPerShaderStage",
    "maxBindGroups",
  ] as const;
  const requiredLimits: Record<string, number> = {};
  for (const name of names) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  device.addEventListener("uncapturederror", (event) => {
    console.error("WebGPU error:", (event as GPUUncapturedErrorEvent).error.message);
  });

  const info = adapter.info;
  const adapterName = [info.description, info.vendor, info.architecture, info.device]
    .filter((s) => s && String(s).length > 0).join(" ") || "unknown adapter";
  const l = device.limits;
  return {
    device,
    adapterName,
    isSoftware: /llvmpipe|lavapipe|swiftshader|software/i.test(adapterName),
    features: {
      subgroups: device.features.has("subgroups"),
      shaderF16: device.features.has("shader-f16"),
      timestamps: device.features.has("timestamp-query"),
    },
    limits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
    },
  };
}
