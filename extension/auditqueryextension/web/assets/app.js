// The audit trail page. Its whole state is in the URL (filters, sort, page, the open
// record, the open agent run, the zone and detailed mode), so any view can be bookmarked
// or pasted into a ticket; it reads everything through the API beside it.

import { searchParams, getJSON, defaultLast, prefParams } from './api.js';
import { h, clear, known, dash, fmtTime, timeEl, setZone, getZone, refreshTimes, zoneInput, fromZoneInput, fmtCost, fmtMs, fmtInt, fmtRate, tokens, badge, typeBadge } from './dom.js';
import { renderDetail } from './detail.js';
import { renderTrace } from './trace.js';
import { renderCostChart } from './chart.js';
import { runExport } from './exporter.js';
import { checkIntegrity, noteSkipped } from './integrity.js';

const $ = (id) => document.getElementById(id);
const multiFields = ['agent', 'user', 'model', 'category', 'action', 'result'];
const singleFields = ['record_type', 'approval', 'policy'];
const defaultLimit = '50';

let searchKey = null; // the parameters the table shows
let summaryKey = null; // the filters the summary shows
let traceKey = null;
let detailKey = null;
let rowsAbort = null;
let summaryAbort = null;
let detailOpener = null;
let lastStats = null; // the stats the chart shows, to draw it again in another zone

function pageParams() {
  return new URLSearchParams(location.search);
}

function go(params, { replace = false, state = {} } = {}) {
  const qs = params.toString();
  history[replace ? 'replaceState' : 'pushState'](state, '', qs ? '?' + qs : location.pathname);
  render();
}

function stack() {
  return (history.state && history.state.stack) || [];
}

// --- filters form <-> URL ---------------------------------------------------------------

// keepPrefs copies the reader's preferences (zone, detailed mode) from the URL into p.
function keepPrefs(p) {
  const cur = pageParams();
  for (const k of prefParams) if (cur.get(k)) p.set(k, cur.get(k));
  return p;
}

