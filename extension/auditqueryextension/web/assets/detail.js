// The detail of one record: everything the trail holds about it, laid out for a reviewer.

import { h, known, dash, timeEl, fmtCost, fmtMs, fmtInt, badge, typeBadge, parseJSON, pretty } from './dom.js';

function val(v) {
  return known(v) ? String(v) : dash;
}

// fields renders label/value pairs; values may be nodes.
function fields(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [
    h('dt', {}, k), h('dd', {}, v instanceof Node ? v : val(v)),
  ]));
}

function section(title, ...body) {
  return h('section', { class: 'detail-section', 'aria-label': title }, h('h3', {}, title), ...body);
}

function objectOf(v) {
  const o = parseJSON(v);
  return o && typeof o === 'object' ? o : {};
}

// textOf is the readable text of a message's content: a string, or the text parts of a
// list of parts.
function contentNodes(content) {
  if (typeof content === 'string') return [h('div', { class: 'msg-text' }, content)];
  if (!Array.isArray(content)) return content === undefined ? [] : [h('pre', {}, pretty(content))];
  return content.map((part) => {
    if (typeof part === 'string') return h('div', { class: 'msg-text' }, part);
    if (part.type === 'text' || (part.content !== undefined && !part.type)) {
      return h('div', { class: 'msg-text' }, String(part.content ?? part.text ?? ''));
    }
    if (part.type === 'tool_call') return toolCall(part.name, part.arguments, part.id);
    if (part.type === 'tool_call_response') {
      return h('div', { class: 'tool-call' }, h('div', { class: 'tool-head' }, 'Tool result', part.id ? ` (${part.id})` : ''),
        h('pre', {}, pretty(part.response ?? part.result ?? '')));
    }
    return h('pre', {}, pretty(part));
  });
}

function toolCall(name, args, id) {
  return h('div', { class: 'tool-call' },
    h('div', { class: 'tool-head' }, 'Tool call ', h('code', {}, name || '?'), id ? ` (${id})` : ''),
    known(args) ? h('pre', {}, pretty(args)) : null);
}

function isMessages(v) {
  return Array.isArray(v) && v.length > 0 && v.every((m) => m && typeof m === 'object' && 'role' in m);
}

// payload shows a masked request or response: chat messages as a conversation, other
// JSON pretty-printed, anything else as text.
function payload(v) {
  if (!known(v)) return h('p', { class: 'empty' }, 'Not recorded.');
  const parsed = parseJSON(v);
  const msgs = isMessages(parsed) ? parsed : (parsed && isMessages(parsed.messages) ? parsed.messages : null);
  if (!msgs) return h('pre', { class: 'payload' }, pretty(v));
  return h('ol', { class: 'messages' }, msgs.map((m) => h('li', { class: 'msg role-' + String(m.role).replace(/\W/g, '') },
    h('div', { class: 'role' }, String(m.role)),
    contentNodes(m.content ?? m.parts),
    (m.tool_calls || []).map((c) => toolCall(c.function?.name ?? c.name, c.function?.arguments ?? c.arguments, c.id)))));
}

// changeTable shows {"field": {"old": …, "new": …}} as old → new rows, other JSON as is.
function changeTable(changes) {
  if (!changes || typeof changes !== 'object' || Array.isArray(changes)) return h('pre', {}, pretty(changes));
  const show = (v) => (v === undefined ? dash : typeof v === 'string' ? v : JSON.stringify(v));
  return h('table', { class: 'attrs changes' }, h('tbody', {}, Object.keys(changes).sort().map((k) => {
    const c = changes[k];
    const pair = c && typeof c === 'object' && ('old' in c || 'new' in c);
    return h('tr', {}, h('th', { scope: 'row' }, k),
      h('td', {}, pair ? [h('del', {}, show(c.old)), ' → ', h('ins', {}, show(c.new))] : show(c)));
  })));
}

