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

// The zone times are shown and entered in: 'local' (the browser's) or 'utc'. Every time
// shown names its zone, so a screenshot or a pasted value is never ambiguous.
let zone = 'local';

export function setZone(z) {
  zone = z === 'utc' ? 'utc' : 'local';
}

export function getZone() {
  return zone;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// parts are the wall-clock fields of d in the chosen zone, and the zone's name there:
// "UTC", or the local offset such as "+01:00".
function parts(d) {
  if (zone === 'utc') {
    return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(),
      mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds(), zone: 'UTC', offset: 'Z' };
  }
  const off = -d.getTimezoneOffset();
  const offset = (off < 0 ? '-' : '+') + pad(Math.floor(Math.abs(off) / 60)) + ':' + pad(Math.abs(off) % 60);
  return { y: d.getFullYear(), mo: d.getMonth() + 1, d: d.getDate(), h: d.getHours(),
    mi: d.getMinutes(), s: d.getSeconds(), ms: d.getMilliseconds(), zone: offset, offset };
}

export function fmtTime(s) {
  if (!s) return dash;
  const d = new Date(s);
  if (isNaN(d)) return s;
  const p = parts(d);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}.${pad(p.ms, 3)} ${p.zone}`;
}

// timeEl is a time for the page, re-shown in the other zone when the zone changes
// (refreshTimes).
export function timeEl(s) {
  if (!s) return dash;
  return h('time', { class: 'ts', datetime: s, title: s }, fmtTime(s));
}

export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll('time.ts[datetime]')) el.textContent = fmtTime(el.getAttribute('datetime'));
}

// zoneInput is an instant as a datetime-local input shows it in the chosen zone.
export function zoneInput(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const p = parts(d);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`;
}

// fromZoneInput reads a datetime-local value in the chosen zone and returns it as
// RFC 3339 with that zone's offset ("Z" in UTC), as the URL and the API carry it.
export function fromZoneInput(v) {
  const full = v.length === 16 ? v + ':00' : v;
  const d = new Date(zone === 'utc' ? full + 'Z' : full);
  if (isNaN(d)) return '';
  const p = parts(d);
  return `${p.y}-${pad(p.mo)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}${p.offset}`;
}

// axisLabel is a short label of an instant on a chart axis, in the chosen zone: the
// hour and minute, with the day unless all of them are within a day.
export function axisLabel(ms, spanMs) {
  const p = parts(new Date(ms));
  const hm = `${pad(p.h)}:${pad(p.mi)}`;
  if (spanMs <= 86400e3) return hm;
  return `${p.mo}/${p.d}${spanMs <= 7 * 86400e3 ? ' ' + hm : ''}`;
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
  return h('span', { class: 'badge type type-' + (t || 'span') }, t === 'access' ? 'access read' : t || 'span');
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
