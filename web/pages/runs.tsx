/**
 * Compare runs: the runs table (GET /api/runs: sort by any column, filter by text and per column, group by
 * any config key; its first rows until "Show all"), each run named by what it is; select runs to overlay
 * one metric's curves on one chart above the table (or their groups as a mean with a min–max band) under
 * the curve controls; export the chart as PNG, SVG and CSV; and diff two selected runs' configurations.
 */
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  RUN_FILTERS,
  type RunFacets,
  type RunFilterParam,
  type RunSortKey,
  type RunTableRow,
} from "../../server/contract/runs.ts";
import type { RunMetrics } from "../../server/contract/series.ts";
import {
  applyCurveSettings,
  availableAxes,
  CurveControls,
  type CurveSettings,
  DEFAULT_CURVE_SETTINGS,
  X_AXIS_LABELS,
} from "../components/curve-controls.tsx";
import {
  capped,
  EmptyState,
  ErrorBox,
  Loading,
  LoadMore,
  PageHeader,
  Section,
  ShowAll,
  StatusBadge,
} from "../components/ui.tsx";
import { apiGet, describeError } from "../lib/api.ts";
import { meanBand, type RunPace } from "../lib/curve-transforms.ts";
import { formatDuration, formatNumber, PALETTE } from "../lib/format.ts";
import { statusVersion } from "../lib/live.ts";
import {
  LEGEND_ROW,
  legendRows,
  overlayCsv,
  type OverlayCurve,
  type OverlayFigure,
  overlaySvg,
} from "../lib/overlay-figure.ts";
import { usePagedList, useResource } from "../lib/resource.ts";
import { configDiff, GROUP_KEYS, type GroupKey, groupRows, runConfig } from "../lib/run-table.ts";

const COLUMNS: { key: RunSortKey; label: string; num?: boolean }[] = [
  { key: "id", label: "#", num: true },
  { key: "name", label: "Run" },
  { key: "task", label: "Task" },
  { key: "status", label: "Status" },
  { key: "finalTestAcc", label: "Test acc (final)", num: true },
  { key: "finalValAcc", label: "Val acc / agreement (final)", num: true },
  { key: "finalStep", label: "Step", num: true },
  { key: "seconds", label: "Time", num: true },
];

/** Rows the table shows before "Show all": the chart above it stays in reach. */
const TABLE_CAP = 50;

/** Rows a runs table loads per request (the API's limit is 1000): "Load more" past them. */
export const RUNS_PAGE = 500;

type Filters = Partial<Record<RunFilterParam | "q", string>>;

export type RunSort = { key: RunSortKey; order: "asc" | "desc" };

function download(filename: string, href: string): void {
  const link = document.createElement("a");
  link.href = href;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
}

/** The SVG drawn on a canvas, so the PNG is the figure on screen pixel for pixel (at twice the size). */
async function svgToPng(svg: string, width: number, height: number): Promise<string> {
  const image = new Image();
  image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = width * 2;
  canvas.height = height * 2;
  const context = canvas.getContext("2d")!;
  context.scale(2, 2);
  context.drawImage(image, 0, 0, width, height);
  return canvas.toDataURL("image/png");
}

const paceOf = (r: RunTableRow): RunPace => {
  const batchSize = (r.config as { hyper?: { batchSize?: unknown } } | null)?.hyper?.batchSize;
  return {
    batchSize: typeof batchSize === "number" ? batchSize : null,
    seconds: r.seconds,
    finalStep: r.finalStep,
  };
};

function SortHeader(
  { col, sort, onSort }: { col: (typeof COLUMNS)[number]; sort: RunSort; onSort: (key: RunSortKey) => void },
) {
  const active = sort.key === col.key;
  return (
    <th
      class={col.num ? "num" : undefined}
      aria-sort={active ? (sort.order === "asc" ? "ascending" : "descending") : "none"}
    >
      <button type="button" class="sort-button" onClick={() => onSort(col.key)}>
        {col.label}
        <span aria-hidden="true">{active ? (sort.order === "asc" ? " ▲" : " ▼") : ""}</span>
      </button>
    </th>
  );
}

