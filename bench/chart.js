// A plain SVG bar chart of tiny-task throughput (log scale), no dependencies.
'use strict';

function renderChart(throughput) {
  const bars = [
    ['same-thread Promise floor', throughput.floor.median],
    ['sideloop native', throughput.native.median],
    ['sideloop worker backend', throughput.worker.median],
    ['piscina best', throughput.piscinaBest.median],
    ['piscina defaults', throughput.piscinaDefault.median],
  ];
  const width = 720;
  const left = 200;
  const barHeight = 26;
  const top = 40;
  const height = top + bars.length * (barHeight + 10) + 20;
  const max = Math.log10(Math.max(...bars.map(([, v]) => v)) * 2);
  const min = 3; // 1 k/s
  const scale = (v) => ((Math.log10(Math.max(v, 10 ** min)) - min) / (max - min)) * (width - left - 110);
  const label = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M/s` : `${(v / 1e3).toFixed(1)} k/s`);
  const rows = bars
    .map(([name, value], i) => {
      const y = top + i * (barHeight + 10);
      const w = scale(value);
      const fill = name.startsWith('sideloop') ? '#2b6cb0' : '#a0aec0';
      return `  <text x="${left - 8}" y="${y + 18}" text-anchor="end">${name}</text>
  <rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${fill}"/>
  <text x="${(left + w + 6).toFixed(1)}" y="${y + 18}">${label(value)}</text>`;
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">
  <rect width="100%" height="100%" fill="white"/>
  <text x="${left}" y="22" font-weight="bold">Tiny tasks, 1,024 in flight: tasks per second (log scale)</text>
${rows}
</svg>
`;
}

module.exports = { renderChart };
