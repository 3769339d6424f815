/**
 * Number and duration formatting for the dashboard: short, fixed-width
 * friendly strings (the dashboard uses tabular figures).
 *
 * @module
 */

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** `12345` → `"12,345"`. */
export function count(n: number): string {
  return integer.format(n);
}

/** A rate per second: one decimal under 10, else whole numbers. */
export function rate(n: number): string {
  if (n <= 0) return "0";
  return n < 10 ? n.toFixed(1) : integer.format(n);
}

/** Milliseconds, for latency: `0.42 ms`, `8.1 ms`, `120 ms`, `2.4 s`. */
export function ms(n: number): string {
  if (n <= 0) return "–";
  if (n < 1) return `${n.toFixed(2)} ms`;
  if (n < 10) return `${n.toFixed(1)} ms`;
  if (n < 1000) return `${Math.round(n)} ms`;
  return `${(n / 1000).toFixed(1)} s`;
}

/** Bytes: `900 B`, `64 KiB`, `1.5 MiB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** A duration (age, TTL): `850 ms`, `4.2 s`, `3 m 05 s`, `2 h 04 m`. */
export function duration(n: number): string {
  if (n < 1000) return `${Math.max(0, Math.round(n))} ms`;
  const s = n / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} m`;
}

/** Wall-clock time with milliseconds: `14:03:07.215`. */
export function clock(date: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}.${p(date.getMilliseconds(), 3)}`;
}

/** A compact axis label: `0`, `750`, `1.5k`, `20k`, `1.2M`. */
export function axis(n: number): string {
  if (n === 0) return "0";
  if (n >= 1e6) return `${trim(n / 1e6)}M`;
  if (n >= 1e3) return `${trim(n / 1e3)}k`;
  return trim(n);
}

function trim(n: number): string {
  return n >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(n >= 10 ? 0 : 1).replace(/\.0$/, "");
}