/** A run's row; with `onToggle`, a checkbox first to select it. */
function RunRow(
  { row, selected, onToggle }: { row: RunTableRow; selected: boolean; onToggle?: () => void },
) {
  return (
    <tr class={selected ? "selected" : undefined} data-run-id={row.id}>
      {onToggle && (
        <td>
          <input type="checkbox" checked={selected} onChange={onToggle} aria-label={`Select ${row.name}`} />
        </td>
      )}
      <td class="num">
        <a href={`/runs/${row.id}`}>#{row.id}</a>
      </td>
      <td class="run-name">{row.name}</td>
      <td class="nowrap">{row.task ?? "—"}</td>
      <td>
        <StatusBadge status={row.status} />
      </td>
      <td class="num">{formatNumber(row.finalTestAcc, 4)}</td>
      <td class="num" title={row.validation ?? undefined}>{formatNumber(row.finalValAcc, 4)}</td>
      <td class="num">{row.finalStep ?? "—"}</td>
      <td class="num">{formatDuration(row.seconds)}</td>
    </tr>
  );
}

function FilterBar(
  { filters, options, onChange, groupBy, onGroupBy }: {
    filters: Filters;
    options: RunFacets | undefined;
    onChange: (next: Filters) => void;
    groupBy: GroupKey | "";
    onGroupBy: (key: GroupKey | "") => void;
  },
) {
  return (
    <div class="runs-filters">
      <label>
        Filter{" "}
        <input
          type="search"
          placeholder="name, task, status…"
          value={filters.q ?? ""}
          onInput={(e) => onChange({ ...filters, q: (e.target as HTMLInputElement).value })}
        />
      </label>
      {RUN_FILTERS.map(({ param }) => (
        <label key={param}>
          {param}{" "}
          <select
            data-filter={param}
            value={filters[param] ?? ""}
            onChange={(e) => onChange({ ...filters, [param]: (e.target as HTMLSelectElement).value })}
          >
            <option value="">any</option>
            {(options?.[param] ?? []).map((v) => <option key={v} value={v}>{v}</option>)}
          </select>
        </label>
      ))}
      <label>
        group by{" "}
        <select
          data-testid="group-by"
          value={groupBy}
          onChange={(e) => onGroupBy((e.target as HTMLSelectElement).value as GroupKey | "")}
        >
          <option value="">nothing</option>
          {GROUP_KEYS.map((k) => <option key={k} value={k}>{k}</option>)}
        </select>
      </label>
    </div>
  );
}

/**
 * The runs in groups (or one group), their first TABLE_CAP rows shown unless `showAll`; each group's heading
 * counts all of its runs. With `onToggle`, each row has a checkbox to select it (Compare runs); without, the
 * table only lists (a job's page).
 */
export function RunsTable(
  { rows, groupBy = "", sort, onSort, selected = [], onToggle, showAll }: {
    rows: RunTableRow[];
    groupBy?: GroupKey | "";
    sort: RunSort;
    onSort: (key: RunSortKey) => void;
    selected?: number[];
    onToggle?: (id: number) => void;
    /** Kept by the page, so that sorting or filtering (which reloads the table) keeps it. */
    showAll: [boolean, () => void];
  },
) {
  const all = groupBy ? groupRows(rows, groupBy) : [{ value: "", rows }];
  const cut = capped(all.flatMap((g) => g.rows), TABLE_CAP, ...showAll);
  const counts = new Map(all.map((g) => [g.value, g.rows.length]));
  const groups = groupBy ? groupRows(cut.shown, groupBy) : [{ value: "", rows: cut.shown }];
  return (
    <>
      <div class="table-scroll">
        <table class="table compact runs-table" data-testid="runs-table">
          <thead>
            <tr>
              {onToggle && (
                <th>
                  <span class="visually-hidden">Select</span>
                </th>
              )}
              {COLUMNS.map((col) => <SortHeader key={col.key} col={col} sort={sort} onSort={onSort} />)}
            </tr>
          </thead>
          <tbody>
            {groups.map((g) => [
              groupBy && (
                <tr key={`g-${g.value}`} class="group-row">
                  <th colSpan={COLUMNS.length + (onToggle ? 1 : 0)} scope="rowgroup">
                    {groupBy} = {g.value} · {counts.get(g.value)} run{counts.get(g.value) === 1 ? "" : "s"}
                  </th>
                </tr>
              ),
              ...g.rows.map((r) => (
                <RunRow
                  key={r.id}
                  row={r}
                  selected={selected.includes(r.id)}
                  onToggle={onToggle && (() => onToggle(r.id))}
                />
              )),
            ])}
          </tbody>
        </table>
      </div>
      <ShowAll cut={cut} what="runs" />
    </>
  );
}

