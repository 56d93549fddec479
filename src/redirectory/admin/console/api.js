// The admin REST API, with the key from sessionStorage in `Authorization: Bearer`. The console
// uses this API and nothing else: every call here is one a script can make with the same key.

const STORAGE = 'redirectory.apiKey';

export function getKey() {
  return sessionStorage.getItem(STORAGE);
}

export function setKey(key) {
  sessionStorage.setItem(STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORAGE);
}

/** An answer that is not a success, with the API's error document (`errors[]`, each with `fields`). */
export class ApiError extends Error {
  constructor(status, body, headers) {
    const items = (body && Array.isArray(body.errors)) ? body.errors : [];
    super(items.map((e) => e.detail).join('; ') || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.items = items;
    this.headers = headers;
  }
}

/**
 * Call the API: api('GET', '/api/v1/rules', {query: {limit: 10}}). `body` is sent as JSON unless
 * `raw` is given (a file, sent as is with `contentType`). Resolves {status, data, headers};
 * rejects with ApiError for 4xx/5xx. A 401 signs the console out.
 */
export async function api(method, path, { query, body, raw, contentType, headers } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(name, String(value));
  }
  const sent = { Accept: 'application/json', 'Accept-Language': 'en', ...(headers || {}) };
  const key = getKey();
  if (key) sent.Authorization = `Bearer ${key}`;
  let payload;
  if (raw !== undefined) {
    payload = raw;
    sent['Content-Type'] = contentType || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    sent['Content-Type'] = contentType || 'application/json';
  }
  const response = await fetch(url, {
    method, headers: sent, body: payload, cache: 'no-store', credentials: 'omit', redirect: 'follow',
    referrerPolicy: 'no-referrer',
  });
  let data = null;
  const text = response.status === 204 || response.status === 304 ? '' : await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { text }; }
  }
  if (response.status >= 400) {
    const error = new ApiError(response.status, data, response.headers);
    if (response.status === 401) window.dispatchEvent(new CustomEvent('console:unauthorized', { detail: error }));
    throw error;
  }
  return { status: response.status, data, headers: response.headers, url: response.url };
}

/** Every item of a collection, page by page (at most `max`). */
export async function all(path, query = {}, max = 5000) {
  const items = [];
  let offset = 0;
  while (items.length < max) {
    const { data } = await api('GET', path, { query: { ...query, limit: 1000, offset } });
    items.push(...data.items);
    const next = data.metadata && data.metadata.pagination ? data.metadata.pagination.nextOffset : null;
    if (next === null || next === undefined || data.items.length === 0) break;
    offset = next;
  }
  return items;
}
