// Rules: the table (GET /api/v1/rules, hits from GET /api/v1/stats/rules), and the create / edit
// forms (POST, PUT with If-Match, DELETE with If-Match). Validation is the API's: its field errors
// are shown next to the field they name.

import { api, ApiError } from './api.js';
import {
  announce, button, clearErrors, confirmDialog, detailText, field, fill, h, input, notice, route, select, showErrors,
  when,
} from './dom.js';
import { LIFECYCLE_FIELDS, lifecycleFields, lifecycleText, linksText, phasesText } from './lifecycle.js';

const STATUSES = [[301, '301 Moved Permanently'], [308, '308 Permanent Redirect'], [307, '307 Temporary Redirect'],
  [303, '303 See Other'], [404, '404 Not redirected']];
const NOT_REDIRECTED = 404;
/** Fields of a rule's representation the server assigns: never sent back. */
const READ_ONLY = new Set(['uuid', 'position', 'revision', 'createdAt', 'updatedAt', 'metadata']);
const SORTABLE = { from: 'Source', to: 'Target', status: 'Status', priority: 'Priority', updatedAt: 'Updated' };
const FILTERS = ['q', 'status', 'method', 'host', 'tag', 'enabled'];
let flash = null;

/** A message shown once, on the next page drawn (after a create, an edit, a delete). */
export function setFlash(kind, ...children) {
  flash = notice(kind, ...children);
}

function takeFlash() {
  const shown = flash;
  flash = null;
  return shown;
}

export async function render(main, { parts, params, ctx, stale }) {
  if (parts[0] === 'new') return renderForm(main, null, params, stale);
  if (parts[0] === 'edit' && parts[1]) return renderForm(main, parts[1], params, stale);
  return renderList(main, params, ctx, stale);
}

// -- the table ----------------------------------------------------------------------------------

function sourceText(rule) {
  return rule.from !== null ? rule.from : `regex: ${rule.fromRegex}`;
}

function hostOf(rule) {
  const source = rule.from || '';
  if (source.startsWith('//')) return source.slice(2).split('/')[0];
  return 'any';
}

/** `{page_id: '1', ref: '*'}` as the form and the table write it: page_id=1&ref=*. */
function queryMatchText(match) {
  return match ? new URLSearchParams(match).toString().replaceAll('%2A', '*') : '';
}

/** The rule's query conditions in words, or null when it has none. */
export function conditionText(rule) {
  if (rule.queryMatch && Object.keys(rule.queryMatch).length) {
    return `only with ?${queryMatchText(rule.queryMatch)}${rule.queryExact ? ' and no other parameter' : ''}`;
  }
  return rule.queryExact ? 'only without a query' : null;
}

const PASS_WORDS = { all: 'the others', none: 'none', unmatched: 'all but the matched ones' };

/** The rule's query policy in words (null for `keep`, the default). */
export function policyText(query) {
  if (!query || query === 'keep') return null;
  if (query === 'drop') return 'query: dropped';
  if (typeof query !== 'object') return `query: ${query}`;
  const passes = query.pass ?? 'all';
  const parts = [];
  if (query.strip && query.strip.length) parts.push(`strip ${query.strip.join(', ')}`);
  parts.push(`pass ${Array.isArray(passes) ? `only ${passes.join(', ')}` : PASS_WORDS[passes] || passes}`);
  return `query: ${parts.join('; ')}`;
}

function targetCell(rule) {
  if (rule.status === NOT_REDIRECTED) {
    return h('td', null, h('span', { class: 'not-redirected' }, 'not redirected (404)'));
  }
  const policy = policyText(rule.query);
  return h('td', null, h('code', { class: 'target' }, rule.to), policy ? h('span', { class: 'query-policy' }, policy) : null);
}

function windowText(rule) {
  if (!rule.starts && !rule.ends) return 'always';
  if (rule.starts && rule.ends) return `${when(rule.starts)} to ${when(rule.ends)}`;
  return rule.starts ? `from ${when(rule.starts)}` : `until ${when(rule.ends)}`;
}

/** The Window cell: when the rule is active, then its later phases and its lifecycle, in words. */
function windowCell(rule) {
  const phases = phasesText(rule);
  const lifecycle = lifecycleText(rule);
  return h('td', null, windowText(rule),
    phases ? h('span', { class: 'phases-text' }, phases) : null,
    lifecycle ? h('span', { class: 'lifecycle-text' }, lifecycle) : null);
}

