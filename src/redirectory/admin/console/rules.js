// Rules: the table (GET /api/v1/rules, hits from GET /api/v1/stats/rules), and the create / edit
// forms (POST, PUT with If-Match, DELETE with If-Match). Validation is the API's: its field errors
// are shown next to the field they name.

import { api, ApiError } from './api.js';
import {
  announce, button, clearErrors, confirmDialog, detailText, field, fill, h, input, notice, route, select, showErrors,
  when,
} from './dom.js';

const STATUSES = [[301, '301 Moved Permanently'], [308, '308 Permanent Redirect'], [307, '307 Temporary Redirect'],
  [303, '303 See Other']];
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

function windowText(rule) {
  if (!rule.starts && !rule.ends) return 'always';
  if (rule.starts && rule.ends) return `${when(rule.starts)} to ${when(rule.ends)}`;
  return rule.starts ? `from ${when(rule.starts)}` : `until ${when(rule.ends)}`;
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
        rule.note ? h('span', { class: 'note' }, rule.note) : null),
      h('td', null, h('code', { class: 'target' }, rule.to)),
      h('td', null, String(rule.status), rule.enabled ? null : h('span', { class: 'badge' }, ' disabled')),
      h('td', null, rule.methods ? rule.methods.join(', ') : 'any'),
      h('td', null, hostOf(rule)),
      h('td', null, windowText(rule)),
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
      h('dt', null, 'Target'), h('dd', null, h('code', null, rule.to)),
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
  ['to', 'Target (to)', 'A path or an absolute URL; may use the placeholders of the source: /new/{id}.'],
  ['status', 'Status', null],
  ['methods', 'Methods', 'Comma-separated (GET, HEAD); empty: every method.'],
  ['query', 'Query string', null],
  ['queryMatch', 'Only when the query has', 'name=value pairs joined with &; * for any value (ref=*). Empty: any query.'],
  ['queryExact', 'No other query parameters allowed', null],
  ['starts', 'Active from', 'RFC 3339 (2026-12-01T00:00:00Z); empty: now.'],
  ['ends', 'Active until', 'RFC 3339; empty: no end.'],
  ['cache', 'Cache max-age (seconds)', 'For 301 and 308; empty: the gateway default.'],
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
    case 'query': return select([['keep', 'keep: pass the request\'s query on'], ['drop', 'drop: leave it out']], value ?? 'keep');
    case 'queryExact': case 'caseInsensitive': case 'enabled':
      return h('input', { type: 'checkbox', checked: name === 'enabled' ? value !== false : Boolean(value) });
    case 'methods': case 'tags': return input({ value: value ? value.join(', ') : '' });
    case 'queryMatch': return input({ value: value ? new URLSearchParams(value).toString().replaceAll('%2A', '*') : '' });
    case 'note': return h('textarea', { rows: 2, value: value ?? '' });
    case 'cache': case 'priority': return input({ value: value ?? '', inputmode: 'numeric', size: 10 });
    default: return input({ value: value ?? '' });
  }
}

function readForm(form) {
  const get = (name) => form.elements[name];
  const text = (name) => get(name).value.trim();
  const list = (name) => text(name) ? text(name).split(',').map((s) => s.trim()).filter(Boolean) : null;
  const number = (name) => {
    const raw = text(name);
    if (!raw) return null;
    return /^-?\d+$/.test(raw) ? Number(raw) : raw;  // anything else: the API says what is wrong with it
  };
  const body = {
    from: text('from') || null,
    fromRegex: text('fromRegex') || null,
    to: get('to').value.trim(),
    status: Number(get('status').value),
    methods: list('methods'),
    query: get('query').value,
    queryMatch: text('queryMatch') ? Object.fromEntries(new URLSearchParams(text('queryMatch'))) : null,
    queryExact: get('queryExact').checked,
    starts: text('starts') || null,
    ends: text('ends') || null,
    cache: number('cache'),
    priority: number('priority') ?? 0,
    caseInsensitive: get('caseInsensitive').checked,
    enabled: get('enabled').checked,
    tags: list('tags') || [],
    note: get('note').value || null,
  };
  if (body.from === null && body.fromRegex === null) body.from = '';  // the API names the missing source
  return body;
}

function fillForm(form, rule) {
  for (const [name] of FORM_FIELDS) {
    const fresh = control(name, rule);
    const current = form.elements[name];
    if (current.type === 'checkbox') current.checked = fresh.checked;
    else current.value = fresh.value;
  }
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
  for (const [name, label, hint] of FORM_FIELDS) {
    const f = field(label, control(name, rule), { name, hint });
    if (name === 'note' || name === 'to' || name === 'from') f.row.classList.add('wide');
    grid.append(f.row);
  }
  form.append(grid, h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, uuid ? 'Save' : 'Create'), ' ',
    h('a', { href: '#/rules' }, 'Cancel')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    conflict.replaceChildren();
    const body = readForm(form);
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
        await showConflict(form, conflict, uuid, body, (current, currentEtag) => {
          etag = currentEtag;
          rule = current;
        });
        return;
      }
      showErrors(form, error, error.status === 422
        ? 'This rule conflicts with the table (422): see the field marked below.'
        : `The rule is not valid (${error.status}): see the fields marked below.`);
      announce('The rule was not saved: errors are shown next to the fields.');
    }
  });
  fill(main, h('h1', { id: 'form-title' }, title), uuid
    ? h('p', null, 'Rule ', h('code', null, uuid), ` (revision ${rule.revision}, updated ${when(rule.updatedAt)}).`) : null,
  conflict, form);
  form.elements.from.focus();
}

/** 412: someone changed the rule since the form was loaded. Show their version beside ours. */
async function showConflict(form, box, uuid, mine, adopt) {
  const answer = await api('GET', `/api/v1/rules/${uuid}`);
  const current = answer.data;
  const currentEtag = answer.headers.get('etag');
  const rows = [];
  for (const [name, label] of FORM_FIELDS) {
    const theirs = JSON.stringify(current[name] ?? null);
    const ours = JSON.stringify(mine[name] ?? null);
    if (theirs === ours) continue;
    rows.push(h('tr', { class: 'differs' },
      h('th', { scope: 'row' }, label), h('td', null, h('code', null, theirs)), h('td', null, h('code', null, ours))));
  }
  const load = button('Load the current version (drop my changes)', () => {
    fillForm(form, current);
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
    h('table', { class: 'compare' }, h('caption', null, `Where the current version and yours differ (${rows.length} of ${FORM_FIELDS.length} fields; the others are the same)`),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Current version'),
        h('th', { scope: 'col' }, 'Your version'))),
      h('tbody', null, rows)),
    h('p', { class: 'actions' }, load, ' ', overwrite)));
  box.firstChild.focus();
  announce('Not saved: the rule changed since you opened it.');
}