/** The figure's width in pixels: the viewport's less the page's margins, redrawn when the window resizes. */
function useFigureWidth(): number {
  const [viewport, setViewport] = useState(innerWidth);
  useEffect(() => {
    const resized = () => setViewport(innerWidth);
    addEventListener("resize", resized);
    return () => removeEventListener("resize", resized);
  }, []);
  return Math.min(960, Math.max(280, viewport - 64));
}

/** Every selected run's series, loaded once per selection. */
function useSelectedMetrics(ids: number[]) {
  const [series, setSeries] = useState<Record<number, RunMetrics["series"]>>({});
  const [error, setError] = useState<string>();
  const key = ids.join(",");
  useEffect(() => {
    let live = true;
    const missing = ids.filter((id) => !(id in series));
    Promise.all(missing.map((id) => apiGet<RunMetrics>(`/runs/${id}/metrics?maxPoints=5000`)))
      .then((loaded) => {
        if (!live || loaded.length === 0) return;
        setSeries((s) => ({ ...s, ...Object.fromEntries(loaded.map((m) => [m.runId, m.series])) }));
      })
      .catch((err) => live && setError(describeError(err)));
    return () => void (live = false);
  }, [key]);
  return { series, error };
}

/** The curves of the chosen metric: one per run, or one mean with its band per group of runs. */
function overlayCurves(
  runs: RunTableRow[],
  series: Record<number, RunMetrics["series"]>,
  metric: string,
  settings: CurveSettings,
  grouped: GroupKey | "all" | null,
): OverlayCurve[] {
  const drawn = (r: RunTableRow) => {
    const points = series[r.id]?.[metric]?.points ?? [];
    return applyCurveSettings(points, paceOf(r), { ...settings, smoothing: 0, maxPoints: 100_000 })?.points;
  };
  if (grouped) {
    const groups = grouped === "all" ? [{ value: "selected runs", rows: runs }] : groupRows(runs, grouped);
    return groups.map((g, i) => {
      const band = meanBand(g.rows.map(drawn).filter((c) => c !== undefined));
      const mean = applyCurveSettings(band.map((b) => ({ step: b.x, value: b.mean })), {
        batchSize: null,
        seconds: null,
        finalStep: null,
      }, { ...settings, xAxis: "step" });
      return {
        label: `${
          grouped === "all" ? g.value : `${grouped} = ${g.value}`
        } (mean of ${g.rows.length} · min–max)`,
        color: PALETTE[i % PALETTE.length],
        points: mean?.points ?? [],
        raw: mean?.raw,
        band: band.map((b) => ({ x: b.x, lo: b.min, hi: b.max })),
      };
    });
  }
  return runs.flatMap((r, i) => {
    const curve = applyCurveSettings(series[r.id]?.[metric]?.points ?? [], paceOf(r), settings);
    if (!curve) return [];
    const dash = ["", "6 3", "2 3", "9 3 2 3"][Math.floor(i / PALETTE.length) % 4];
    return [{ label: r.name, color: PALETTE[i % PALETTE.length], dash: dash || undefined, ...curve }];
  });
}

