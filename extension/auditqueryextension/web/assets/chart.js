// Cost over time by model: a stacked bar chart in plain SVG. The API has no time series,
// so each bar is one /api/v1/stats call over its slice of the range, with the filters.

import { getJSON } from './api.js';
import { h, svg, clear, fmtCost } from './dom.js';

const buckets = 12;
const topModels = 6;
// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#999999'];

// parseDuration reads the API's "last" values: Go durations plus days (7d).
export function parseDuration(s) {
  const re = /(\d+(?:\.\d+)?)(ms|d|h|m|s)/gy;
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };
  let total = 0, m, end = 0;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * unit[m[2]];
    end = re.lastIndex;
  }
  return end === s.length && end > 0 ? total : NaN;
}

// timeRange is the range the filters select, or null when they leave it open: then the
// oldest and newest matching rows bound it.
async function timeRange(filters, signal) {
  const now = Date.now();
  const last = filters.get('last');
  if (last) return [now - parseDuration(last), now];
  const from = filters.get('from'), to = filters.get('to');
  if (from) return [Date.parse(from), to ? Date.parse(to) : now];
  const edge = async (order) => {
    const p = new URLSearchParams(filters);
    p.set('sort', 'time');
    p.set('order', order);
    p.set('limit', '1');
    const page = await getJSON('/api/v1/spans', p, signal);
    return page.spans.length ? Date.parse(page.spans[0].start_time) : NaN;
  };
  const [oldest, newest] = await Promise.all([edge('asc'), edge('desc')]);
  if (isNaN(oldest)) return null;
  // The newest row must fall inside the last slice, which excludes its end.
  return [oldest, to ? Date.parse(to) : newest + 1];
}

// renderCostChart draws the chart for filters (API parameters) into el. byModel is the
// by_model breakdown of the whole range, which picks the models drawn apart.
export async function renderCostChart(el, filters, byModel, signal) {
  const base = new URLSearchParams(filters);
  base.delete('sort');
  base.delete('order');
  const range = await timeRange(base, signal);
  for (const k of ['last', 'from', 'to']) base.delete(k);
  const models = byModel.filter((g) => g.key !== null && g.cost_usd > 0).slice(0, topModels).map((g) => g.key);
  if (!range || !(range[1] > range[0])) {
    clear(el).append(h('p', { class: 'empty' }, 'No rows in this range.'));
    return;
  }
  const [start, end] = range;
  const step = (end - start) / buckets;
  const slices = await Promise.all(Array.from({ length: buckets }, (_, i) => {
    const p = new URLSearchParams(base);
    const from = start + i * step;
    const to = i === buckets - 1 ? end : start + (i + 1) * step;
    p.set('from', new Date(from).toISOString());
    p.set('to', new Date(to).toISOString());
    p.set('limit', '100');
    return getJSON('/api/v1/stats', p, signal).then((st) => {
      const costs = models.map((m) => (st.by_model.find((g) => g.key === m) || { cost_usd: 0 }).cost_usd);
      const other = Math.max(0, st.total.cost_usd - costs.reduce((a, b) => a + b, 0));
      return { from, to, total: st.total.cost_usd, costs: [...costs, other] };
    });
  }));
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

function label(ms, spanMs) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (spanMs <= 86400e3) return hm;
  return `${d.getMonth() + 1}/${d.getDate()}${spanMs <= 7 * 86400e3 ? ' ' + hm : ''}`;
}
