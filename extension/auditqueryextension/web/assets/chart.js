// Cost over time by model: a stacked bar chart in plain SVG, from the cost_over_time
// series of the same /api/v1/stats answer the summary strip shows (hourly buckets for a
// window of two days or less, daily beyond): no request of its own.

import { h, svg, clear, fmtCost, axisLabel as label } from './dom.js';

const topModels = 6;
const maxFilledBars = 120;
// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#999999'];

// renderCostChart draws the chart of a stats answer into el: its by_model breakdown picks
// the models drawn apart, its cost_over_time series gives the bars.
export function renderCostChart(el, st) {
  const series = st.cost_over_time || [];
  if (series.length === 0) {
    clear(el).append(h('p', { class: 'empty' }, 'No rows in this range.'));
    return;
  }
  const models = st.by_model.filter((g) => g.key !== null && g.cost_usd > 0).slice(0, topModels).map((g) => g.key);
  const stepMs = st.bucket === 'hour' ? 3600e3 : 86400e3;
  const byStart = new Map();
  for (const p of series) {
    const from = Date.parse(p.bucket);
    if (!byStart.has(from)) byStart.set(from, new Array(models.length + 1).fill(0));
    const i = models.indexOf(p.model);
    byStart.get(from)[i < 0 ? models.length : i] += p.cost_usd;
  }
  let starts = [...byStart.keys()].sort((a, b) => a - b);
  const first = starts[0], last = starts[starts.length - 1];
  if ((last - first) / stepMs < maxFilledBars) {
    // A bar for every bucket of the range, empty ones included, so time reads evenly.
    starts = [];
    for (let t = first; t <= last; t += stepMs) starts.push(t);
  }
  const slices = starts.map((from) => {
    const costs = byStart.get(from) || new Array(models.length + 1).fill(0);
    return { from, to: from + stepMs, total: costs.reduce((a, b) => a + b, 0), costs };
  });
  draw(el, slices, [...models, 'other models']);
}

function draw(el, slices, names) {
  clear(el);
  const max = Math.max(...slices.map((s) => s.total));
  if (!(max > 0)) {
    el.append(h('p', { class: 'empty' }, 'No cost recorded in this range.'));
    return;
  }
  const W = 720, H = 180, left = 64, right = 8, top = 10, bottom = 26;
  const plotW = W - left - right, plotH = H - top - bottom;
  const barW = plotW / slices.length;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'cost-chart',
    'aria-label': `Cost over time by model, ${slices.length} intervals, highest ${fmtCost(max)}` });
  for (const f of [0, 0.5, 1]) {
    const y = top + plotH * (1 - f);
    chart.append(svg('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'grid' }),
      svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' }, fmtCost(max * f)));
  }
  const spanMs = slices[slices.length - 1].to - slices[0].from;
  slices.forEach((s, i) => {
    let y = top + plotH;
    const x = left + i * barW + barW * 0.12;
    s.costs.forEach((c, j) => {
      if (!(c > 0)) return;
      const hgt = (c / max) * plotH;
      y -= hgt;
      chart.append(svg('rect', { x, y, width: barW * 0.76, height: Math.max(hgt, 0.5), fill: palette[j % palette.length],
        'data-model': names[j], 'data-cost': c, 'data-from': new Date(s.from).toISOString() },
      svg('title', {}, `${names[j]}: ${fmtCost(c)} from ${label(s.from, spanMs)} to ${label(s.to, spanMs)}`)));
    });
    if (i % 3 === 0) {
      chart.append(svg('text', { x: left + i * barW, y: H - 8, class: 'axis' }, label(s.from, spanMs)));
    }
  });
  const legend = h('ul', { class: 'legend' }, names.map((n, j) => {
    const total = slices.reduce((a, s) => a + s.costs[j], 0);
    if (!(total > 0)) return null;
    return h('li', {}, h('span', { class: 'swatch', 'data-color': j }), `${n} ${fmtCost(total)}`);
  }));
  el.append(chart, legend);
  // Swatch colours are set from script: the style policy refuses inline style attributes.
  legend.querySelectorAll('.swatch').forEach((sw) => { sw.style.background = palette[Number(sw.dataset.color) % palette.length]; });
}