function ExportButtons({ fig }: { fig: OverlayFigure }) {
  const [error, setError] = useState<string>();
  const base = `runs-${fig.yLabel}`;
  const svgHref = () => `data:image/svg+xml;charset=utf-8,${encodeURIComponent(overlaySvg(fig))}`;
  return (
    <div class="form-row export-buttons">
      <button
        type="button"
        class="secondary"
        onClick={() =>
          svgToPng(overlaySvg(fig), fig.width, fig.height).then(
            (png) => download(`${base}.png`, png),
            (err) => setError(describeError(err)),
          )}
      >
        Export PNG
      </button>
      <button type="button" class="secondary" onClick={() => download(`${base}.svg`, svgHref())}>
        Export SVG
      </button>
      <button
        type="button"
        class="secondary"
        onClick={() =>
          download(`${base}.csv`, `data:text/csv;charset=utf-8,${encodeURIComponent(overlayCsv(fig))}`)}
      >
        Export CSV
      </button>
      {error && <span class="field-error">{error}</span>}
    </div>
  );
}

function Overlay({ runs, groupBy }: { runs: RunTableRow[]; groupBy: GroupKey | "" }) {
  const { series, error } = useSelectedMetrics(runs.map((r) => r.id));
  const [settings, setSettings] = useState<CurveSettings>(DEFAULT_CURVE_SETTINGS);
  const [metric, setMetric] = useState("");
  const [grouped, setGrouped] = useState(false);
  const names = [...new Set(runs.flatMap((r) => Object.keys(series[r.id] ?? {})))].sort();
  const chosen = names.includes(metric) ? metric : names.includes("test_acc") ? "test_acc" : names[0] ?? "";
  const axes = availableAxes(runs.map(paceOf));
  const width = useFigureWidth();
  const curves = overlayCurves(runs, series, chosen, settings, grouped ? groupBy || "all" : null);
  const fig: OverlayFigure = {
    title: `${chosen} of ${runs.length} run${runs.length === 1 ? "" : "s"}`,
    xLabel: X_AXIS_LABELS[settings.xAxis],
    yLabel: chosen,
    logY: settings.logY,
    curves,
    width,
    height: Math.round(width * 0.55) + LEGEND_ROW * legendRows(curves.length, width),
  };
  const svg = useMemo(() => overlaySvg(fig), [JSON.stringify(fig)]);
  if (error) return <ErrorBox message={error} />;
  return (
    <>
      <div class="form-row overlay-options">
        <label>
          metric{" "}
          <select
            data-testid="overlay-metric"
            value={chosen}
            onChange={(e) => setMetric((e.target as HTMLSelectElement).value)}
          >
            {names.map((n) => <option key={n} value={n}>{n}</option>)}
          </select>
        </label>
        <label>
          <input
            type="checkbox"
            checked={grouped}
            onChange={(e) => setGrouped((e.target as HTMLInputElement).checked)}
          />{" "}
          mean ± min–max per {groupBy || "selection"}
        </label>
      </div>
      <CurveControls settings={settings} onChange={setSettings} axes={axes} />
      {names.length === 0 ? <Loading what="curves" /> : (
        <figure
          class="overlay-chart"
          data-testid="overlay-chart"
          aria-label={`${chosen} curves: ${fig.curves.map((c) => c.label).join("; ")}`}
          // The figure is built as SVG text so the page, the SVG export and the PNG export are one drawing.
          dangerouslySetInnerHTML={{ __html: svg }}
        />
      )}
      <ExportButtons fig={fig} />
    </>
  );
}

