// Building elements and formatting values. Text always goes in as text nodes, never as
// HTML: the trail holds whatever agents and users wrote.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const dash = '—';

export function known(v) {
  return v !== undefined && v !== null && v !== '';
}

export function fmtTime(s) {
  if (!s) return dash;
  const d = new Date(s);
  if (isNaN(d)) return s;
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtCost(v) {
  if (!known(v)) return dash;
  const n = Number(v);
  if (n === 0) return '$0';
  if (Math.abs(n) < 0.01) return '$' + n.toPrecision(2);
  return '$' + n.toFixed(n < 100 ? 4 : 2);
}

export function fmtMs(v) {
  if (!known(v)) return dash;
  const n = Number(v);
  if (n < 1) return n.toFixed(2) + ' ms';
  if (n < 1000) return Math.round(n) + ' ms';
  if (n < 60000) return (n / 1000).toFixed(2) + ' s';
  return (n / 60000).toFixed(1) + ' min';
}

export function fmtInt(v) {
  if (!known(v)) return dash;
  return Number(v).toLocaleString('en-US');
}

export function fmtRate(v) {
  if (!known(v)) return dash;
  return (Number(v) * 100).toFixed(1) + '%';
}

export function tokens(row) {
  const i = row.input_tokens, o = row.output_tokens;
  if (!known(i) && !known(o)) return null;
  return (Number(i) || 0) + (Number(o) || 0);
}

// The badge class of a value: the colour says good, bad, waiting or neutral.
const tone = {
  success: 'ok', approved: 'ok', allow: 'ok', clean: 'ok', not_required: 'muted',
  failed: 'bad', error: 'bad', denied: 'bad', rejected: 'bad', blocked: 'bad', block: 'bad',
  pending: 'wait', require_approval: 'wait', timed_out: 'warn', redacted: 'warn',
};

export function badge(value, label) {
  const key = String(value).split(':')[0];
  return h('span', { class: 'badge ' + (tone[key] || 'neutral') }, label || String(value).replace(/_/g, ' '));
}

export function typeBadge(t) {
  return h('span', { class: 'badge type type-' + (t || 'span') }, t || 'span');
}

// parseJSON returns the value of a JSON text, or undefined when it is not JSON.
export function parseJSON(v) {
  if (typeof v !== 'string') return v;
  const s = v.trim();
  if (!s || !'[{"'.includes(s[0])) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

export function pretty(v) {
  const parsed = parseJSON(v);
  if (parsed !== undefined) return JSON.stringify(parsed, null, 2);
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}
