// Test a URL: POST /api/v1/resolutions as a page. The request (method, URL, headers) is kept in the
// page URL's fragment (#/test?method=GET&url=...), so a link to the page shows the same answer;
// the API key is never in it.

import { api, ApiError } from './api.js';
import { field, fill, h, input, notice, route, select, showErrors } from './dom.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function parseHeaders(text) {
  const headers = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const at = line.indexOf(':');
    if (at < 0) headers[line.trim()] = '';
    else headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}

function ruleLine(rule) {
  if (!rule) return 'none';
  const source = rule.from ?? `regex: ${rule.from_regex}`;
  return [h('code', null, source), ' → ', h('code', null, rule.to), ` (${rule.status})`,
    rule.id ? [' ', h('a', { href: `#/rules/edit/${rule.id}` }, 'open the rule')] : null];
}

export async function render(main, { params, stale }) {
  const method = params.get('method') || 'GET';
  const url = params.get('url') || '';
  const headerText = params.get('headers') || '';
  const methodField = field('Method', select(METHODS.includes(method) ? METHODS : [...METHODS, method], method), { name: 'method' });
  const urlField = field('URL', input({ value: url, placeholder: 'http://api.example.com/api/v1/users/42?x=1 or /api/v1/users/42', required: true }),
    { name: 'url', hint: 'An absolute http(s) URL or a path.' });
  const headersField = field('Request headers', h('textarea', { rows: 3, value: headerText, spellcheck: 'false' }),
    { name: 'headers', hint: 'One "Name: value" a line; Host, X-Forwarded-Proto and X-Forwarded-Host count, as at the gateway.' });
  urlField.row.classList.add('wide');
  const form = h('form', { class: 'card', novalidate: true, 'aria-label': 'The request to test' },
    h('div', { class: 'form-errors', tabindex: '-1' }),
    h('div', { class: 'grid' }, methodField.row, urlField.row, headersField.row),
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Test')));
  const result = h('section', { class: 'result', 'aria-live': 'polite', 'aria-label': 'Result' });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = route('#/test', { method: methodField.input.value, url: urlField.input.value.trim(),
      headers: headersField.input.value.trim() });
    if (location.hash === next) run();
    else location.hash = next;  // the page URL holds the request: shareable, and the back button works
  });
  fill(main, h('h1', null, 'Test a URL'),
    h('p', null, 'How the gateway would answer a request right now: the rule that matches and why, the rules it beat, the exact response. Nothing is sent to the gateway and nothing is stored.'),
    form, result);

  async function run() {
    fill(result, h('p', null, 'Testing…'));
    let data;
    try {
      ({ data } = await api('POST', '/api/v1/resolutions', { body: {
        url: urlField.input.value.trim(), method: methodField.input.value, headers: parseHeaders(headersField.input.value),
      } }));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      result.replaceChildren();
      showErrors(form, error);
      return;
    }
    if (stale()) return;
    const response = data.response;
    const considered = data.considered.filter((c) => c.verdict !== 'chosen');
    fill(result,
      h('h2', null, 'Result'),
      data.rule ? notice('ok', 'Matched: ', ruleLine(data.rule)) : notice('warn', `No rule matched (${data.outcome}).`),
      h('dl', { class: 'facts' },
        h('dt', null, 'Request'), h('dd', null, h('code', null, `${data.request.method} ${data.request.path}${data.request.query ? `?${data.request.query}` : ''}`),
          data.request.host ? ` on host ${data.request.host}` : ''),
        h('dt', null, 'Normalised path'), h('dd', null, h('code', null, data.normalisedPath ?? '—')),
        h('dt', null, 'Outcome'), h('dd', null, data.outcome),
        h('dt', null, 'Why'), h('dd', null, whyText(data)),
        Object.keys(data.values || {}).length ? [h('dt', null, 'Placeholder values'),
          h('dd', null, Object.entries(data.values).map(([k, v]) => h('span', { class: 'pair' }, h('code', null, `${k} = ${v}`), ' ')))] : null),
      h('h3', null, 'Rules considered'),
      data.considered.length
        ? h('table', null, h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Rule'), h('th', { scope: 'col' }, 'Verdict'))),
          h('tbody', null, data.considered.map((c) => h('tr', null, h('td', null, ruleLine(c.rule)), h('td', null, c.verdict)))))
        : h('p', null, 'No rule has a source that matches this path.'),
      considered.length ? h('p', null, `${considered.length} rule(s) beaten or skipped, with the reason in the table.`) : null,
      h('h3', null, 'Response'),
      h('pre', { class: 'response', tabindex: '0', 'aria-label': 'The response' }, [`HTTP/1.1 ${response.status}`, ...response.headers.map(([k, v]) => `${k}: ${v}`), '',
        response.body].join('\n')));
  }

  if (url) await run();
}

function whyText(data) {
  if (!data.rule) return 'No enabled rule matches this method, path, host and query at this time.';
  const placeholders = Object.keys(data.values || {}).length;
  return `Its source matches the normalised path${placeholders ? ` (with ${placeholders} placeholder value(s))` : ''}, `
    + 'it answers this method, and it wins over the others by precedence (exact before pattern, more literal segments, priority, position).';
}
