// Export of every row the filters select. A small export comes back at once (200) and is
// saved; a large one becomes a job (202) whose progress is polled until its file is ready.

import { h, clear, fmtInt, fmtTime } from './dom.js';

const pollMs = 1000;
// run counts exports started; a newer one takes over the status line from an older one.
let run = 0;

function fileName(resp, format) {
  const m = /filename="?([^";]+)"?/.exec(resp.headers.get('Content-Disposition') || '');
  return m ? m[1] : `audit-export.${format}`;
}

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function errorOf(resp) {
  try {
    return (await resp.json()).error || `${resp.status} ${resp.statusText}`;
  } catch {
    return `${resp.status} ${resp.statusText}`;
  }
}

// runExport exports filters (API parameters) as format, reporting in statusEl.
export async function runExport(filters, format, statusEl) {
  const mine = ++run;
  const p = new URLSearchParams(filters);
  p.set('format', format);
  statusEl.hidden = false;
  delete statusEl.dataset.job;
  statusEl.dataset.state = 'running';
  clear(statusEl).append(h('span', {}, `Preparing the ${format.toUpperCase()} export…`));
  let resp;
  try {
    resp = await fetch('/api/v1/export?' + p);
  } catch (err) {
    return fail(statusEl, String(err));
  }
  if (mine !== run) return;
  if (resp.status === 202) {
    return followJob(await resp.json(), statusEl, () => mine === run);
  }
  if (!resp.ok) return fail(statusEl, await errorOf(resp));
  const name = fileName(resp, format);
  const blob = await resp.blob();
  if (mine !== run) return;
  save(blob, name);
  statusEl.dataset.state = 'done';
  clear(statusEl).append(h('span', { class: 'badge ok' }, 'downloaded'), ` ${name} (${fmtInt(blob.size)} bytes)`);
}

function fail(statusEl, msg) {
  statusEl.dataset.state = 'failed';
  clear(statusEl).append(h('span', { class: 'badge bad' }, 'export failed'), ' ', msg);
}

// followJob shows a job's progress until it is done, failed or expired, or until current()
// says a newer export took over.
async function followJob(job, statusEl, current) {
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Export progress' });
  const text = h('span', { class: 'job-text' });
  const state = h('span', { class: 'badge wait' });
  const link = h('span', { class: 'job-link' });
  clear(statusEl).append(h('span', {}, 'Export job ', h('code', {}, job.id), ' '), state, ' ', bar, ' ', text, ' ', link);
  statusEl.dataset.job = job.id;
  for (;;) {
    state.textContent = job.status;
    state.className = 'badge ' + ({ done: 'ok', failed: 'bad', expired: 'muted' }[job.status] || 'wait');
    const expected = Number(job.rows_expected) || 0;
    const written = Number(job.rows_written) || 0;
    bar.max = Math.max(expected, 1);
    bar.value = job.status === 'done' ? bar.max : Math.min(written, bar.max);
    text.textContent = `${fmtInt(written)} of ${fmtInt(expected)} rows`;
    if (job.status === 'done') {
      statusEl.dataset.state = 'done';
      clear(link).append(h('a', { href: job.download_url, download: `${job.name || job.id}.${job.format || 'export'}`, class: 'primary-link', id: 'job-download' },
        'Download'), job.sha256 ? h('span', { class: 'sha' }, ` SHA-256 ${job.sha256}`) : null,
      job.expires ? h('span', { class: 'muted' }, ` · available until ${fmtTime(job.expires)}`) : null);
      return;
    }
    if (job.status === 'failed' || job.status === 'expired') {
      statusEl.dataset.state = job.status;
      clear(link).append(job.error || (job.status === 'expired' ? 'The file is no longer kept.' : ''));
      return;
    }
    await new Promise((r) => setTimeout(r, pollMs));
    if (!current()) return;
    const resp = await fetch(job.status_url || `/api/v1/exports/${encodeURIComponent(job.id)}`);
    if (!current()) return;
    if (!resp.ok) return fail(statusEl, await errorOf(resp));
    const next = await resp.json();
    job = { ...next, status_url: next.status_url || job.status_url };
  }
}
