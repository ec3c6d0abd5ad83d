/** Kernels: benchmark results per kernel, shape and device with versions side by side; run the benchmark here. */
import { Fragment } from "preact";
import { useState } from "preact/hooks";
import {
  Cmd,
  EmptyState,
  ErrorBox,
  JobLiveProgress,
  Loading,
  PageHeader,
  Section,
} from "../components/ui.tsx";
import { apiPost, describeError } from "../lib/api.ts";
import { adapterLabel, formatNumber, formatPercent, formatTime } from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import { useResource } from "../lib/resource.ts";
import { currentQuery, setQueryParam } from "../lib/router.ts";
import type { BenchRow, Job } from "../lib/types.ts";
import { CEILING_KERNEL, ceilingPercent, storedVersionLabel } from "../../server/contract/bench-versions.ts";

function RunBenchmark({ onStarted }: { onStarted: () => void }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [quick, setQuick] = useState(true);
  const start = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await apiPost("/bench", { quick });
      onStarted();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="form-row">
      <button type="button" onClick={start} disabled={busy}>Run the benchmark on this server's device</button>
      <label class="checkbox">
        <input
          type="checkbox"
          checked={quick}
          onChange={(e) => setQuick((e.target as HTMLInputElement).checked)}
        />
        quick (small shapes)
      </label>
      {error && <span class="field-error" role="alert">{error}</span>}
    </div>
  );
}

/**
 * GFLOP/s with its share of the device's fma ceiling (vec4 fma in registers, no memory: about what WGSL
 * arithmetic reaches on the device with nothing else to do; kernels/bench/ceiling.ts).
 */
function GflopsCell({ gflops, ceiling }: { gflops: number | null; ceiling: number | undefined }) {
  const percent = ceilingPercent(gflops, ceiling);
  return (
    <td
      class="num"
      title={percent === undefined
        ? undefined
        : `${formatPercent(percent / 100, 0)} of this device's ${CEILING_KERNEL}`}
    >
      {formatNumber(gflops, 1)}
      {percent !== undefined && <span class="muted small">{` · ${formatPercent(percent / 100, 0)}`}</span>}
    </td>
  );
}

interface Row {
  device: string;
  kernel: string;
  shape: string;
  byVersion: Map<string, BenchRow>;
}