async function hitsByRule() {
  try {
    const { data } = await api('GET', '/api/v1/stats/rules', { query: { limit: 1000, unused: false } });
    return new Map(data.items.map((item) => [item.uuid, item]));
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return new Map();
    throw error;
  }
}

async function renderList(main, params, ctx, stale) {
  const limit = Number(params.get('limit')) || 25;
  const offset = Number(params.get('offset')) || 0;
  const sort = params.get('sort') || 'position+ASC';
  const query = { limit, offset, sort: sort.replace(' ', '+') };
  for (const name of FILTERS) if (params.get(name)) query[name] = params.get(name);
  const [{ data }, hits] = await Promise.all([api('GET', '/api/v1/rules', { query }), hitsByRule()]);
  if (stale()) return;
  const page = data.metadata.pagination;
  const [sortField, sortOrder] = sort.split(/[+ ]/);

  const state = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || '']));
  const link = (changes) => route('#/rules', { ...state, limit: limit === 25 ? '' : limit, sort: sort === 'position+ASC' ? '' : sort, offset, ...changes });

  const filterForm = h('form', { class: 'filters', role: 'search', 'aria-label': 'Find rules' });
  const q = field('Search', input({ type: 'search', value: state.q, placeholder: 'text in source, target or note' }), { name: 'q' });
  const status = field('Status', select([['', 'any'], ...STATUSES], state.status), { name: 'status' });
  const method = field('Method', input({ value: state.method, placeholder: 'GET', size: 8 }), { name: 'method' });
  const host = field('Host', input({ value: state.host, placeholder: 'api.example.com', size: 14 }), { name: 'host' });
  const tag = field('Tag', input({ value: state.tag, size: 10 }), { name: 'tag' });
  const enabled = field('Enabled', select([['', 'all'], ['true', 'enabled only'], ['false', 'disabled only']], state.enabled), { name: 'enabled' });
  const size = field('Per page', select([10, 25, 50, 100], limit), { name: 'limit' });
  append(filterForm, q.row, status.row, method.row, host.row, tag.row, enabled.row, size.row,
    h('p', { class: 'actions' }, h('button', { type: 'submit' }, 'Filter'), ' ', h('a', { href: '#/rules' }, 'Clear')));
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(filterForm));
    location.hash = route('#/rules', { ...values, limit: values.limit === '25' ? '' : values.limit,
      sort: sort === 'position+ASC' ? '' : sort });
  });

  const head = h('tr');
  const columns = [['from', 'Source'], ['to', 'Target'], ['status', 'Status'], [null, 'Methods'], [null, 'Hosts'],
    [null, 'Window'], [null, 'Hits'], [null, 'Last hit'], [null, 'Tags'], [null, 'Actions']];
  for (const [name, title] of columns) {
    if (name && SORTABLE[name]) {
      const current = sortField === name;
      const next = current && sortOrder === 'ASC' ? 'DESC' : 'ASC';
      const label = current ? `${title} (sorted ${sortOrder === 'ASC' ? 'ascending' : 'descending'})` : title;
      head.append(h('th', { scope: 'col', 'aria-sort': current ? (sortOrder === 'ASC' ? 'ascending' : 'descending') : null },
        h('a', { href: link({ sort: `${name}+${next}`, offset: 0 }), class: 'sort', 'data-sort': name },
          label, current ? (sortOrder === 'ASC' ? ' ▲' : ' ▼') : '')));
    } else {
      head.append(h('th', { scope: 'col' }, title));
    }
  }
  const body = h('tbody');
  for (const rule of data.items) {
    const stat = hits.get(rule.uuid);
    body.append(h('tr', { 'data-uuid': rule.uuid },
      h('td', null, h('code', { class: 'source' }, sourceText(rule)),
        conditionText(rule) ? h('span', { class: 'query-cond' }, conditionText(rule)) : null,
        rule.note ? h('span', { class: 'note' }, rule.note) : null),
      targetCell(rule),
      h('td', null, String(rule.status), rule.enabled ? null : h('span', { class: 'badge' }, ' disabled')),
      h('td', null, rule.methods ? rule.methods.join(', ') : 'any'),
      h('td', null, hostOf(rule)),
      windowCell(rule),
      h('td', { class: 'number' }, stat ? String(stat.hits) : '0'),
      h('td', null, stat ? when(stat.lastHit) : 'never'),
      h('td', null, rule.tags.length ? rule.tags.join(', ') : '—'),
      h('td', { class: 'row-actions' },
        h('a', { href: `#/rules/edit/${rule.uuid}`, 'aria-label': `Edit ${sourceText(rule)}` }, 'Edit'), ' ',
        h('a', { href: route('#/traffic', { rule: rule.uuid }), 'aria-label': `Traffic of ${sourceText(rule)}` }, 'Traffic'), ' ',
        button('Delete', () => deleteRule(rule, data.metadata.etags[rule.uuid]), {
          class: 'link danger', 'aria-label': `Delete ${sourceText(rule)}`,
        }))));
  }
  const first = page.totalCount ? offset + 1 : 0;
  const lastShown = offset + data.items.length;
  const caption = h('caption', null, page.totalCount
    ? `Rules ${first}–${lastShown} of ${page.totalCount}` : 'No rules match.');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of rules' },
    page.previousOffset !== null && page.previousOffset !== undefined
      ? h('a', { href: link({ offset: page.previousOffset }), rel: 'prev' }, '← Previous') : h('span', { class: 'disabled' }, '← Previous'),
    ` Page ${page.currentPage || 1} of ${page.pageCount || 1} `,
    page.nextOffset !== null && page.nextOffset !== undefined
      ? h('a', { href: link({ offset: page.nextOffset }), rel: 'next' }, 'Next →') : h('span', { class: 'disabled' }, 'Next →'));

  fill(main,
    h('div', { class: 'title-row' }, h('h1', null, 'Rules'), h('a', { href: '#/rules/new', class: 'button primary' }, 'New rule')),
    takeFlash(), filterForm,
    h('div', { class: 'table-wrap' }, h('table', { class: 'rules' }, caption, h('thead', null, head), body)),
    pager);
  void ctx;
}

