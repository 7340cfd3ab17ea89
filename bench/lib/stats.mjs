// min/median/max over runs, and per-run ratios against a baseline measured
// in the same run (the machines are shared and noisy: absolute figures
// drift, ratios taken run by run much less).

export function summary(values) {
  const v = values.filter((x) => Number.isFinite(x))
  if (v.length === 0) return { n: 0, min: NaN, median: NaN, max: NaN, values }
  const s = [...v].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  return { n: s.length, min: s[0], median, max: s[s.length - 1], values }
}

/** a[i] / b[i] for each run i. */
export function ratios(a, b) {
  return a.map((x, i) => x / b[i])
}

/** "1.23 [1.10-1.31]": median, then min-max. */
export function fmt(s, digits = 2) {
  if (!s || !s.n) return 'n/a'
  const f = (x) => x.toFixed(digits)
  return s.n === 1 ? f(s.median) : `${f(s.median)} [${f(s.min)}-${f(s.max)}]`
}

/** A fixed-width text table; rows are arrays of strings. */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/** Rotates `items` by `k`: run k starts with a different variant, so no variant always runs first. */
export function rotate(items, k) {
  const n = items.length
  return items.map((_, i) => items[(i + k) % n])
}

/**
 * Per-run ratios of one metric between two variants of a workload, in a
 * result shaped { workloads: { [w]: { variants: { [v]: { runs } } } } }
 * (the http and files scenarios).
 */
export function workloadRatio(result, workload, metric, variant, baseline) {
  const w = result?.workloads[workload]?.variants
  const a = w?.[variant]?.runs.map((r) => r[metric])
  const b = w?.[baseline]?.runs.map((r) => r[metric])
  return a && b ? summary(ratios(a, b)) : undefined
}
