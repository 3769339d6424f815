// Cost of one request id: nanoid() against the per-pool prefix + counter muxpool uses.
//   node bench/ids.mjs
import { nanoid } from "nanoid";
const N = 2_000_000;
let s = 0, t = performance.now();
for (let i = 0; i < N; i++) s += nanoid().length;
const a = (performance.now() - t) * 1e6 / N;
t = performance.now(); let c = 0; const prefix = "k3Xw9_aQ";
for (let i = 0; i < N; i++) s += `${prefix}.${(++c).toString(36)}`.length;
const b = (performance.now() - t) * 1e6 / N;
t = performance.now();
for (let i = 0; i < N; i++) s += nanoid(10).length;
const d = (performance.now() - t) * 1e6 / N;
console.log(`nanoid() ${a.toFixed(0)} ns, nanoid(10) ${d.toFixed(0)} ns, prefix+counter ${b.toFixed(0)} ns per id`, s > 0);