function append(el, ...children) {
  el.append(...children);
  return el;
}

async function deleteRule(rule, etag) {
  const ok = await confirmDialog('Delete this rule?', [
    h('p', null, 'The gateway stops answering it within a second. The history keeps it: a restore brings it back.'),
    h('dl', null, h('dt', null, 'Source'), h('dd', null, h('code', null, sourceText(rule))),
      h('dt', null, 'Target'), h('dd', null, rule.status === NOT_REDIRECTED ? 'not redirected (404)' : h('code', null, rule.to)),
      h('dt', null, 'Status'), h('dd', null, String(rule.status))),
  ], 'Delete');
  if (!ok) return;
  try {
    await api('DELETE', `/api/v1/rules/${rule.uuid}`, { headers: { 'If-Match': etag } });
    setFlash('ok', 'Deleted the rule ', h('code', null, sourceText(rule)), '.');
  } catch (error) {
    const why = error instanceof ApiError && error.status === 412
      ? 'It changed since this page was loaded (412): look at it again before deleting it.' : error.message;
    setFlash('error', 'Not deleted: ', why);
  }
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

// -- the form -----------------------------------------------------------------------------------

const FORM_FIELDS = [
  ['from', 'Source path (from)', 'A path pattern: /old/{id} (one segment), /old/{rest:path} (the rest); //host/path for one host.'],
  ['fromRegex', 'Or a source regular expression (fromRegex)', 'RE2 syntax, instead of a path pattern.'],
  ['regexQuery', 'The regular expression reads the query too', 'It is matched against /path?query (nginx $request_uri), not the path alone.'],
  ['status', 'Status', '404: the rule redirects nothing (it keeps its requests from other rules), and has no target.'],
  ['to', 'Target (to)', 'A path or an absolute URL; may use the placeholders of the source: /new/{id}.'],
  ['methods', 'Methods', 'Comma-separated (GET, HEAD); empty: every method.'],
  ['queryMatch', 'Only when the query has', 'name=value pairs joined with &; * for any value (ref=*). Empty: any query.'],
  ['queryExact', 'No other query parameters allowed', 'Without the condition above: only requests without a query.'],
  ['scheme', 'Scheme', 'Only requests that came with http (or https): an http-to-https redirect on its own host. Any: both.'],
  ['query', 'Query string passed on', null],
  ['starts', 'Active from', 'RFC 3339 (2026-12-01T00:00:00Z); empty: now.'],
  ['ends', 'Active until', 'RFC 3339; empty: no end.'],
  ['cache', 'Cache max-age (seconds)', 'For 301 and 308; empty: the gateway default; ramp: 5 minutes, doubled each day the rule stays unchanged.'],
  ['priority', 'Priority', 'Higher wins among rules matching a path equally well.'],
  ['caseInsensitive', 'Match the path case-insensitively', null],
  ['enabled', 'Enabled', null],
  ['tags', 'Tags', 'Comma-separated.'],
  ['note', 'Note', 'Why this rule exists (shown in the table).'],
];

function control(name, rule) {
  const value = rule ? rule[name] : null;
  switch (name) {
    case 'status': return select(STATUSES, value ?? 301);
    case 'scheme': return select([['', 'any'], ['http', 'http only'], ['https', 'https only']], value ?? '');
    case 'queryExact': case 'caseInsensitive': case 'enabled': case 'regexQuery':
      return h('input', { type: 'checkbox', checked: name === 'enabled' ? value !== false : Boolean(value) });
    case 'methods': case 'tags': return input({ value: value ? value.join(', ') : '' });
    case 'queryMatch': return input({ value: queryMatchText(value) });
    case 'note': return h('textarea', { rows: 2, value: value ?? '' });
    case 'cache': case 'priority': return input({ value: value ?? '', inputmode: 'numeric', size: 10 });
    default: return input({ value: value ?? '' });
  }
}

function readForm(form, loaded, lifecycle) {
  const get = (name) => form.elements[name];
  const text = (name) => get(name).value.trim();
  const list = (name) => text(name) ? text(name).split(',').map((s) => s.trim()).filter(Boolean) : null;
  const number = (name) => {
    const raw = text(name);
    if (!raw) return null;
    return /^-?\d+$/.test(raw) ? Number(raw) : raw;  // anything else: the API says what is wrong with it
  };
  const status = Number(get('status').value);
  const body = {
    // PUT replaces the whole rule: the fields this form does not show are sent back as they were
    ...Object.fromEntries(Object.entries(loaded || {}).filter(([name]) => !READ_ONLY.has(name) && !FORM_NAMES.has(name))),
    from: text('from') || null,
    fromRegex: text('fromRegex') || null,
    regexQuery: get('regexQuery').checked,
    to: status === NOT_REDIRECTED ? '' : get('to').value.trim(),  // a rule that redirects nothing has no target
    status,
    methods: list('methods'),
    query: readQuery(form),
    queryMatch: text('queryMatch') ? Object.fromEntries(new URLSearchParams(text('queryMatch'))) : null,
    queryExact: get('queryExact').checked,
    scheme: get('scheme').value || null,
    starts: text('starts') || null,
    ends: text('ends') || null,
    cache: number('cache'),
    priority: number('priority') ?? 0,
    caseInsensitive: get('caseInsensitive').checked,
    enabled: get('enabled').checked,
    tags: list('tags') || [],
    note: get('note').value || null,
    ...lifecycle.read(),
  };
  if (body.from === null && body.fromRegex === null) body.from = '';  // the API names the missing source
  return body;
}

function fillForm(form, rule, lifecycle) {
  for (const [name] of FORM_FIELDS) {
    if (name === 'query') {
      setQuery(form, rule.query);
      continue;
    }
    const fresh = control(name, rule);
    const current = form.elements[name];
    if (current.type === 'checkbox') current.checked = fresh.checked;
    else current.value = fresh.value;
  }
  lifecycle.set(rule);
  showTarget(form);
}

// -- the query policy: keep | drop | {strip: [...], pass: all|none|unmatched|[names]} ------------

const FORM_NAMES = new Set([...FORM_FIELDS, ...LIFECYCLE_FIELDS].map(([name]) => name));
const names = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

/** The query controls in one group: the conditions (`rows`), then what to do with the query and, for a
 * policy, what to strip and what to pass. */
function queryFields(rows) {
  const mode = field('Query string passed on', select([['keep', 'keep: pass the request\'s query on'],
    ['drop', 'drop: leave it out'], ['policy', 'a policy: strip, pass some']], 'keep'), {
    name: 'query', hint: 'Which of the request\'s query parameters reach the target (merged into its query).' });
  const strip = field('Strip these parameters', input({ placeholder: 'utm_*, gclid' }), {
    name: 'queryStrip', hint: 'Comma-separated; a trailing * matches any end. Taken out first: never matched, never passed.' });
  const pass = field('Pass on', select([['all', 'all the others'], ['none', 'none'],
    ['unmatched', 'all but those the condition names'], ['names', 'only the names below']], 'all'), { name: 'queryPass' });
  const only = field('Names passed on', input({ placeholder: 'q, page' }), { name: 'queryPassNames', hint: 'Comma-separated.' });
  const group = h('fieldset', { class: 'field wide query-policy' }, h('legend', null, 'Query string'),
    h('div', { class: 'grid' }, rows, mode.row, strip.row, pass.row, only.row), mode.error);  // its errors below the group
  mode.input.addEventListener('change', () => syncQuery(group));
  pass.input.addEventListener('change', () => syncQuery(group));
  return group;
}

function syncQuery(scope) {
  const get = (name) => scope.querySelector(`[name="${name}"]`);
  const policy = get('query').value === 'policy';
  get('queryStrip').closest('.field').hidden = !policy;
  get('queryPass').closest('.field').hidden = !policy;
  get('queryPassNames').closest('.field').hidden = !policy || get('queryPass').value !== 'names';
}

function setQuery(form, value) {
  const get = (name) => form.elements[name];
  const policy = value && typeof value === 'object';
  get('query').value = policy ? 'policy' : (value || 'keep');
  get('queryStrip').value = policy && value.strip ? value.strip.join(', ') : '';
  const passes = policy ? value.pass ?? 'all' : 'all';
  get('queryPass').value = Array.isArray(passes) ? 'names' : passes;
  get('queryPassNames').value = Array.isArray(passes) ? passes.join(', ') : '';
  syncQuery(form);
}

function readQuery(form) {
  const get = (name) => form.elements[name];
  const mode = get('query').value;
  if (mode !== 'policy') return mode;
  const out = {};
  const strip = names(get('queryStrip').value);
  if (strip.length) out.strip = strip;
  out.pass = get('queryPass').value === 'names' ? names(get('queryPassNames').value) : get('queryPass').value;
  return out;  // the API says what is wrong with it (an empty list, a bad name), next to the group
}

/** A 404 rule redirects nothing: its target is hidden and disabled (and sent empty). */
function showTarget(form) {
  const none = Number(form.elements.status.value) === NOT_REDIRECTED;
  const to = form.elements.to;
  to.disabled = none;
  to.closest('.field').hidden = none;
}

/** The rule in a few words: what it matches, and what the gateway answers. */
function summary(rule) {
  const condition = conditionText(rule);
  const policy = policyText(rule.query);
  return h('dl', { class: 'facts rule-summary' },
    h('dt', null, 'Source'), h('dd', null, h('code', null, sourceText(rule)), condition ? ` (${condition})` : null),
    h('dt', null, 'Methods'), h('dd', null, rule.methods ? rule.methods.join(', ') : 'any'),
    h('dt', null, 'Answer'), h('dd', null, rule.status === NOT_REDIRECTED
      ? '404: not redirected (answered as if no rule matched)'
      : [`${rule.status} to `, h('code', null, rule.to), policy ? ` (${policy})` : ' (query kept)']),
    h('dt', null, 'Active'), h('dd', null, `${windowText(rule)}${rule.enabled ? '' : ', but disabled'}`),
    phasesText(rule) ? [h('dt', null, 'Later'), h('dd', null, phasesText(rule))] : null,
    lifecycleText(rule) ? [h('dt', null, 'Lifecycle'), h('dd', null, lifecycleText(rule))] : null,
    linksText(rule) ? [h('dt', null, 'Links'), h('dd', null, linksText(rule))] : null);
}

async function renderForm(main, uuid, params, stale) {
  let rule = null;
  let etag = null;
  if (uuid) {
    const answer = await api('GET', `/api/v1/rules/${encodeURIComponent(uuid)}`);
    rule = answer.data;
    etag = answer.headers.get('etag');
  } else {
    rule = { from: params.get('from'), to: params.get('to'), status: params.get('status') ? Number(params.get('status')) : null,
      note: params.get('note') };
  }
  if (stale()) return;
  const title = uuid ? 'Edit rule' : 'New rule';
  const form = h('form', { class: 'card rule-form', novalidate: true, 'aria-labelledby': 'form-title' });
  const conflict = h('div', { class: 'conflict' });
  form.append(h('div', { class: 'form-errors', tabindex: '-1' }));
  const grid = h('div', { class: 'grid' });
  const conditions = [];
  const lifecycle = lifecycleFields();
  for (const [name, label, hint] of FORM_FIELDS) {
    if (name === 'query') {
      grid.append(queryFields(conditions));
      continue;
    }
    const f = field(label, control(name, rule), { name, hint });
    if (name === 'note' || name === 'to' || name === 'from') f.row.classList.add('wide');
    if (name === 'queryMatch' || name === 'queryExact') conditions.push(f.row);
    else grid.append(f.row);
    if (name === 'cache') grid.append(...lifecycle.groups);  // the phases and the lifecycle after the answer's fields
  }
  form.append(grid, h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, uuid ? 'Save' : 'Create'), ' ',
    h('a', { href: '#/rules' }, 'Cancel')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    conflict.replaceChildren();
    const body = readForm(form, uuid ? rule : null, lifecycle);
    try {
      const answer = uuid
        ? await api('PUT', `/api/v1/rules/${uuid}`, { body, headers: { 'If-Match': etag } })
        : await api('POST', '/api/v1/rules', { body });
      const warnings = answer.data.metadata ? answer.data.metadata.warnings : [];
      setFlash('ok', uuid ? 'Saved ' : 'Created ', h('code', null, sourceText(answer.data)), ' → ', h('code', null, answer.data.to),
        ' (live on the gateway within a second).',
        warnings.length ? h('ul', null, warnings.map((w) => h('li', null, 'Warning: ', detailText(w.detail)))) : null);
      location.hash = route('#/rules', { q: answer.data.from || '' });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 412) {
        await showConflict(form, conflict, uuid, body, lifecycle, (current, currentEtag) => {
          etag = currentEtag;
          rule = current;
        });
        return;
      }
      showErrors(form, error, error.status === 422  // showErrors adds "see the fields marked below" or the others
        ? 'This rule conflicts with the table (422):' : `The rule is not valid (${error.status}):`);
      announce('The rule was not saved: errors are shown next to the fields.');
    }
  });
  form.elements.status.addEventListener('change', () => showTarget(form));
  fill(main, h('h1', { id: 'form-title' }, title), uuid
    ? [h('p', null, 'Rule ', h('code', null, uuid), ` (revision ${rule.revision}, updated ${when(rule.updatedAt)}).`), summary(rule)]
    : null,
  conflict, form);
  setQuery(form, rule.query);
  lifecycle.set(rule);
  showTarget(form);
  form.elements.from.focus();
}

