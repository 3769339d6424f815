export {}; // a module: top-level await
/**
 * The field's faults (chaos-field.test.ts) against batch frames: the same
 * three runs with every pool on `coalesce: "batch"`, fewer calls. It found
 * that a null-id error, when it was taken as a refused batch frame without
 * being sure, made calls run twice.
 */
const saved = { coalesce: process.env.CHAOS_COALESCE, calls: process.env.CHAOS_CALLS };
process.env.CHAOS_COALESCE = "batch";
process.env.CHAOS_CALLS ??= "8000";
try {
  await import("./chaos-field.test.ts");
} finally {
  // The constants were read at import: restore the environment for the files that share this process.
  if (saved.coalesce === undefined) delete process.env.CHAOS_COALESCE;
  else process.env.CHAOS_COALESCE = saved.coalesce;
  if (saved.calls === undefined) delete process.env.CHAOS_CALLS;
  else process.env.CHAOS_CALLS = saved.calls;
}
