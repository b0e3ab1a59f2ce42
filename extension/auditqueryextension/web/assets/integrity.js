// The integrity badge: the trail checked against its signed ledger (GET /api/v1/verify).

import { getJSON } from './api.js';
import { h, clear, fmtInt } from './dom.js';

export async function checkIntegrity(button, panel) {
  button.className = 'integrity checking';
  button.textContent = 'Checking integrity…';
  let rep;
  try {
    rep = await getJSON('/api/v1/verify');
  } catch (err) {
    button.className = 'integrity unknown';
    button.textContent = 'Integrity: not checked';
    button.dataset.intact = 'unknown';
    clear(panel).append(h('h2', {}, 'The check could not run'), h('p', {}, err.message));
    return;
  }
  button.dataset.intact = String(rep.intact);
  button.className = 'integrity ' + (rep.intact ? 'intact' : 'broken');
  // A member or tenant admin gets the verdict only: no counts, no findings.
  const full = rep.findings !== undefined;
  const findings = rep.findings || [];
  button.textContent = rep.intact ? '✔ Trail intact' : full ? `✖ Integrity: ${findings.length} problem${findings.length === 1 ? '' : 's'}` : '✖ Integrity: problems found';
  clear(panel).append(...[
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