/** A value as JSON with its keys sorted (a query policy's keys come back sorted). */
function canonical(value) {
  return JSON.stringify(value ?? null, (key, v) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v));
}

/** 412: someone changed the rule since the form was loaded. Show their version beside ours. */
async function showConflict(form, box, uuid, mine, lifecycle, adopt) {
  const answer = await api('GET', `/api/v1/rules/${uuid}`);
  const current = answer.data;
  const currentEtag = answer.headers.get('etag');
  const rows = [];
  const compared = [...FORM_FIELDS, ...LIFECYCLE_FIELDS];
  for (const [name, label] of compared) {
    const theirs = canonical(current[name]);
    const ours = canonical(mine[name]);
    if (theirs === ours) continue;
    rows.push(h('tr', { class: 'differs' },
      h('th', { scope: 'row' }, label), h('td', null, h('code', null, theirs)), h('td', null, h('code', null, ours))));
  }
  const load = button('Load the current version (drop my changes)', () => {
    fillForm(form, current, lifecycle);
    adopt(current, currentEtag);
    fill(box, notice('info', 'The form now holds the current version; change it and save again.'));
    form.elements.from.focus();
  });
  const overwrite = button('Save my version over it', () => {
    adopt(current, currentEtag);
    box.replaceChildren();
    form.requestSubmit();
  }, { class: 'danger' });
  fill(box, h('section', { class: 'card', 'aria-labelledby': 'conflict-title', tabindex: '-1' },
    notice('warn', h('span', { id: 'conflict-title' }, 'Not saved: this rule was changed by someone else since you opened it (412 Precondition Failed). '),
      `Its current version is revision ${current.revision}, updated ${when(current.updatedAt)}.`),
    h('table', { class: 'compare' }, h('caption', null, `Where the current version and yours differ (${rows.length} of ${compared.length} fields; the others are the same)`),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Current version'),
        h('th', { scope: 'col' }, 'Your version'))),
      h('tbody', null, rows)),
    h('p', { class: 'actions' }, load, ' ', overwrite)));
  box.firstChild.focus();
  announce('Not saved: the rule changed since you opened it.');
}
