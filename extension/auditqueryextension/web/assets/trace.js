// The agent-run view: every row of a trace as a waterfall, parents above their children,
// with approvals and policy blocks marked, and the run's totals.

import { h, known, timeEl, fmtCost, fmtMs, fmtInt, badge, typeBadge } from './dom.js';

// treeOrder lists rows depth first, children in start order; a row whose parent is not in
// the trace is a root.
function treeOrder(rows) {
  const ids = new Set(rows.map((r) => r.span_id));
  const children = new Map();
  const roots = [];
  for (const r of rows) {
    if (known(r.parent_span_id) && ids.has(r.parent_span_id) && r.parent_span_id !== r.span_id) {
      if (!children.has(r.parent_span_id)) children.set(r.parent_span_id, []);
      children.get(r.parent_span_id).push(r);
    } else {
      roots.push(r);
    }
  }
  const out = [];
  const seen = new Set();
  const visit = (r, depth) => {
    if (seen.has(r)) return;
    seen.add(r);
    out.push({ row: r, depth });
    for (const c of children.get(r.span_id) || []) visit(c, depth + 1);
  };
  roots.forEach((r) => visit(r, 0));
  rows.forEach((r) => visit(r, 0)); // rows on a parent cycle
  return out;
}

function marks(r) {
  const out = [];
  if (r.record_type === 'approval') {
    out.push(badge(r.result || r.approval_status || 'pending', `${(r.result || r.approval_status || '').replace(/_/g, ' ')}${known(r.approver) ? ' by ' + r.approver : ''}`));
  } else {
    if (r.policy_decision === 'block' || r.result === 'blocked') out.push(badge('blocked', 'blocked' + (known(r.policy_rule) ? ': ' + r.policy_rule : '')));
    if (r.policy_decision === 'require_approval' || (known(r.approval_status) && r.approval_status !== 'not_required')) {
      out.push(badge(r.approval_status || 'pending', 'approval: ' + String(r.approval_status || 'pending').replace(/_/g, ' ')));
    }
    if (r.result && !['success', 'blocked'].includes(r.result)) out.push(badge(r.result));
    if (r.policy_violation) out.push(badge('failed', 'violation'));
  }
  return out;
}

// renderTrace returns the view of one agent run; onOpen(row) opens a row's detail.
export function renderTrace(data, onOpen) {
  const rows = data.spans;
  const starts = rows.map((r) => Date.parse(r.start_time));
  const ends = rows.map((r, i) => (known(r.end_time) ? Date.parse(r.end_time) : starts[i]));
  const t0 = Math.min(...starts);
  const t1 = Math.max(...ends, t0 + 1);
  const total = t1 - t0;
  const tt = data.totals || {};
  const agent = rows.find((r) => known(r.agent_name))?.agent_name;
  const user = rows.find((r) => known(r.user_id) && r.record_type !== 'approval')?.user_id;

  const head = h('div', { class: 'trace-head' },
    h('h2', {}, 'Agent run', agent ? ` · ${agent}` : '', user ? ` · ${user}` : ''),
    h('p', { class: 'trace-id' }, 'Trace ', h('code', {}, data.trace_id)),
    h('dl', { class: 'figures', id: 'trace-totals' },
      h('div', {}, h('dt', {}, 'Rows'), h('dd', { 'data-total': 'spans' }, fmtInt(tt.spans))),
      h('div', {}, h('dt', {}, 'Duration'), h('dd', {}, fmtMs(total))),
      h('div', {}, h('dt', {}, 'Cost'), h('dd', { 'data-total': 'cost_usd', title: `${tt.costed_spans} of ${tt.spans} rows have a known cost` },
        fmtCost(tt.cost_usd), tt.costed_spans < rows.filter((r) => r.category === 'llm').length ? ' (partial)' : '')),
      h('div', {}, h('dt', {}, 'Input tokens'), h('dd', { 'data-total': 'input_tokens' }, fmtInt(tt.input_tokens))),
      h('div', {}, h('dt', {}, 'Output tokens'), h('dd', { 'data-total': 'output_tokens' }, fmtInt(tt.output_tokens))),
      h('div', {}, h('dt', {}, 'Started'), h('dd', {}, timeEl(tt.start_time)))));

  const list = h('ol', { class: 'waterfall', 'aria-label': 'Rows of the run, parents before their children' });
  for (const { row: r, depth } of treeOrder(rows)) {
    const s = Date.parse(r.start_time);
    const e = known(r.end_time) ? Date.parse(r.end_time) : s;
    const bar = h('span', { class: 'bar ' + barClass(r) });
    const point = e - s < total / 400;
    bar.style.left = (((s - t0) / total) * 100).toFixed(3) + '%';
    bar.style.width = point ? '' : (((e - s) / total) * 100).toFixed(3) + '%';
    if (point) bar.classList.add('point');
    const label = h('span', { class: 'wf-label' },
      typeBadge(r.record_type),
      h('span', { class: 'wf-name' }, r.name || [r.category, r.action].filter(known).join(' ')),
      known(r.model) && !(r.name || '').includes(r.model) ? h('span', { class: 'wf-sub' }, r.model) : null,
      known(r.tool_name) && !(r.name || '').includes(r.tool_name) ? h('span', { class: 'wf-sub' }, r.tool_name) : null,
      marks(r));
    label.style.paddingLeft = (depth * 1.1).toFixed(1) + 'rem';
    const li = h('li', {
      class: 'wf-row', tabindex: 0, dataset: { trace: r.trace_id, span: r.span_id, type: r.record_type || 'span' },
      onclick: () => onOpen(r),
      onkeydown: (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onOpen(r); }
        if (ev.key === 'ArrowDown') { ev.preventDefault(); li.nextElementSibling?.focus(); }
        if (ev.key === 'ArrowUp') { ev.preventDefault(); li.previousElementSibling?.focus(); }
      },
    }, label,
    h('span', { class: 'wf-track' }, bar),
    // An instant (an event, a decision) shows when it happened in the run.
    h('span', { class: 'wf-dur' }, point && (r.record_type === 'event' || r.record_type === 'approval') ? 'at +' + fmtMs(s - t0) : fmtMs(r.duration_ms ?? e - s)),
    h('span', { class: 'wf-cost' }, known(r.cost_usd) ? fmtCost(r.cost_usd) : ''));
    list.append(li);
  }
  const scale = h('div', { class: 'wf-scale', 'aria-hidden': 'true' }, h('span', {}, 'Row'),
    h('span', { class: 'wf-ticks' }, h('span', {}, '0'), h('span', {}, fmtMs(total / 2)), h('span', {}, fmtMs(total))),
    h('span', { class: 'wf-dur' }, 'Duration'), h('span', { class: 'wf-cost' }, 'Cost'));
  return [head, scale, list];
}

function barClass(r) {
  if (r.record_type === 'approval') return 'approval';
  if (r.record_type === 'event') return 'event';
  if (r.policy_decision === 'block' || r.result === 'blocked') return 'blocked';
  if (r.result === 'failed' || r.status_code === 'error' || r.result === 'denied') return 'failed';
  if (r.policy_decision === 'require_approval') return 'gated';
  return r.category === 'llm' ? 'llm' : (r.category === 'tool' ? 'tool' : 'other');
}
