// The integrity badge: the trail checked against its signed ledger (GET /api/v1/verify),
// and the sealed files the last search had to leave out because they could not be read.

import { getJSON } from './api.js';
import { h, clear, fmtInt } from './dom.js';

let report = null; // the last answer of /api/v1/verify, or an Error
let skipped = { count: 0, files: [] }; // what the last search left out

export async function checkIntegrity(button, panel) {
  button.className = 'integrity checking';
  button.textContent = 'Checking integrity…';
  try {
    report = await getJSON('/api/v1/verify');
  } catch (err) {
    report = err;
  }
  show(button, panel);
}

// noteSkipped takes a search's answer: its skipped_file_count (and, for an admin, its
// skipped_files) turn the badge red until a search leaves nothing out.
export function noteSkipped(button, panel, answer) {
  const count = answer.skipped_file_count || 0;
  if (count === skipped.count && count === 0) return;
  skipped = { count, files: answer.skipped_files || [] };
  if (report) show(button, panel);
}

function show(button, panel) {
  const unreadable = skipped.count
    ? [h('h2', {}, `${fmtInt(skipped.count)} unreadable file${skipped.count === 1 ? '' : 's'} left out of the results`),
       skipped.files.length
         ? h('ul', { class: 'findings skipped' }, skipped.files.map((f) => h('li', {}, h('code', {}, f.path), ' ', f.error)))
         : h('p', {}, 'The results miss their rows; an admin sees which files.')]
    : [];
  const note = skipped.count ? ` · ${fmtInt(skipped.count)} file${skipped.count === 1 ? '' : 's'} unreadable` : '';
  button.dataset.skipped = String(skipped.count);
  if (report instanceof Error) {
    button.className = 'integrity ' + (skipped.count ? 'broken' : 'unknown');
    button.textContent = (skipped.count ? '✖ ' : '') + 'Integrity: not checked' + note;
    button.dataset.intact = 'unknown';
    clear(panel).append(...unreadable, h('h2', {}, 'The check could not run'), h('p', {}, report.message));
    return;
  }
  const rep = report;
  button.dataset.intact = String(rep.intact);
  button.className = 'integrity ' + (rep.intact && !skipped.count ? 'intact' : 'broken');
  // A member or tenant admin gets the verdict only: no counts, no findings.
  const full = rep.findings !== undefined;
  const findings = rep.findings || [];
  const verdict = rep.intact ? 'Trail intact' : full ? `Integrity: ${findings.length} problem${findings.length === 1 ? '' : 's'}` : 'Integrity: problems found';
  button.textContent = (rep.intact && !skipped.count ? '✔ ' : '✖ ') + verdict + note;
  clear(panel).append(...[
    ...unreadable,
    h('h2', {}, rep.intact ? 'The trail is intact' : 'The trail has problems'),
    full
      ? h('p', {}, `${fmtInt(rep.entries)} ledger entries (${fmtInt(rep.signed_entries)} signed), ${fmtInt(rep.files)} files, ${fmtInt(rep.bytes)} bytes verified against the signed, hash-chained ledger.`)
      : h('p', {}, 'Verified against the signed, hash-chained ledger; the full report is for admins.'),
    !full ? null : findings.length
      ? h('ul', { class: 'findings' }, findings.map((f) => h('li', {}, h('code', {}, f.subject || ''), ' ', f.problem || JSON.stringify(f))))
      : h('p', { class: 'muted' }, 'No findings.'),
    (rep.notes || []).length ? h('ul', { class: 'notes' }, rep.notes.map((n) => h('li', {}, typeof n === 'string' ? n : JSON.stringify(n)))) : null,
    h('button', { type: 'button', class: 'link', onclick: () => checkIntegrity(button, panel) }, 'Check again'),
  ].filter(Boolean));
}