function fillForm(p) {
  $('f-q').value = p.get('q') || '';
  const custom = p.has('from') || p.has('to');
  const last = p.get('last') || defaultLast;
  const time = $('f-time');
  if (custom) time.value = 'custom';
  else {
    if (![...time.options].some((o) => o.value === last)) time.append(h('option', { value: last }, `Last ${last}`));
    time.value = last;
  }
  document.body.classList.toggle('custom-range', custom);
  // The custom range is entered in the zone times are shown in.
  $('f-from').value = p.get('from') ? zoneInput(p.get('from')) : '';
  $('f-to').value = p.get('to') ? zoneInput(p.get('to')) : '';
  for (const f of multiFields) $('f-' + f).value = p.getAll(f).join(', ');
  for (const f of singleFields) $('f-' + f).value = p.get(f) || '';
  $('f-violation').checked = p.get('violation') === 'true';
  $('f-dlp').checked = p.get('dlp') === 'flagged';
  $('f-min_cost').value = p.get('min_cost') || '';
  $('f-max_cost').value = p.get('max_cost') || '';
  const limit = $('f-limit');
  limit.value = p.get('limit') || defaultLimit;
  for (const th of document.querySelectorAll('#rows th[data-sort]')) {
    const on = (p.get('sort') || 'time') === th.dataset.sort;
    const asc = p.get('order') === 'asc';
    if (on) th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
}

// formParams reads the filters from the form, keeping the sort and page size of the URL;
// any change of filter goes back to the first page.
function formParams() {
  const cur = pageParams();
  const p = new URLSearchParams();
  const q = $('f-q').value.trim();
  if (q) p.set('q', q);
  const time = $('f-time').value;
  if (time === 'custom') {
    let from = $('f-from').value, to = $('f-to').value;
    if (!from && !to) {
      // Switching to a custom range starts from the range shown so far.
      const now = new Date();
      from = zoneInput(new Date(now - 24 * 3600e3));
      to = zoneInput(now);
    }
    if (from) p.set('from', fromZoneInput(from));
    if (to) p.set('to', fromZoneInput(to));
  } else {
    p.set('last', time);
  }
  for (const f of multiFields) {
    for (const v of $('f-' + f).value.split(',').map((s) => s.trim()).filter(Boolean)) p.append(f, v);
  }
  for (const f of singleFields) {
    if ($('f-' + f).value) p.set(f, $('f-' + f).value);
  }
  if ($('f-violation').checked) p.set('violation', 'true');
  if ($('f-dlp').checked) p.set('dlp', 'flagged');
  for (const f of ['min_cost', 'max_cost']) {
    if ($('f-' + f).value !== '') p.set(f, $('f-' + f).value);
  }
  for (const k of ['sort', 'order', 'limit', ...prefParams]) {
    if (cur.get(k)) p.set(k, cur.get(k));
  }
  return p;
}

function applyForm() {
  go(formParams());
}

// --- the table --------------------------------------------------------------------------

function actor(r) {
  if (r.record_type === 'approval' && known(r.approver)) return r.approver;
  return r.user_id || r.user_email || (r.record_type === 'access' ? 'anonymous' : dash);
}

function actionOrModel(r) {
  if (known(r.model)) return h('span', {}, h('span', { class: 'model' }, r.model), known(r.provider) ? h('span', { class: 'sub' }, ' ' + r.provider) : null);
  const act = r.action || r.operation || r.name || dash;
  if (known(r.tool_name)) return h('span', {}, act, h('code', { class: 'sub' }, ' ' + r.tool_name));
  return h('span', {}, act, known(r.category) && !String(act).startsWith(r.category) ? h('span', { class: 'sub' }, ' ' + r.category) : null);
}

function resultCell(r) {
  const out = [];
  if (known(r.result)) out.push(badge(r.result));
  if (r.record_type !== 'approval' && known(r.approval_status) && r.approval_status !== 'not_required' && r.approval_status !== r.result) {
    out.push(badge(r.approval_status, r.approval_status === 'pending' ? 'awaiting approval' : r.approval_status.replace(/_/g, ' ')));
  }
  if (r.policy_violation) out.push(badge('failed', 'violation'));
  if (known(r.dlp_result) && r.dlp_result !== 'clean') out.push(badge('redacted', 'DLP'));
  return out.length ? out : dash;
}

function rowElement(r) {
  const tok = tokens(r);
  const tr = h('tr', {
    tabindex: 0, class: r.record_type === 'access' ? 'row access-read' : 'row', dataset: { trace: r.trace_id, span: r.span_id },
    'aria-label': `${r.record_type || 'span'} ${r.name || r.action || ''} at ${fmtTime(r.start_time)}; press Enter for the detail`,
  },
  h('td', { class: 'time' }, timeEl(r.start_time)),
  h('td', {}, typeBadge(r.record_type)),
  h('td', {}, actor(r)),
  h('td', {}, r.agent_name || dash),
  h('td', {}, actionOrModel(r)),
  h('td', { class: 'result' }, resultCell(r)),
  h('td', { class: 'num', title: tok === null ? '' : `${fmtInt(r.input_tokens)} in, ${fmtInt(r.output_tokens)} out` }, tok === null ? dash : fmtInt(tok)),
  h('td', { class: 'num' }, fmtCost(r.cost_usd)),
  // Events and decisions are instants: a latency of 0 would say nothing.
  h('td', { class: 'num' }, r.record_type === 'event' || r.record_type === 'approval' ? dash : fmtMs(r.duration_ms)));
  return tr;
}

function openRow(tr) {
  detailOpener = tr;
  const p = pageParams();
  p.set('span', `${tr.dataset.trace}/${tr.dataset.span}`);
  go(p, { state: history.state || {} });
}

function onTableKey(ev) {
  const tr = ev.target.closest('tr.row');
  if (!tr) return;
  if (ev.key === 'Enter' || ev.key === ' ') {
    ev.preventDefault();
    openRow(tr);
  } else if (ev.key === 'ArrowDown' || ev.key === 'j') {
    ev.preventDefault();
    tr.nextElementSibling?.focus();
  } else if (ev.key === 'ArrowUp' || ev.key === 'k') {
    ev.preventDefault();
    tr.previousElementSibling?.focus();
  }
}

function showError(err) {
  const el = $('error');
  if (!err) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.textContent = err.message || String(err);
}

async function loadRows(p) {
  const api = searchParams(p);
  const limit = p.get('limit') || defaultLimit;
  api.set('limit', limit);
  if (p.get('cursor')) api.set('cursor', p.get('cursor'));
  const key = api.toString();
  if (key === searchKey) return;
  searchKey = key;
  rowsAbort?.abort();
  rowsAbort = new AbortController();
  const table = $('rows');
  table.dataset.state = 'loading';
  table.setAttribute('aria-busy', 'true');
  let page;
  try {
    page = await getJSON('/api/v1/spans', api, rowsAbort.signal);
  } catch (err) {
    if (err.name === 'AbortError') return;
    searchKey = null;
    showError(err);
    table.dataset.state = 'error';
    table.removeAttribute('aria-busy');
    return;
  }
  showError(null);
  noteSkipped($('integrity'), $('integrity-panel'), page);
  const tbody = clear(table.tBodies[0]);
  for (const r of page.spans) tbody.append(rowElement(r));
  if (!page.spans.length) tbody.append(h('tr', {}, h('td', { colspan: 9, class: 'empty' }, 'No records match these filters.')));
  const before = stack().length * Number(limit);
  const knownOffset = !p.get('cursor') || stack().length > 0;
  $('count').textContent = page.total === 0 ? 'No matching records'
    : `${fmtInt(page.total)} matching record${page.total === 1 ? '' : 's'}` +
      (page.spans.length ? (knownOffset ? ` · showing ${fmtInt(before + 1)}–${fmtInt(before + page.spans.length)}` : ` · showing ${page.spans.length}`) : '');
  $('count').dataset.total = page.total;
  $('page-label').textContent = knownOffset ? `Page ${stack().length + 1} of ${Math.max(1, Math.ceil(page.total / Number(limit)))}` : 'A later page';
  $('prev').disabled = !p.get('cursor');
  $('next').disabled = !page.next_cursor;
  $('next').dataset.cursor = page.next_cursor || '';
  table.dataset.query = key;
  table.dataset.state = 'ready';
  table.removeAttribute('aria-busy');
}

// --- the summary strip and chart --------------------------------------------------------

function figure(label, value, key, title) {
  return h('div', { title }, h('dt', {}, label), h('dd', { dataset: { figure: key } }, value));
}

function remember(listId, groups) {
  const dl = $(listId);
  const have = new Set([...dl.options].map((o) => o.value));
  for (const g of groups) {
    if (g.key !== null && !have.has(g.key)) dl.append(h('option', { value: g.key }));
  }
}

// completenessFigure says what the trail took in, refused and holds over the window's
// hours, as the ledger's tallies record them; the title lists the hours.
function completenessFigure(c) {
  const reasons = Object.entries(c.refused).sort(([a], [b]) => a.localeCompare(b));
  const refusedSum = reasons.reduce((n, [, v]) => n + v, 0);
  const why = reasons.length ? ` (${reasons.map(([k, v]) => `${k.replaceAll('_', '-')} ${fmtInt(v)}`).join(', ')})` : '';
  let text = `accepted ${fmtInt(c.accepted)} · refused ${fmtInt(refusedSum)}${why} · stored ${fmtInt(c.stored)}`;
  if (c.error) text = 'unavailable: ' + c.error;
  const hours = c.hours.map((hr) => {
    const refused = Object.values(hr.refused).reduce((n, v) => n + v, 0);
    const gap = hr.stored !== hr.expected ? ` — GAP: ${fmtInt(hr.expected)} expected` : '';
    return `${hr.hour}: accepted ${fmtInt(Object.values(hr.accepted).reduce((n, v) => n + v, 0))}, refused ${fmtInt(refused)}, stored ${fmtInt(hr.stored)}${gap}`;
  });
  const gaps = c.hours.filter((hr) => hr.stored !== hr.expected).length;
  const div = figure('Completeness', text, 'completeness',
    ['Per filing hour, from the signed ledger (auditctl verify checks the files on disk):', ...hours].join('\n'));
  if (gaps) div.dataset.gaps = String(gaps);
  return div;
}

async function loadSummary(p) {
  const api = searchParams(p);
  api.delete('sort');
  api.delete('order');
  const key = api.toString();
  if (key === summaryKey) return;
  summaryKey = key;
  summaryAbort?.abort();
  summaryAbort = new AbortController();
  const signal = summaryAbort.signal;
  const figures = $('summary-figures');
  const summary = $('summary');
  summary.dataset.state = 'loading';
  const stats = new URLSearchParams(api);
  stats.set('limit', '100');
  let st;
  try {
    st = await getJSON('/api/v1/stats', stats, signal);
  } catch (err) {
    if (err.name === 'AbortError') return;
    summaryKey = null;
    clear(figures).append(h('p', { class: 'error' }, 'Summary unavailable: ' + err.message));
    summary.dataset.state = 'error';
    return;
  }
  const t = st.total;
  const pending = (st.approvals && st.approvals.pending) || 0;
  clear(figures).append(
    figure('Total cost', fmtCost(t.cost_usd), 'cost', `${fmtInt(t.costed_calls)} of ${fmtInt(t.records)} records have a known cost`),
    figure('Calls', fmtInt(t.calls), 'calls', `LLM and tool calls; ${fmtInt(t.records)} records in all`),
    figure('Failure rate', fmtRate(st.failure_rate), 'failure_rate', `${fmtInt(t.failures)} failed`),
    figure('Block rate', fmtRate(st.block_rate), 'block_rate', `${fmtInt(t.blocked)} blocked`),
    figure('Violations', fmtInt(st.violations), 'violations'),
    figure('Awaiting approval', fmtInt(pending), 'pending'),
    figure('Tokens', fmtInt(t.input_tokens + t.output_tokens), 'tokens', `${fmtInt(t.input_tokens)} in, ${fmtInt(t.output_tokens)} out`));
  if (st.completeness) figures.append(completenessFigure(st.completeness));
  remember('agents', st.by_agent);
  remember('users', st.by_user);
  remember('models', st.by_model);
  figures.dataset.query = key;
  lastStats = st;
  const chart = $('chart');
  chart.dataset.state = 'loading';
  clear(chart).append(h('p', { class: 'empty' }, 'Loading…'));
  try {
    renderCostChart(chart, st);
    chart.dataset.query = key;
    chart.dataset.state = 'ready';
  } catch (err) {
    if (err.name === 'AbortError') return;
    clear(chart).append(h('p', { class: 'error' }, 'Chart unavailable: ' + err.message));
    chart.dataset.state = 'error';
  }
  summary.dataset.state = 'ready';
}

// --- detail panel and agent-run view ----------------------------------------------------

function traceHref(traceId) {
  const p = pageParams();
  p.delete('span');
  p.set('trace', traceId);
  return '?' + p;
}

function spanHref(traceId, spanId) {
  const p = pageParams();
  p.set('span', `${traceId}/${spanId}`);
  return '?' + p;
}

async function loadDetail(spanParam) {
  const panel = $('detail');
  if (spanParam === detailKey && !panel.hidden) return;
  detailKey = spanParam;
  const [traceId, spanId] = spanParam.split('/');
  const body = clear($('detail-body'));
  $('detail-title').textContent = 'Loading…';
  panel.hidden = false;
  panel.dataset.state = 'loading';
  document.body.classList.add('detail-open');
  try {
    const { span } = await getJSON(`/api/v1/spans/${encodeURIComponent(traceId)}/${encodeURIComponent(spanId || '')}`);
    if (detailKey !== spanParam) return;
    const d = renderDetail(span, traceHref(span.trace_id), (id) => spanHref(span.trace_id, id));
    $('detail-title').textContent = d.title;
    body.append(...d.body);
    panel.dataset.span = span.span_id;
    panel.dataset.state = 'ready';
  } catch (err) {
    $('detail-title').textContent = 'Record unavailable';
    body.append(h('p', { class: 'error' }, err.message));
    panel.dataset.state = 'error';
  }
  $('detail-close').focus();
}

function closeDetail() {
  const p = pageParams();
  if (!p.has('span')) return;
  p.delete('span');
  go(p, { state: history.state || {} });
}

function hideDetail() {
  const panel = $('detail');
  if (panel.hidden) return;
  panel.hidden = true;
  detailKey = null;
  document.body.classList.remove('detail-open');
  const opener = detailOpener && document.contains(detailOpener) ? detailOpener : null;
  (opener || document.querySelector(`[data-span="${CSS.escape(panel.dataset.span || '')}"]`))?.focus();
}

async function loadTrace(traceId) {
  if (traceKey === traceId) return;
  traceKey = traceId;
  const body = clear($('trace-body'));
  const view = $('trace-view');
  view.dataset.state = 'loading';
  body.append(h('p', {}, 'Loading the agent run…'));
  try {
    const data = await getJSON(`/api/v1/traces/${encodeURIComponent(traceId)}`);
    if (traceKey !== traceId) return;
    clear(body).append(...renderTrace(data, (r) => {
      detailOpener = document.querySelector(`#trace-body [data-span="${CSS.escape(r.span_id)}"]`);
      const p = pageParams();
      p.set('span', `${r.trace_id}/${r.span_id}`);
      go(p, { state: history.state || {} });
    }));
    view.dataset.trace = traceId;
    view.dataset.state = 'ready';
    body.querySelector('.wf-row')?.focus();
  } catch (err) {
    traceKey = null;
    clear(body).append(h('p', { class: 'error' }, err.message));
    view.dataset.state = 'error';
  }
}

// --- reader's preferences ---------------------------------------------------------------

// showPrefs sets the zone and detailed mode of p on the page; a change of zone shows every
// time already on it, and the chart, in the new zone.
function showPrefs(p) {
  const before = getZone();
  setZone(p.get('tz'));
  const zone = getZone();
  $('tz-utc').setAttribute('aria-pressed', String(zone === 'utc'));
  $('tz-local').setAttribute('aria-pressed', String(zone === 'local'));
  const localName = fmtTime(new Date().toISOString()).split(' ').pop();
  $('tz-local').textContent = zone === 'local' ? `Local (${localName})` : 'Local';
  for (const el of document.querySelectorAll('.zone-name')) el.textContent = `(${zone === 'utc' ? 'UTC' : localName})`;
  document.body.dataset.zone = zone;
  $('detailed').checked = p.get('detailed') === 'true';
  if (zone !== before) {
    refreshTimes();
    if (lastStats && $('chart').dataset.state === 'ready') renderCostChart($('chart'), lastStats);
  }
}

function setPref(name, value) {
  const p = pageParams();
  if (value) p.set(name, value);
  else p.delete(name);
  if (name === 'detailed') {
    // Other rows match: back to the first page.
    p.delete('cursor');
    go(p);
  } else {
    go(p, { state: history.state || {} });
  }
}

// --- routing ----------------------------------------------------------------------------

function render() {
  const p = pageParams();
  showPrefs(p);
  if (!p.has('last') && !p.has('from') && !p.has('to')) {
    p.set('last', defaultLast);
    history.replaceState(history.state, '', '?' + p);
  }
  const trace = p.get('trace');
  $('search-view').hidden = !!trace;
  $('trace-view').hidden = !trace;
  if (trace) {
    const back = new URLSearchParams(p);
    back.delete('trace');
    back.delete('span');
    $('trace-back').href = '?' + back;
    document.title = 'Agent run · Audit trail';
    loadTrace(trace);
  } else {
    traceKey = null;
    document.title = p.get('q') ? `“${p.get('q')}” · Audit trail` : 'Audit trail';
    fillForm(p);
    loadRows(p);
    loadSummary(p);
  }
  if (p.get('span')) loadDetail(p.get('span'));
  else hideDetail();
}

function init() {
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyForm();
  });
  $('filters').addEventListener('change', (ev) => {
    if (ev.target.id === 'f-q') return; // the search box applies on Enter or the button
    if (ev.target.id === 'f-time') document.body.classList.toggle('custom-range', ev.target.value === 'custom');
    applyForm();
  });
  $('clear').addEventListener('click', () => {
    const cur = pageParams();
    const p = keepPrefs(new URLSearchParams());
    for (const k of ['sort', 'order', 'limit']) if (cur.get(k)) p.set(k, cur.get(k));
    go(p);
  });
  $('f-limit').addEventListener('change', (ev) => {
    const p = pageParams();
    p.set('limit', ev.target.value);
    p.delete('cursor');
    go(p);
  });
  for (const th of document.querySelectorAll('#rows th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => {
      const p = pageParams();
      const same = (p.get('sort') || 'time') === th.dataset.sort;
      p.set('sort', th.dataset.sort);
      p.set('order', same && p.get('order') !== 'asc' ? 'asc' : 'desc');
      p.delete('cursor');
      go(p);
    });
  }
  $('next').addEventListener('click', () => {
    const p = pageParams();
    const cursor = $('next').dataset.cursor;
    if (!cursor) return;
    const s = [...stack(), p.get('cursor') || ''];
    p.set('cursor', cursor);
    go(p, { state: { stack: s } });
  });
  $('prev').addEventListener('click', () => {
    const p = pageParams();
    const s = [...stack()];
    const prev = s.pop();
    if (prev) p.set('cursor', prev);
    else p.delete('cursor');
    go(p, { state: { stack: s } });
  });
  const tbody = $('rows').tBodies[0];
  tbody.addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr.row');
    if (tr) openRow(tr);
  });
  tbody.addEventListener('keydown', onTableKey);
  $('detail-close').addEventListener('click', closeDetail);
  $('tz-utc').addEventListener('click', () => setPref('tz', 'utc'));
  $('tz-local').addEventListener('click', () => setPref('tz', ''));
  $('detailed').addEventListener('change', (ev) => setPref('detailed', ev.target.checked ? 'true' : ''));
  $('export').addEventListener('click', () => {
    const p = searchParams(pageParams());
    runExport(p, $('export-format').value, $('export-status'));
  });
  const integrity = $('integrity'), panel = $('integrity-panel');
  integrity.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    integrity.setAttribute('aria-expanded', String(!panel.hidden));
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    if (!panel.hidden) {
      panel.hidden = true;
      integrity.setAttribute('aria-expanded', 'false');
      integrity.focus();
    } else if (!$('detail').hidden) {
      closeDetail();
    } else if (pageParams().get('trace')) {
      $('trace-back').click();
    }
  });
  // Links within the page change the state without a reload.
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest('a[href^="?"], a#home, a#trace-back');
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    const url = new URL(a.href);
    // The reader's zone and mode stay; everything else is the link's.
    const p = new URLSearchParams(url.search);
    const cur = pageParams();
    for (const k of prefParams) if (!p.has(k) && cur.get(k)) p.set(k, cur.get(k));
    go(p);
  });
  window.addEventListener('popstate', render);
  checkIntegrity(integrity, panel);
  render();
}

init();
