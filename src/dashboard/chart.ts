/**
 * A small line chart on a `<canvas>`: a fixed-size ring of samples per
 * series, redrawn only when something changed, sized by a ResizeObserver so
 * drawing never forces a layout. The legend (with the latest values) is HTML
 * so its text stays crisp and selectable.
 *
 * @module
 */

import { axis } from "./format.ts";

/** One line of a chart. */
export interface SeriesSpec {
  readonly label: string;
  readonly color: string;
  /** Shade the area under this line. */
  readonly fill?: boolean;
}

/** Colors the canvas cannot take from CSS. */
export interface ChartPalette {
  readonly grid: string;
  readonly label: string;
}

export class LineChart {
  readonly element: HTMLElement;
  readonly #canvas: HTMLCanvasElement;
  readonly #series: readonly SeriesSpec[];
  readonly #data: Float64Array[];
  readonly #capacity: number;
  readonly #format: (value: number) => string;
  readonly #palette: ChartPalette;
  readonly #legendValues: HTMLElement[] = [];
  readonly #lastLegend: string[] = [];
  readonly #observer: ResizeObserver | undefined;
  #head = 0;
  #count = 0;
  /** Samples pushed since the chart was made (not capped by the capacity). */
  #pushed = 0;
  #width = 0;
  #height = 0;
  #dirty = true;

  constructor(
    title: string,
    testId: string,
    series: readonly SeriesSpec[],
    capacity: number,
    format: (value: number) => string,
    palette: ChartPalette,
  ) {
    this.#series = series;
    this.#capacity = Math.max(2, capacity);
    this.#data = series.map(() => new Float64Array(this.#capacity));
    this.#format = format;
    this.#palette = palette;

    const figure = document.createElement("figure");
    figure.className = "mxd-chart";
    figure.dataset.testid = testId;
    const head = document.createElement("figcaption");
    const name = document.createElement("span");
    name.className = "mxd-chart-title";
    name.textContent = title;
    head.append(name);
    const legend = document.createElement("span");
    legend.className = "mxd-legend";
    for (const s of series) {
      const item = document.createElement("span");
      item.className = "mxd-legend-item";
      const swatch = document.createElement("i");
      swatch.style.background = s.color;
      const label = document.createElement("span");
      label.textContent = s.label;
      const value = document.createElement("b");
      value.textContent = "–";
      item.append(swatch, label, value);
      legend.append(item);
      this.#legendValues.push(value);
      this.#lastLegend.push("–");
    }
    head.append(legend);
    const box = document.createElement("div");
    box.className = "mxd-canvas-box";
    this.#canvas = document.createElement("canvas");
    box.append(this.#canvas);
    figure.append(head, box);
    this.element = figure;

    if (typeof ResizeObserver === "function") {
      this.#observer = new ResizeObserver((entries) => {
        for (const entry of entries) {
          const r = entry.contentRect;
          if (r.width !== this.#width || r.height !== this.#height) {
            this.#width = r.width;
            this.#height = r.height;
            this.#dirty = true;
          }
        }
      });
      this.#observer.observe(box);
    } else {
      this.#width = 300;
      this.#height = 110;
    }
  }

  /** Appends one sample per series (in the order given to the constructor). */
  push(values: readonly number[]): void {
    for (let i = 0; i < this.#data.length; i++) {
      const v = values[i];
      this.#data[i]![this.#head] = typeof v === "number" && Number.isFinite(v) ? v : 0;
    }
    this.#head = (this.#head + 1) % this.#capacity;
    if (this.#count < this.#capacity) this.#count++;
    this.#pushed++;
    this.#dirty = true;
  }

  /** Redraws if a sample arrived or the size changed since the last draw. */
  draw(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    // How much history the chart has seen, for scripts and tests: it resets only with a new chart.
    this.element.dataset.samples = String(this.#pushed);
    this.#drawLegend();
    const w = this.#width;
    const h = this.#height;
    if (w <= 0 || h <= 0) return;
    const dpr = typeof devicePixelRatio === "number" && devicePixelRatio > 0 ? devicePixelRatio : 1;
    const canvas = this.#canvas;
    const pw = Math.round(w * dpr);
    const ph = Math.round(h * dpr);
    if (canvas.width !== pw || canvas.height !== ph) {
      canvas.width = pw;
      canvas.height = ph;
    }
    const ctx = canvas.getContext("2d");
    if (ctx === null) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    const left = 36;
    const right = 4;
    const top = 6;
    const bottom = 4;
    const plotW = w - left - right;
    const plotH = h - top - bottom;
    if (plotW <= 10 || plotH <= 10) return;

    let max = 0;
    for (const series of this.#data) for (let i = 0; i < this.#count; i++) if (series[i]! > max) max = series[i]!;
    const yMax = niceCeiling(max);

    ctx.font = "10px ui-sans-serif, system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.lineWidth = 1;
    for (let g = 0; g <= 2; g++) {
      const value = (yMax * g) / 2;
      const y = Math.round(top + plotH - (plotH * g) / 2) + 0.5;
      ctx.strokeStyle = this.#palette.grid;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + plotW, y);
      ctx.stroke();
      ctx.fillStyle = this.#palette.label;
      ctx.fillText(axis(value), left - 6, Math.min(Math.max(y, top + 5), top + plotH - 4));
    }
    if (this.#count < 2) return;

    const step = plotW / (this.#capacity - 1);
    const xOf = (k: number): number => left + plotW - (this.#count - 1 - k) * step;
    const yOf = (v: number): number => top + plotH - (v / yMax) * plotH;
    const start = (this.#head - this.#count + this.#capacity) % this.#capacity;
    ctx.lineJoin = "round";
    // Draw the first series last, so the main line sits on top.
    for (let s = this.#series.length - 1; s >= 0; s--) {
      const spec = this.#series[s]!;
      const data = this.#data[s]!;
      /** Starts a new path along the series' points. */
      const trace = (): void => {
        ctx.beginPath();
        for (let k = 0; k < this.#count; k++) {
          const x = xOf(k);
          const y = yOf(data[(start + k) % this.#capacity]!);
          if (k === 0) ctx.moveTo(x, y);
          else ctx.lineTo(x, y);
        }
      };
      trace();
      if (spec.fill === true) {
        ctx.save();
        ctx.lineTo(xOf(this.#count - 1), top + plotH);
        ctx.lineTo(xOf(0), top + plotH);
        ctx.closePath();
        ctx.globalAlpha = 0.16;
        ctx.fillStyle = spec.color;
        ctx.fill();
        ctx.restore();
        trace(); // the line alone, without the closing edges of the fill
      }
      ctx.strokeStyle = spec.color;
      ctx.lineWidth = 1.6;
      ctx.stroke();
    }
  }

  #drawLegend(): void {
    if (this.#count === 0) return;
    const last = (this.#head - 1 + this.#capacity) % this.#capacity;
    for (let s = 0; s < this.#data.length; s++) {
      const text = this.#format(this.#data[s]![last]!);
      if (this.#lastLegend[s] !== text) {
        this.#lastLegend[s] = text;
        this.#legendValues[s]!.textContent = text;
      }
    }
  }

  destroy(): void {
    this.#observer?.disconnect();
  }
}

/** The smallest 1, 2 or 5 × 10ⁿ at or above `v` (at least 1). */
function niceCeiling(v: number): number {
  if (!(v > 1)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}
