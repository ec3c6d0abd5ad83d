/**
 * Replays recorded WebGPU programs (tests/helpers/recording-gpu.ts) in headless Chromium, whose WebGPU
 * is Dawn with the Tint shader compiler (stricter than Deno's naga) on SwiftShader, a software Vulkan
 * that also grants `subgroups`. The page is served from 127.0.0.1 (a secure context, so it has
 * navigator.gpu); the replay uses plain WebGPU calls only and reads every buffer back.
 *
 * Tests that need Chromium are ignored without it (`browserTestIgnored`), unless REQUIRE_ALL=1, when
 * they run and fail with the install hint (`assertChromium`).
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import type { ReplayEncoded, ReplayProgram } from "./recording-gpu.ts";

export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const haveChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
const requireAll = Deno.env.get("REQUIRE_ALL") === "1";

/** True when a Chromium test should be skipped: no Chromium, and REQUIRE_ALL is not set. */
export const browserTestIgnored = !haveChromium && !requireAll;

export function assertChromium(): void {
  assert.ok(haveChromium, `REQUIRE_ALL=1 but no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
}

export interface PageResult {
  adapter: string;
  subgroupSizes: [number, number];
  /** Shader compilation errors (with the offending line), validation and uncaptured errors. */
  errors: string[];
  /** Per program, per run: buffer id → words after the program ran (none when a pipeline failed). */
  runs: number[][][][];
  /** Time in the page: compiling every pipeline, running the programs, reading the buffers back. */
  ms: { compile: number; run: number; read: number };
}

interface ReplayInput {
  programs: ReplayProgram[];
  /** Times each program runs, each time from fresh buffers holding its initial words. */
  runs: number;
}

// The page side. `replayInPage` is serialized by playwright and the other page functions are added to the
// page as a script (`PAGE_SCRIPT`), so each uses nothing from outside its body but the page's globals.

/** A dispatch's compiled pipeline and its bind group layout (undefined where compilation failed). */
type PagePipeline = { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout };

/**
 * Page side: compiles every program's pipelines, once per (code, entry point, constants) for all
 * programs and runs; compilation errors (with the offending line) go to `errors`.
 */
async function compileInPage(
  device: GPUDevice,
  programs: ReplayProgram[],
  errors: string[],
): Promise<(PagePipeline | undefined)[][]> {
  const cache = new Map<string, PagePipeline | undefined>();
  async function build(d: ReplayProgram["dispatches"][number]): Promise<PagePipeline | undefined> {
    const key = `${d.entryPoint}|${JSON.stringify(d.constants ?? {})}|${d.code}`;
    if (cache.has(key)) return cache.get(key);
    const module = device.createShaderModule({ code: d.code, label: d.label });
    for (const m of (await module.getCompilationInfo()).messages) {
      if (m.type !== "error") continue;
      const line = d.code.split("\n")[m.lineNum - 1] ?? "";
      errors.push(`${d.label}: line ${m.lineNum}:${m.linePos}: ${m.message}\n    ${line.trim()}`);
    }
    const layout = device.createBindGroupLayout(d.layout);
    const built = await device.createComputePipelineAsync({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: d.entryPoint, constants: d.constants ?? {} },
    }).then(
      (pipeline) => ({ pipeline, layout }),
      (err: Error) => void errors.push(`${d.label}: ${err.message}`),
    );
    cache.set(key, built ?? undefined);
    return built ?? undefined;
  }
  const allBuilt: (PagePipeline | undefined)[][] = [];
  for (const program of programs) {
    const built: (PagePipeline | undefined)[] = [];
    for (const d of program.dispatches) built.push(await build(d));
    allBuilt.push(built);
  }
  return allBuilt;
}

/** Page side: fresh buffers holding the program's initial words. */
function createBuffersInPage(device: GPUDevice, program: ReplayProgram): GPUBuffer[] {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC |
    GPUBufferUsage.COPY_DST;
  return program.buffers.map((b) => {
    const buffer = device.createBuffer({ size: b.words.length * 4, usage });
    device.queue.writeBuffer(buffer, 0, Uint32Array.from(b.words));
    return buffer;
  });
}

/** Page side: encodes one recorded command encoder's work (passes, copies, clears) and submits it. */
function submitInPage(
  device: GPUDevice,
  program: ReplayProgram,
  built: PagePipeline[],
  buffers: GPUBuffer[],
  work: ReplayEncoded[],
): void {
  const encoder = device.createCommandEncoder();
  for (const w of work) {
    if (w.op === "copy") {
      encoder.copyBufferToBuffer(
        buffers[w.source],
        w.sourceOffset,
        buffers[w.destination],
        w.destinationOffset,
        w.size,
      );
    } else if (w.op === "clear") {
      encoder.clearBuffer(buffers[w.buffer], w.offset, w.size);
    } else {
      const pass = encoder.beginComputePass();
      for (const i of w.dispatches) {
        const d = program.dispatches[i];
        pass.setPipeline(built[i].pipeline);
        pass.setBindGroup(
          0,
          device.createBindGroup({
            layout: built[i].layout,
            entries: d.entries.map((e) => ({
              binding: e.binding,
              resource: { buffer: buffers[e.buffer], offset: e.offset, size: e.size },
            })),
          }),
        );
        pass.dispatchWorkgroups(...d.workgroups);
      }
      pass.end();
    }
  }
  device.queue.submit([encoder.finish()]);
}

/** Page side: every buffer's words, read back through staging buffers; destroys the buffers. */
async function readBackInPage(device: GPUDevice, buffers: GPUBuffer[]): Promise<number[][]> {
  const encoder = device.createCommandEncoder();
  const staging = buffers.map((b) =>
    device.createBuffer({ size: b.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
  );
  buffers.forEach((b, i) => encoder.copyBufferToBuffer(b, 0, staging[i], 0, b.size));
  device.queue.submit([encoder.finish()]);
  const words: number[][] = [];
  for (const s of staging) {
    await s.mapAsync(GPUMapMode.READ);
    words.push(Array.from(new Uint32Array(s.getMappedRange().slice(0))));
    s.unmap();
    s.destroy();
  }
  buffers.forEach((b) => b.destroy());
  return words;
}

/** The page functions `replayInPage` calls, as one script for the page. */
const PAGE_SCRIPT = [compileInPage, createBuffersInPage, submitInPage, readBackInPage].map(String).join("\n");

/** Page side, the entry point: compiles, runs each program `runs` times, reads every buffer back. */
function replayInPage(inputJson: string): Promise<string> {
  return (async () => {
    const { programs, runs: runCount } = JSON.parse(inputJson) as ReplayInput;
    const gpu = navigator.gpu;
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error("no WebGPU adapter in the page");
    if (!adapter.features.has("subgroups")) throw new Error("the page's adapter does not offer subgroups");
    const device = await adapter.requestDevice({ requiredFeatures: ["subgroups" as GPUFeatureName] });
    const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
    const errors: string[] = [];
    device.addEventListener(
      "uncapturederror",
      (e) => errors.push((e as GPUUncapturedErrorEvent).error.message),
    );

    const ms = { compile: 0, run: 0, read: 0 };
    let start = performance.now();
    const allBuilt = await compileInPage(device, programs, errors);
    ms.compile = performance.now() - start;

    // With a pipeline missing nothing is run: the compilation errors are the result.
    const runs: number[][][][] = [];
    for (const [p, program] of (errors.length > 0 ? [] : programs).entries()) {
      const built = allBuilt[p] as PagePipeline[];
      // Without a command list: all dispatches in one pass of one submit.
      const commands = program.commands ??
        [{ op: "submit" as const, work: [{ op: "pass" as const, dispatches: built.map((_, i) => i) }] }];
      const programRuns: number[][][] = [];
      for (let run = 0; run < runCount; run++) {
        start = performance.now();
        const buffers = createBuffersInPage(device, program);
        for (const c of commands) {
          if (c.op === "write") {
            device.queue.writeBuffer(buffers[c.buffer], c.offset, Uint32Array.from(c.words));
            continue;
          }
          submitInPage(device, program, built, buffers, c.work);
        }
        await device.queue.onSubmittedWorkDone();
        ms.run += performance.now() - start;
        start = performance.now();
        programRuns.push(await readBackInPage(device, buffers));
        ms.read += performance.now() - start;
      }
      runs.push(programRuns);
    }
    const result: PageResult = {
      adapter: [info.vendor, info.architecture, info.description].filter((s) => s).join(" "),
      subgroupSizes: [info.subgroupMinSize ?? 0, info.subgroupMaxSize ?? 0],
      errors,
      runs,
      ms,
    };
    return JSON.stringify(result);
  })();
}

/**
 * Launches headless Chromium with WebGPU on SwiftShader, opens a page on 127.0.0.1 and replays the
 * programs there, each `runs` times (fresh buffers from its initial words every time).
 */
export async function replayInChromium(programs: ReplayProgram[], runs = 1): Promise<PageResult> {
  const abort = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: abort.signal, onListen() {} },
    () =>
      new Response("<!doctype html><title>webgpu replay</title>", {
        headers: { "content-type": "text/html" },
      }),
  );
  try {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--enable-unsafe-webgpu",
        "--use-webgpu-adapter=swiftshader",
        "--enable-features=Vulkan",
        "--no-first-run",
        "--disable-background-networking",
      ],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${server.addr.port}/`);
      await page.addScriptTag({ content: PAGE_SCRIPT });
      // One JSON string each way: playwright's own serialization is slow for long number arrays.
      const input: ReplayInput = { programs, runs };
      return JSON.parse(await page.evaluate(replayInPage, JSON.stringify(input))) as PageResult;
    } finally {
      await browser.close();
    }
  } finally {
    abort.abort();
    await server.finished;
  }
}

/** u32 words (as read back) viewed as f32. */
export function floatsOf(words: number[]): Float32Array {
  return new Float32Array(Uint32Array.from(words).buffer);
}
