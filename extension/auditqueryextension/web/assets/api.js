// The page's state lives in its URL; these are the names it shares with the API.

// Parameters of a search, as /api/v1/spans, /stats and /export take them.
export const filterParams = ['q', 'agent', 'user', 'model', 'category', 'action', 'result',
  'record_type', 'approval', 'policy', 'violation', 'dlp', 'min_cost', 'max_cost',
  'last', 'from', 'to'];

// Parameters of the page that are not filters.
export const viewParams = ['sort', 'order', 'limit', 'cursor', 'span', 'trace', 'tz', 'detailed'];

// Preferences of the page's reader, kept across changes of filters: the zone times are
// shown in (tz=utc, else local) and detailed mode (detailed=true).
export const prefParams = ['tz', 'detailed'];

// The record types of the trail; in detailed mode a search names them all, access reads
// included, which the API leaves out unless record_type asks for them.
const allRecordTypes = ['span', 'event', 'approval', 'access'];

export const defaultLast = '24h';

// searchParams returns the API parameters of the page's URL: the filters, sort and order
// ("last=all" on the page means no time bound; detailed mode asks for every record type).
export function searchParams(page) {
  const p = new URLSearchParams();
  for (const k of filterParams) {
    for (const v of page.getAll(k)) {
      if (v === '' || (k === 'last' && v === 'all')) continue;
      p.append(k, v);
    }
  }
  if (page.get('detailed') === 'true' && !p.has('record_type')) {
    for (const t of allRecordTypes) p.append('record_type', t);
  }
  for (const k of ['sort', 'order']) {
    if (page.get(k)) p.set(k, page.get(k));
  }
  return p;
}

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function getJSON(path, params, signal) {
  const url = params && [...params.keys()].length ? `${path}?${params}` : path;
  const resp = await fetch(url, { signal, headers: { Accept: 'application/json' } });
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new APIError(resp.status, `${path}: ${resp.status} ${resp.statusText}`);
  }
  if (!resp.ok) throw new APIError(resp.status, body.error || `${path}: ${resp.status}`);
  return body;
}
