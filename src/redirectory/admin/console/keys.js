// API keys (admin scope): create (the secret is shown once), list, revoke (DELETE with If-Match).

import { api, ApiError } from './api.js';
import { button, confirmDialog, field, fill, h, input, notice, route, select, showErrors, when } from './dom.js';

let created = null;

export async function render(main, { params, stale }) {
  const offset = Number(params.get('offset')) || 0;
  const { data } = await api('GET', '/api/v1/api-keys', { query: { limit: 25, offset } });
  if (stale()) return;
  const name = field('Name', input({ required: true, maxlength: 200 }), { name: 'name', hint: 'Who or what uses it: ci-pipeline, alice.' });
  const scope = field('Scope', select([['read', 'read: look only'], ['write', 'write: also change rules and import'],
    ['admin', 'admin: also manage keys']], 'read'), { name: 'scope' });
  const form = h('form', { class: 'card', novalidate: true, 'aria-label': 'Create an API key' },
    h('h2', null, 'Create a key'), h('div', { class: 'form-errors', tabindex: '-1' }), h('div', { class: 'grid' }, name.row, scope.row),
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create key')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const answer = await api('POST', '/api/v1/api-keys', { body: { name: name.input.value, scope: scope.input.value } });
      created = answer.data;
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showErrors(form, error);
    }
  });
  let secretBox = null;
  if (created) {
    const secret = input({ value: created.secret, readonly: true, class: 'secret', size: 60 });
    const f = field('Secret', secret, { name: 'secret', hint: 'Shown this once: only its hash is stored. Copy it now.' });
    const copy = button('Copy', async () => {
      await navigator.clipboard.writeText(created.secret).catch(() => secret.select());
      copy.textContent = 'Copied';
    });
    secretBox = h('section', { class: 'card', 'aria-label': 'The new key' },
      notice('ok', `Created key "${created.name}" with scope ${created.scope}.`), f.row, h('p', { class: 'actions' }, copy));
    created = null;
  }
  const rows = data.items.map((key) => h('tr', null, h('td', null, key.name), h('td', null, key.scope),
    h('td', null, h('code', null, `${key.prefix}…`)), h('td', null, when(key.createdAt)), h('td', null, when(key.lastUsedAt)),
    h('td', null, button('Revoke', () => revoke(key), { class: 'link danger', 'aria-label': `Revoke ${key.name}` }))));
  const page = data.metadata.pagination;
  fill(main, h('h1', null, 'API keys'), secretBox, form,
    h('table', null, h('caption', null, `Keys in use (${page.totalCount})`),
      h('thead', null, h('tr', null, ['Name', 'Scope', 'Starts with', 'Created', 'Last used', 'Action'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows)),
    h('nav', { class: 'pager', 'aria-label': 'Pages of keys' },
      page.previousOffset != null ? h('a', { href: route('#/keys', { offset: page.previousOffset }) }, '← Previous') : null, ' ',
      page.nextOffset != null ? h('a', { href: route('#/keys', { offset: page.nextOffset }) }, 'Next →') : null));
  if (secretBox) secretBox.querySelector('input').focus();
}

async function revoke(key) {
  const ok = await confirmDialog(`Revoke the key "${key.name}"?`,
    h('p', null, `Requests with it get 401 from now on (scope ${key.scope}, starts with ${key.prefix}). This cannot be undone.`
      + ' If it is the key you signed in with, the console signs out.'), 'Revoke');
  if (!ok) return;
  try {
    await api('DELETE', `/api/v1/api-keys/${key.uuid}`, { headers: { 'If-Match': '*' } });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) return;  // we revoked our own key: signed out
  }
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}
