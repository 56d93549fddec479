// History: the revisions (GET /api/v1/history), each change as a readable diff of the rule's
// fields, and restore (POST /api/v1/history/{n}/restore) after a confirmation listing the changes
// made since that revision (those the restore undoes).

import { api, ApiError } from './api.js';
import { confirmDialog, fill, h, notice, route, when } from './dom.js';

const SHOWN = ['from', 'fromRegex', 'regexQuery', 'to', 'status', 'methods', 'query', 'queryMatch', 'queryExact', 'scheme', 'starts', 'ends', 'cache',
  'priority', 'caseInsensitive', 'enabled', 'tags', 'note', 'allowedHosts'];
// Values an added or removed rule shows only when they differ from these (the defaults).
const DEFAULTS = { query: '"keep"', queryExact: 'false', regexQuery: 'false', priority: '0', caseInsensitive: 'false', enabled: 'true', tags: '[]' };
let flash = null;

function value(v) {
  if (v === null || v === undefined) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function ruleName(record) {
  if (!record) return '';
  if (record.allowedHosts) return 'allowed hosts';
  return record.from ?? `regex: ${record.fromRegex}`;
}

/** One change as a list of field lines: added (+), removed (−), changed (before → after). */
export function changeView(change) {
  const words = { add: 'Added', remove: 'Removed', delete: 'Removed', update: 'Changed', change: 'Changed', settings: 'Settings' };
  const op = words[change.op] || change.op;
  const before = change.before || {};
  const after = change.after || {};
  const lines = [];
  for (const name of SHOWN) {
    const only = change.before ? change.before : change.after;
    if (!(change.before && change.after) && DEFAULTS[name] === JSON.stringify(only[name])) continue;
    const b = value(before[name]);
    const a = value(after[name]);
    if (!change.before && a !== '—') lines.push(h('li', { class: 'added' }, h('span', { class: 'sign' }, '+ '), `${name}: `, h('code', null, a)));
    else if (!change.after && b !== '—') lines.push(h('li', { class: 'removed' }, h('span', { class: 'sign' }, '− '), `${name}: `, h('code', null, b)));
    else if (change.before && change.after && a !== b) {
      lines.push(h('li', { class: 'changed' }, h('span', { class: 'sign' }, '~ '), `${name}: `, h('del', null, h('code', null, b)),
        ' → ', h('ins', null, h('code', null, a))));
    }
  }
  return h('div', { class: 'change' }, h('p', null, h('strong', null, op), ' ', h('code', null, ruleName(change.after || change.before))),
    lines.length ? h('ul', { class: 'diff' }, lines) : null);
}

export async function render(main, { params, stale }) {
  const limit = 10;
  const offset = Number(params.get('offset')) || 0;
  const { data } = await api('GET', '/api/v1/history', { query: { limit, offset } });
  if (stale()) return;
  const page = data.metadata.pagination;
  const newest = offset === 0 && data.items.length ? data.items[0].revision : null;
  const list = h('ol', { class: 'revisions', reversed: true });
  for (const rev of data.items) {
    const restore = rev.revision === newest ? h('span', { class: 'hint' }, '(the current table)')
      : h('button', { type: 'button', onclick: () => restoreTo(rev.revision), 'aria-label': `Restore revision ${rev.revision}` },
        `Restore revision ${rev.revision}`);
    list.append(h('li', { class: 'card revision', 'data-revision': rev.revision },
      h('h2', null, `Revision ${rev.revision}`),
      h('p', { class: 'meta' }, `${when(rev.at)} by `, h('strong', null, rev.actor), `: ${rev.summary} (${rev.changeCount} change${rev.changeCount === 1 ? '' : 's'})`),
      rev.changes.map(changeView),
      rev.changeCount > rev.changes.length ? h('p', null, `… and ${rev.changeCount - rev.changes.length} more changes (GET /api/v1/history/${rev.revision}/changes).`) : null,
      h('p', { class: 'actions' }, restore)));
  }
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of revisions' },
    page.previousOffset != null ? h('a', { href: route('#/history', { offset: page.previousOffset }) }, '← Newer') : null, ' ',
    `Page ${page.currentPage || 1} of ${page.pageCount || 1}`, ' ',
    page.nextOffset != null ? h('a', { href: route('#/history', { offset: page.nextOffset }) }, 'Older →') : null);
  const shown = flash;
  flash = null;
  fill(main, h('h1', null, 'History'),
    h('p', null, 'Every change to the table is a revision. Restoring one makes the table what it was right after it, as a new revision: the history is never rewritten.'),
    shown, data.items.length ? list : notice('info', 'No revisions yet.'), pager);
}

/** The changes made after `revision`, newest first (what a restore undoes). */
async function changesSince(revision) {
  const { data } = await api('GET', '/api/v1/history', { query: { limit: 100 } });
  return data.items.filter((rev) => rev.revision > revision);
}

async function restoreTo(revision) {
  const undone = await changesSince(revision);
  const body = [
    h('p', null, `The table becomes what it was right after revision ${revision}, as a new revision. These revisions are undone:`),
    h('ol', { class: 'undo' }, undone.map((rev) => h('li', null, h('p', null, `Revision ${rev.revision} (${when(rev.at)}, ${rev.actor}): ${rev.summary}`),
      rev.changes.map(changeView)))),
  ];
  if (!await confirmDialog(`Restore revision ${revision}?`, body, `Restore revision ${revision}`)) return;
  try {
    const { data } = await api('POST', `/api/v1/history/${revision}/restore`);
    const plan = data.plan;
    flash = notice('ok', data.revision
      ? `Restored revision ${revision} as revision ${data.revision}: ${plan.added} added, ${plan.changed} changed, ${plan.removed} removed.`
      : `The table already is what it was at revision ${revision}: nothing changed.`);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    flash = notice('error', `Not restored (${error.status}): `, error.message);
  }
  if (location.hash === '#/history') window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = '#/history';
}