function ConfigDiff({ a, b }: { a: RunTableRow; b: RunTableRow }) {
  const rows = configDiff(runConfig(a), runConfig(b));
  const differing = rows.filter((r) => r.differs).length;
  return (
    <>
      <p class="muted">{differing} of {rows.length} keys differ (highlighted).</p>
      <div class="table-scroll">
        <table class="table compact config-diff" data-testid="config-diff">
          <thead>
            <tr>
              <th>key</th>
              <th>{a.name}</th>
              <th>{b.name}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.key} class={r.differs ? "differs" : undefined}>
                <th scope="row">{r.key}</th>
                <td>{r.a ?? "—"}</td>
                <td>{r.b ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** GET /api/runs of the runs that match `filters` (any of its query's filters: a job, a column's value), sorted. */
export function runsQuery(filters: Record<string, string | undefined>, sort: RunSort): string {
  const query = new URLSearchParams({ sort: sort.key, order: sort.order });
  for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
  return `/runs?${query}`;
}

/** A runs table's sort, newest first until a header is clicked: its first click descending, the next ascending. */
export function useRunSort(): [RunSort, (key: RunSortKey) => void] {
  const [sort, setSort] = useState<RunSort>({ key: "id", order: "desc" });
  const onSort = (key: RunSortKey) =>
    setSort((s) => ({ key, order: s.key === key && s.order === "desc" ? "asc" : "desc" }));
  return [sort, onSort];
}

export function RunsPage() {
  const [filters, setFilters] = useState<Filters>({});
  const [sort, onSort] = useRunSort();
  const [groupBy, setGroupBy] = useState<GroupKey | "">("");
  // The selected runs as they were picked, so a filter that hides one keeps it on the chart.
  const [picked, setPicked] = useState<RunTableRow[]>([]);
  const [showAll, setShowAll] = useState(false);
  // "Load more" past RUNS_PAGE rows, "Show all" past TABLE_CAP.
  const table = usePagedList<RunTableRow>(runsQuery(filters, sort), statusVersion.value, RUNS_PAGE);
  // Every value each filter can take over all runs, not only over the rows loaded.
  const facets = useResource<RunFacets>("/runs/facets", statusVersion.value);
  const byId = new Map((table.data ?? []).map((r) => [r.id, r]));
  const chosen = picked.map((r) => byId.get(r.id) ?? r);
  const selected = chosen.map((r) => r.id);
  const toggle = (id: number) =>
    setPicked((p) => {
      const row = byId.get(id);
      return p.some((r) => r.id === id) ? p.filter((r) => r.id !== id) : row ? [...p, row] : p;
    });
  return (
    <>
      <PageHeader title="Compare runs" />
      <Section title="Overlay" id="overlay">
        <p class="muted" data-testid="selection">
          {chosen.length === 0
            ? "Select runs in the table below to overlay their curves here."
            : `${chosen.length} selected: `}
          {chosen.map((r) => r.name).join("; ")}
          {chosen.length > 0 && (
            <button type="button" class="link-button" onClick={() => setPicked([])}>clear</button>
          )}
        </p>
        {chosen.length > 0 && <Overlay runs={chosen} groupBy={groupBy} />}
      </Section>
      <Section title="Runs" id="runs">
        <FilterBar
          filters={filters}
          options={facets.data}
          onChange={setFilters}
          groupBy={groupBy}
          onGroupBy={setGroupBy}
        />
        {table.error && <ErrorBox message={table.error} onRetry={table.reload} />}
        {!table.data
          ? <Loading what="runs" />
          : table.data.length === 0
          ? Object.values(filters).some(Boolean)
            ? <EmptyState title="No run matches.">Clear the filters to see every run.</EmptyState>
            : (
              <EmptyState title="No runs yet.">
                Runs appear here as experiments train: start one on the <a href="/experiments">Experiments</a>
                {" "}
                page.
              </EmptyState>
            )
          : (
            <RunsTable
              rows={table.data}
              groupBy={groupBy}
              sort={sort}
              onSort={onSort}
              selected={selected}
              onToggle={toggle}
              showAll={[showAll, () => setShowAll((a) => !a)]}
            />
          )}
        <LoadMore list={table} what="runs" />
      </Section>
      {chosen.length >= 2 && (
        <Section title={`Configuration: ${chosen[0].name} vs ${chosen[1].name}`} id="config-diff">
          <ConfigDiff a={chosen[0]} b={chosen[1]} />
        </Section>
      )}
    </>
  );
}
