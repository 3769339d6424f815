/**
 * The dashboard's CSS. Every selector starts at the `.mxd` root the widget
 * creates, so nothing leaks onto the host page; colors are custom properties
 * on that root, switched by its `data-theme`.
 *
 * @module
 */

/** Canvas colors per theme (the canvas cannot read CSS custom properties cheaply). */
export interface Palette {
  grid: string;
  label: string;
  green: string;
  blue: string;
  amber: string;
  red: string;
  purple: string;
  teal: string;
  gray: string;
}

export const PALETTES: Readonly<Record<"dark" | "light", Palette>> = {
  dark: {
    grid: "rgba(148,163,184,0.14)",
    label: "#7d8a9c",
    green: "#3fb950",
    blue: "#58a6ff",
    amber: "#e3b341",
    red: "#f85149",
    purple: "#bc8cff",
    teal: "#39c5cf",
    gray: "#8b949e",
  },
  light: {
    grid: "rgba(15,23,42,0.10)",
    label: "#6b7280",
    green: "#1a7f37",
    blue: "#0969da",
    amber: "#b07d00",
    red: "#cf222e",
    purple: "#8250df",
    teal: "#1b7c83",
    gray: "#6e7781",
  },
};

export const CSS = `
.mxd {
  --mxd-bg: #0d1117; --mxd-panel: #151b23; --mxd-panel-2: #1b2330; --mxd-border: #2a3442;
  --mxd-text: #e6edf3; --mxd-muted: #8b98a9; --mxd-faint: #5c6877;
  --mxd-green: #3fb950; --mxd-blue: #58a6ff; --mxd-amber: #e3b341; --mxd-red: #f85149;
  --mxd-purple: #bc8cff; --mxd-teal: #39c5cf; --mxd-gray: #8b949e;
  --mxd-bar: #263041;
  box-sizing: border-box; color: var(--mxd-text); background: var(--mxd-bg);
  font: 13px/1.35 ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  font-variant-numeric: tabular-nums; padding: 14px; border-radius: 10px;
  display: flex; flex-direction: column; gap: 12px; min-width: 0;
}
.mxd[data-theme="light"] {
  --mxd-bg: #f6f8fa; --mxd-panel: #ffffff; --mxd-panel-2: #f3f5f8; --mxd-border: #d8dee4;
  --mxd-text: #1f2328; --mxd-muted: #5d6875; --mxd-faint: #8c959f;
  --mxd-green: #1a7f37; --mxd-blue: #0969da; --mxd-amber: #b07d00; --mxd-red: #cf222e;
  --mxd-purple: #8250df; --mxd-teal: #1b7c83; --mxd-gray: #6e7781; --mxd-bar: #e4e8ee;
}
.mxd *, .mxd *::before, .mxd *::after { box-sizing: inherit; }
.mxd h3 { margin: 0; font-size: 11px; font-weight: 600; letter-spacing: .06em; text-transform: uppercase; color: var(--mxd-muted); }
.mxd-head { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
.mxd-title { font-size: 15px; font-weight: 650; }
.mxd-sub { color: var(--mxd-muted); font-size: 12px; overflow-wrap: anywhere; }
.mxd-live { margin-left: auto; display: inline-flex; align-items: center; gap: 6px; color: var(--mxd-muted); font-size: 12px; }
.mxd-live::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--mxd-green); box-shadow: 0 0 0 3px color-mix(in srgb, var(--mxd-green) 25%, transparent); }
.mxd-live[data-pool="closing"]::before, .mxd-live[data-pool="closed"]::before { background: var(--mxd-gray); box-shadow: none; }

.mxd-groups { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 10px; }
.mxd-group, .mxd-card, .mxd-chart, .mxd-log-panel { contain: layout paint style; }
.mxd-group { background: var(--mxd-panel); border: 1px solid var(--mxd-border); border-radius: 8px; padding: 9px 11px 10px; }
.mxd-group h3 { margin-bottom: 6px; }
.mxd-tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(68px, 1fr)); gap: 6px 10px; }
.mxd-tile { min-width: 0; }
.mxd-tile-value { display: block; font-size: 19px; font-weight: 600; line-height: 1.2; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.mxd-tile-value small { font-size: 12px; font-weight: 500; color: var(--mxd-muted); margin-left: 2px; }
.mxd-tile-label { display: block; font-size: 11px; color: var(--mxd-muted); white-space: nowrap; }
.mxd-tile[data-tone="good"] .mxd-tile-value { color: var(--mxd-green); }
.mxd-tile[data-tone="bad"] .mxd-tile-value { color: var(--mxd-red); }
.mxd-tile[data-tone="warn"] .mxd-tile-value { color: var(--mxd-amber); }
.mxd-tile[data-tone="info"] .mxd-tile-value { color: var(--mxd-blue); }

.mxd-section-head { display: flex; align-items: baseline; gap: 10px; margin-bottom: 6px; }
.mxd-section-head .mxd-sub { font-size: 11px; }
.mxd-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(205px, 1fr)); gap: 8px; }
.mxd-card { position: relative; background: var(--mxd-panel); border: 1px solid var(--mxd-border); border-left: 3px solid var(--mxd-green);
  border-radius: 8px; padding: 8px 10px 9px; display: flex; flex-direction: column; gap: 5px; transition: opacity .4s, border-color .2s; }
.mxd-card-top { display: flex; align-items: center; gap: 7px; min-width: 0; }
.mxd-card-id { font-weight: 650; font-size: 14px; }
.mxd-badge { font-size: 10px; font-weight: 650; text-transform: uppercase; letter-spacing: .04em; padding: 1px 6px; border-radius: 999px;
  color: var(--mxd-green); background: color-mix(in srgb, var(--mxd-green) 14%, transparent); white-space: nowrap; }
.mxd-card-flags { margin-left: auto; font-size: 11px; color: var(--mxd-muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; min-width: 0; }
.mxd-row { display: flex; justify-content: space-between; gap: 8px; font-size: 12px; color: var(--mxd-muted); white-space: nowrap; }
.mxd-row b { color: var(--mxd-text); font-weight: 550; }
.mxd-bar { height: 5px; border-radius: 3px; background: var(--mxd-bar); overflow: hidden; }
.mxd-bar > i { display: block; height: 100%; width: 100%; border-radius: 3px; background: var(--mxd-blue); transform: scaleX(0); transform-origin: left; transition: transform .2s linear; }
.mxd-bar[data-kind="age"] > i { background: var(--mxd-purple); }
.mxd-bar[data-kind="load"] > i { background: var(--mxd-teal); }
.mxd-bar[data-kind="load"][data-full] > i { background: var(--mxd-amber); }
.mxd-card[data-state="connecting"] { border-left-color: var(--mxd-blue); }
.mxd-card[data-state="connecting"] .mxd-badge { color: var(--mxd-blue); background: color-mix(in srgb, var(--mxd-blue) 14%, transparent); }
.mxd-card[data-state="reconnecting"] { border-left-color: var(--mxd-red); border-style: dashed; border-left-style: solid;
  background: color-mix(in srgb, var(--mxd-red) 7%, var(--mxd-panel)); }
.mxd-card[data-state="reconnecting"] .mxd-badge { color: var(--mxd-red); background: color-mix(in srgb, var(--mxd-red) 15%, transparent); animation: mxd-pulse 1s ease-in-out infinite; }
.mxd-card[data-state="draining"] { border-left-color: var(--mxd-amber);
  background: repeating-linear-gradient(135deg, var(--mxd-panel) 0 10px, color-mix(in srgb, var(--mxd-amber) 7%, var(--mxd-panel)) 10px 20px); }
.mxd-card[data-state="draining"] .mxd-badge { color: var(--mxd-amber); background: color-mix(in srgb, var(--mxd-amber) 15%, transparent); }
.mxd-card[data-state="closed"] { border-left-color: var(--mxd-gray); opacity: .45; }
.mxd-card[data-state="closed"] .mxd-badge { color: var(--mxd-gray); background: color-mix(in srgb, var(--mxd-gray) 15%, transparent); }
@keyframes mxd-pulse { 50% { opacity: .45; } }
@media (prefers-reduced-motion: reduce) { .mxd-card .mxd-badge { animation: none !important; } .mxd-bar > i { transition: none; } }

.mxd-charts-head { display: flex; align-items: baseline; gap: 10px; margin-bottom: -4px; }
.mxd-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(250px, 1fr)); gap: 8px; }
.mxd-chart { margin: 0; background: var(--mxd-panel); border: 1px solid var(--mxd-border); border-radius: 8px; padding: 8px 10px 6px; min-width: 0; }
.mxd-chart figcaption { display: flex; flex-direction: column; gap: 3px; margin-bottom: 4px; }
.mxd-chart-title { font-size: 11px; font-weight: 600; letter-spacing: .06em; text-transform: uppercase; color: var(--mxd-muted); }
.mxd-legend { display: flex; flex-wrap: wrap; gap: 2px 10px; font-size: 11.5px; color: var(--mxd-muted); }
.mxd-legend-item { display: inline-flex; align-items: center; gap: 4px; white-space: nowrap; }
.mxd-legend-item i { width: 9px; height: 3px; border-radius: 2px; display: inline-block; }
.mxd-legend-item b { color: var(--mxd-text); font-weight: 600; }
.mxd-canvas-box { position: relative; height: 104px; }
.mxd-canvas-box canvas { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }

.mxd-log-panel { background: var(--mxd-panel); border: 1px solid var(--mxd-border); border-radius: 8px; padding: 8px 10px; min-width: 0; }
.mxd-counts { display: flex; flex-wrap: wrap; gap: 4px 6px; margin-left: auto; }
.mxd-count { font-size: 11px; color: var(--mxd-muted); padding: 0 6px; border-radius: 999px; background: var(--mxd-panel-2); white-space: nowrap; }
.mxd-count b { color: var(--mxd-text); font-weight: 600; margin-left: 3px; }
.mxd-log { list-style: none; margin: 0; padding: 0; height: var(--mxd-log-height, 190px); overflow-y: auto; font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.mxd-log li { display: grid; grid-template-columns: 92px 82px 1fr; gap: 8px; padding: 1px 2px; border-bottom: 1px solid color-mix(in srgb, var(--mxd-border) 45%, transparent); }
.mxd-log time { color: var(--mxd-faint); }
.mxd-log .mxd-type { font-weight: 650; text-transform: uppercase; font-size: 10.5px; letter-spacing: .04em; padding-top: 1px; }
.mxd-log .mxd-msg { overflow-wrap: anywhere; color: var(--mxd-text); }
.mxd-log li[data-type="open"] .mxd-type { color: var(--mxd-green); }
.mxd-log li[data-type="close"] .mxd-type { color: var(--mxd-red); }
.mxd-log li[data-type="close"][data-clean] .mxd-type { color: var(--mxd-gray); }
.mxd-log li[data-type="reconnect"] .mxd-type { color: var(--mxd-amber); }
.mxd-log li[data-type="expire"] .mxd-type { color: var(--mxd-purple); }
.mxd-log li[data-type="reroute"] .mxd-type { color: var(--mxd-teal); }
.mxd-log li[data-type="error"] .mxd-type { color: var(--mxd-red); }
.mxd-log li[data-type="error"] .mxd-msg { color: color-mix(in srgb, var(--mxd-red) 70%, var(--mxd-text)); }
.mxd-log li[data-type="notification"] .mxd-type, .mxd-log li[data-type="idle"] .mxd-type, .mxd-log li[data-type="shutdown"] .mxd-type { color: var(--mxd-blue); }
.mxd-log li[data-type="resize"] .mxd-type, .mxd-log li[data-type="update"] .mxd-type, .mxd-log li[data-type="reload"] .mxd-type, .mxd-log li[data-type="reloaded"] .mxd-type { color: var(--mxd-blue); }
.mxd-log li[data-type="resize"] .mxd-msg, .mxd-log li[data-type="update"] .mxd-msg, .mxd-log li[data-type="reload"] .mxd-msg, .mxd-log li[data-type="reloaded"] .mxd-msg { font-weight: 600; }
.mxd-log-empty { color: var(--mxd-faint); font-size: 12px; padding: 4px 2px; }
`;
