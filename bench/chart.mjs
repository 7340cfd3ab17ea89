// Bulk throughput and CPU per GiB as an SVG, drawn from a results JSON
// (no chart library, no service). Bars are medians, whiskers min-max.
//   node bench/chart.mjs RESULT.json OUT.svg
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const W = 820
const LABEL_W = 330
const PLOT_W = 400
const BAR_H = 14
const COLORS = { gbps: '#3b6ea5', sender: '#3b6ea5', receiver: '#e39b2d' }
const SHORT = {
  net: 'node net (no TLS)',
  tls: 'node:tls',
  'ktls-user': 'ktls userspace path',
  'ktls-raw': 'ktls offloaded data path (no crypto)',
  ktls: 'ktls kTLS offload',
  projected: 'ktls projected kTLS (+ AES-GCM)',
}

/** The SVG text for one run's bulk results. */
export function renderBulkChart(result) {
  const bulk = result.scenarios.bulk
  const names = Object.keys(bulk.variants)
  const rows = (metric) => names.map((n) => ({ label: SHORT[n] ?? n, bars: [{ key: 'gbps', s: bulk.variants[n][metric] }] }))
  const cpuRows = names.map((n) => ({
    label: SHORT[n] ?? n,
    bars: [
      { key: 'sender', s: bulk.variants[n].senderCpuPerGiB },
      { key: 'receiver', s: bulk.variants[n].receiverCpuPerGiB },
    ],
  }))
  if (bulk.projected) {
    cpuRows.push({
      label: SHORT.projected,
      bars: [
        { key: 'sender', s: bulk.projected.senderCpuPerGiB },
        { key: 'receiver', s: bulk.projected.receiverCpuPerGiB },
      ],
    })
  }
  const where = result.kind === 'kernel' ? `guest ${result.machine.guest.kernel} (UML, 1 CPU)` : `${result.machine.cpuModel}, ${result.machine.cores} cores, Linux ${result.machine.kernel}`
  const title = `Bulk transfer, one connection, 64 KiB writes, ${bulk.config.bytes / 2 ** 20} MiB each way, ${bulk.config.runs} runs`
  let y = 20
  const parts = [text(10, y, title, 'title'), text(10, (y += 18), `${where}; node ${result.machine.node}; ${result.date.slice(0, 10)}`, 'sub')]
  y += 18
  const a = panel('Throughput, GB/s (higher is better)', rows('gbps'), y, 'GB/s')
  parts.push(a.svg)
  const b = panel('CPU seconds per GiB, whole process (lower is better)', cpuRows, a.bottom + 10, 's')
  parts.push(b.svg, legend(b.bottom + 6))
  const height = b.bottom + 30
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    '<style>.title{font-size:15px;font-weight:bold}.sub{fill:#555}.head{font-weight:bold}.tick{fill:#777;font-size:10px}.val{font-size:10px;fill:#222}</style>',
    `<rect width="${W}" height="${height}" fill="white"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}

function panel(heading, rows, top, unit) {
  const { step, ticks } = niceAxis(Math.max(...rows.flatMap((r) => r.bars.map((b) => b.s.max))))
  const max = step * ticks
  const x = (v) => LABEL_W + (v / max) * PLOT_W
  const out = [text(10, top + 14, heading, 'head')]
  let y = top + 26
  const plotTop = y
  for (const row of rows) {
    const h = row.bars.length * (BAR_H + 2)
    out.push(text(LABEL_W - 8, y + h / 2 + 4, row.label, '', 'end'))
    for (const bar of row.bars) {
      const { min, median, max: hi } = bar.s
      out.push(
        `<rect x="${LABEL_W}" y="${y}" width="${(x(median) - LABEL_W).toFixed(1)}" height="${BAR_H}" fill="${COLORS[bar.key]}"/>`,
        whisker(x(min), x(hi), y + BAR_H / 2),
        text(x(hi) + 4, y + BAR_H - 3, median.toFixed(median < 0.1 ? 3 : 2), 'val'),
      )
      y += BAR_H + 2
    }
    y += 8
  }
  for (let i = 0; i <= ticks; i++) {
    const v = step * i
    out.push(
      `<line x1="${x(v)}" y1="${plotTop - 4}" x2="${x(v)}" y2="${y - 4}" stroke="#ddd"/>`,
      text(x(v), y + 8, `${+v.toFixed(3)} ${unit}`, 'tick', 'middle'),
    )
  }
  return { svg: out.join('\n'), bottom: y + 14 }
}

const whisker = (x1, x2, y) =>
  `<path d="M${x1.toFixed(1)} ${y - 4}v8M${x1.toFixed(1)} ${y}H${x2.toFixed(1)}M${x2.toFixed(1)} ${y - 4}v8" stroke="#222" fill="none"/>`

function legend(y) {
  const item = (x, key, label) => `<rect x="${x}" y="${y}" width="12" height="12" fill="${COLORS[key]}"/>${text(x + 16, y + 10, label)}`
  return [item(LABEL_W, 'sender', 'sender'), item(LABEL_W + 80, 'receiver', 'receiver'), text(LABEL_W + 170, y + 10, 'bar: median, whisker: min-max', 'sub')].join('')
}

/** The smallest 1/2/2.5/5 x 10^k step that covers `v` in at most 5 ticks. */
function niceAxis(v) {
  const base = 10 ** Math.floor(Math.log10(v / 5))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * base).find((s) => v / s <= 5)
  return { step, ticks: Math.ceil(v / step - 1e-9) }
}

function text(x, y, s, cls = '', anchor = 'start') {
  const esc = String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  return `<text x="${typeof x === 'number' ? x.toFixed(1) : x}" y="${y}"${cls ? ` class="${cls}"` : ''}${anchor !== 'start' ? ` text-anchor="${anchor}"` : ''}>${esc}</text>`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output] = process.argv.slice(2)
  if (!input || !output) {
    console.error('usage: node bench/chart.mjs RESULT.json OUT.svg')
    process.exit(2)
  }
  writeFileSync(output, renderBulkChart(JSON.parse(readFileSync(input, 'utf8'))))
}