function attrTable(obj) {
  const keys = Object.keys(obj).sort();
  if (!keys.length) return h('p', { class: 'empty' }, 'None.');
  return h('table', { class: 'attrs' }, h('tbody', {}, keys.map((k) => {
    const v = obj[k];
    return h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, typeof v === 'string' ? v : JSON.stringify(v)));
  })));
}

// fromRun shows a context value with where it comes from: a span's own value as it is,
// one inherited from an ancestor in its run (context_source names that span for each
// column) with a link to that span.
function fromRun(value, cols, source, spanHref) {
  const from = cols.map((c) => source[c]).find(known);
  if (!from || value === dash) return value;
  return h('span', {}, value, ' ', h('span', { class: 'inherited', 'data-from': from },
    '(inherited from span ', h('a', { href: spanHref(from) }, h('code', {}, from)), ')'));
}

// renderDetail returns the body of the detail panel for row, and its title; spanHref
// links to another span of its trace by id.
export function renderDetail(row, traceHref, spanHref) {
  const attrs = objectOf(row.attributes);
  const source = objectOf(row.context_source);
  const gated = row.record_type === 'approval' || (known(row.approval_status) && row.approval_status !== 'not_required') || known(row.approval_id);
  const body = [];

  body.push(h('div', { class: 'detail-badges' }, typeBadge(row.record_type),
    known(row.result) ? badge(row.result) : null,
    known(row.policy_decision) && row.policy_decision !== 'none' ? badge(row.policy_decision, 'policy: ' + row.policy_decision.replace(/_/g, ' ')) : null,
    gated && known(row.approval_status) ? badge(row.approval_status, 'approval: ' + row.approval_status.replace(/_/g, ' ')) : null,
    row.policy_violation ? badge('failed', 'violation') : null,
    known(row.dlp_result) && row.dlp_result !== 'clean' ? badge('redacted', 'DLP ' + row.dlp_result) : null),
  h('p', { class: 'run-link' }, h('a', { href: traceHref, id: 'open-trace' },
    row.record_type === 'event' || row.record_type === 'access' ? 'Open its trace →' : 'Open the whole agent run →')));

  if (gated) {
    body.push(section('Approval',
      fields([
        ['Status', known(row.approval_status) ? badge(row.approval_status) : dash],
        ['Decided by', row.approver],
        ['Decided at', known(row.approval_decided_at) ? timeEl(row.approval_decided_at) : (row.record_type === 'approval' ? timeEl(row.start_time) : dash)],
        ['Reason', row.approval_reason],
        ['Approval id', row.approval_id],
      ])));
  }

  if (row.record_type === 'event') {
    const changes = parseJSON(attrs['audit.changes']) ?? attrs['audit.changes'];
    body.push(section('Event', fields([
      ['Actor', [row.user_id, row.user_email, attrs['audit.actor.type']].filter(known).join(' · ') || dash],
      ['Resource', [attrs['audit.resource.type'], attrs['audit.resource.id']].filter(known).join(' ') || dash],
      ['Description', attrs['audit.description']],
      ['Reason', attrs['audit.reason']],
    ]), known(changes) ? [h('h4', {}, 'Changes'), changeTable(changes)] : null));
  }

  body.push(section('Timing', fields([
    ['Start', timeEl(row.start_time)],
    ['End', timeEl(row.end_time)],
    ['Total', row.record_type === 'event' || row.record_type === 'approval' ? 'an instant' : fmtMs(row.duration_ms)],
    ['Time to first token', fmtMs(row.ttft_ms)],
    ['Recorded', timeEl(row.ingest_time)],
  ])));

  if (row.category === 'llm' || known(row.model) || known(row.input_tokens) || known(row.cost_usd)) {
    body.push(section('Tokens and cost', fields([
      ['Provider', row.provider],
      ['Model', row.model],
      ['Input tokens', fmtInt(row.input_tokens)],
      ['Output tokens', fmtInt(row.output_tokens)],
      ['Cache read', fmtInt(row.cache_read_tokens)],
      ['Cache write', fmtInt(row.cache_write_tokens)],
      ['Reasoning', fmtInt(row.reasoning_tokens)],
      ['Cost', known(row.cost_usd) ? fmtCost(row.cost_usd) : 'unknown'],
      ['Cost source', row.cost_source],
      ['Price table', row.price_table],
    ])));
  }

  body.push(section('Policy and data protection', fields([
    ['Decision', known(row.policy_decision) ? badge(row.policy_decision) : dash],
    ['Rule', row.policy_rule],
    ['Violation', known(row.policy_violation) ? (row.policy_violation ? 'yes' : 'no') : dash],
    ['Risk level', row.risk_level],
    ['Dry run', known(row.dry_run) ? (row.dry_run ? 'yes' : 'no') : dash],
    ['DLP result', known(row.dlp_result) ? badge(row.dlp_result) : dash],
    ['Credentials masked', known(row.credential_masked) ? (row.credential_masked ? 'yes' : 'no') : dash],
  ])));

  body.push(section('Context', fields([
    ['Agent', fromRun([row.agent_name, row.agent_id].filter(known).join(' · ') || dash, ['agent_name', 'agent_id'], source, spanHref)],
    ['User', fromRun([row.user_id, row.user_email].filter(known).join(' · ') || dash, ['user_id', 'user_email'], source, spanHref)],
    ['IP', row.ip],
    ['User agent', row.user_agent],
    ['Service', row.service_name],
    ['Environment', row.environment],
    ['Tenant', fromRun(val(row.tenant_id), ['tenant_id'], source, spanHref)],
    ['Category / action', [row.category, row.action].filter(known).join(' / ') || dash],
    known(row.resource_type) || known(row.resource_id) ? ['Resource', [row.resource_type, row.resource_id].filter(known).join(' / ')] : null,
    known(row.session_id) ? ['Session', row.session_id] : null,
    known(row.execution_id) ? ['Execution', row.execution_id] : null,
    known(row.idempotency_key) ? ['Idempotency key', row.idempotency_key] : null,
    ['Operation', row.operation],
    ['Status', [row.status_code, row.status_message].filter(known).join(': ') || dash],
    ['Trace / span', h('code', {}, `${row.trace_id} / ${row.span_id}`)],
    ['Parent span', row.parent_span_id],
  ])));

  if (known(row.tool_name)) {
    body.push(section('Tool call',
      fields([['Tool', h('code', {}, row.tool_name)], ['Call id', attrs['gen_ai.tool.call.id']]]),
      h('h4', {}, 'Arguments'), payload(row.request ?? attrs['gen_ai.tool.call.arguments']),
      h('h4', {}, 'Result'), payload(row.response ?? attrs['gen_ai.tool.call.result'])));
  } else {
    body.push(section('Request (masked)', payload(row.request)));
    body.push(section('Response (masked)', payload(row.response)));
  }

  const flags = parseJSON(row.flags) ?? row.flags;
  if (known(flags) && (!Array.isArray(flags) || flags.length)) {
    body.push(section('Validation flags', h('pre', {}, pretty(flags))));
  }
  body.push(section('Attributes', attrTable(attrs)));
  body.push(section('Resource attributes', attrTable(objectOf(row.resource_attributes))));
  const events = parseJSON(row.events) ?? row.events;
  if (Array.isArray(events) && events.length) body.push(section('Span events', h('pre', {}, pretty(events))));
  const links = parseJSON(row.links) ?? row.links;
  if (Array.isArray(links) && links.length) body.push(section('Links', h('pre', {}, pretty(links))));
  body.push(h('details', { class: 'raw' }, h('summary', {}, 'The whole record as JSON'), h('pre', {}, JSON.stringify(row, null, 2))));

  const title = row.name || [row.category, row.action].filter(known).join(' ') || 'Record';
  return { title, body };
}