/** One kernel's results: a row per device and shape, its versions side by side. */
function KernelTable(
  { kernel, list, ceilings }: { kernel: string; list: Row[]; ceilings: Map<string, number> },
) {
  const versions = [...new Set(list.flatMap((r) => [...r.byVersion.keys()]))].sort();
  return (
    <Section title={kernel} id={`kernel-${kernel}`}>
      {kernel === CEILING_KERNEL && (
        <p class="muted small">
          vec4 fma on values that stay in registers, no memory traffic: about what WGSL arithmetic reaches on
          the device with nothing else to do. Every other GFLOP/s figure on this page shows its share of it.
        </p>
      )}
      <div class="table-scroll">
        <table class="table compact bench" data-testid="bench-table">
          <thead>
            <tr>
              <th scope="col" rowSpan={2}>device</th>
              <th scope="col" rowSpan={2}>shape</th>
              {versions.map((v) => <th scope="colgroup" colSpan={3} key={v} class="version">{v}</th>)}
            </tr>
            <tr>
              {versions.map((v) => (
                <Fragment key={v}>
                  <th scope="col" class="num">ms</th>
                  <th scope="col" class="num">GFLOP/s</th>
                  <th scope="col" class="num">GB/s</th>
                </Fragment>
              ))}
            </tr>
          </thead>
          <tbody>
            {list.map((row) => {
              const fastest = Math.min(...[...row.byVersion.values()].map((r) => r.ms));
              return (
                <tr key={`${row.device}/${row.shape}`}>
                  <td title={row.device}>{adapterLabel(row.device)}</td>
                  <td class="mono">{row.shape}</td>
                  {versions.map((v) => {
                    const r = row.byVersion.get(v);
                    const best = r && r.ms === fastest && row.byVersion.size > 1;
                    return r
                      ? (
                        <Fragment key={v}>
                          <td
                            class={`num${best ? " best" : ""}`}
                            title={best ? "fastest version" : undefined}
                          >
                            {formatNumber(r.ms, 3)}
                          </td>
                          <GflopsCell
                            gflops={r.gflops}
                            ceiling={kernel === CEILING_KERNEL ? undefined : ceilings.get(row.device)}
                          />
                          <td class="num">{formatNumber(r.gbps, 1)}</td>
                        </Fragment>
                      )
                      : <td colSpan={3} class="muted num" key={v}>—</td>;
                  })}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </Section>
  );
}

export function KernelsPage() {
  const results = useResource<BenchRow[]>("/bench/results?limit=1000", statusVersion.value);
  const jobs = useResource<Job[]>("/jobs?type=bench&limit=1", statusVersion.value);
  const all = results.data ?? [];
  const devices = [...new Set(all.map((r) => r.device))].sort();
  const wanted = currentQuery.value.get("device") ?? "";
  const device = devices.includes(wanted) ? wanted : "";
  // Rows come newest first: the first result per (device, kernel, shape, version) is the current one.
  // Rows stored before the versions were numbered ("naive", …) join their version's column.
  const rows = new Map<string, Row>();
  for (const r of all) {
    if (device && r.device !== device) continue;
    const key = `${r.device}\u0000${r.kernel}\u0000${r.shape}`;
    const row = rows.get(key) ?? { device: r.device, kernel: r.kernel, shape: r.shape, byVersion: new Map() };
    const version = storedVersionLabel(r.kernel, r.version);
    if (!row.byVersion.has(version)) row.byVersion.set(version, r);
    rows.set(key, row);
  }
  // Each device's newest fma ceiling: every GFLOP/s cell also shows its share of it.
  const ceilings = new Map<string, number>();
  for (const r of all) {
    if (r.kernel === CEILING_KERNEL && r.gflops && !ceilings.has(r.device)) ceilings.set(r.device, r.gflops);
  }
  const byKernel = new Map<string, Row[]>();
  for (const row of rows.values()) byKernel.set(row.kernel, [...(byKernel.get(row.kernel) ?? []), row]);
  const lastJob = jobs.data?.[0];

  return (
    <>
      <PageHeader title="Kernels">
        {devices.length > 1 && (
          <label>
            Device{" "}
            <select
              value={device}
              onChange={(e) => setQueryParam("device", (e.target as HTMLSelectElement).value)}
            >
              <option value="">all devices</option>
              {devices.map((d) => <option key={d} value={d} title={d}>{adapterLabel(d)}</option>)}
            </select>
          </label>
        )}
      </PageHeader>
      <Section title="Benchmark" id="bench-run">
        <RunBenchmark onStarted={() => (jobs.reload(), results.reload())} />
        {lastJob && (
          <div class="last-job">
            <span class="muted small">
              Last benchmark job <a href={`/jobs/${lastJob.id}`}>#{lastJob.id}</a>{" "}
              ({formatTime(lastJob.createdAt)}):
            </span>
            <JobLiveProgress
              jobId={lastJob.id}
              status={lastJob.status}
              progress={lastJob.progress}
              error={lastJob.error}
            />
          </div>
        )}
      </Section>
      {results.error && <ErrorBox message={results.error} onRetry={results.reload} />}
      {!results.data && !results.error && <Loading what="benchmark results" />}
      {results.data?.length === 0 && (
        <Section title="Results" id="bench-results">
          <EmptyState title="No benchmark results yet.">
            Press the button above: the benchmark runs as a job on this server's device and its results appear
            here. <Cmd>deno task bench</Cmd> in a terminal prints the same tables (and, with{" "}
            <Cmd>--peers</Cmd>, tfjs and PyTorch beside them) without storing them.
          </EmptyState>
        </Section>
      )}
      {[...byKernel.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([kernel, list]) => (
        <KernelTable key={kernel} kernel={kernel} list={list} ceilings={ceilings} />
      ))}
    </>
  );
}
