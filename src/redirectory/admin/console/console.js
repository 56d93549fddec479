// The console's shell: sign-in, navigation and the fragment router (#/rules, #/test?url=...).
// Pages live in their own modules; each exports render(main, params, ctx).

import { api, ApiError, forgetKey, getKey, setKey } from './api.js';
import { announce, field, fill, h, hashParams, hashPath, notice } from './dom.js';
import * as historyPage from './history.js';
import * as importer from './import.js';
import * as keys from './keys.js';
import * as rules from './rules.js';
import * as resolve from './resolve.js';
import * as traffic from './traffic.js';

const PAGES = {
  rules: { title: 'Rules', module: rules },
  test: { title: 'Test a URL', module: resolve },
  traffic: { title: 'Traffic', module: traffic },
  history: { title: 'History', module: historyPage },
  import: { title: 'Import', module: importer },
  keys: { title: 'API keys', module: keys },
};

const main = document.getElementById('main');
const ctx = { scope: null, name: null };
let rendering = 0;

function signInPage(message) {
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  document.title = 'Sign in: redirectory console';
  const key = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
  const f = field('API key', key, {
    name: 'key',
    hint: 'A key from `redirectory keys create NAME --scope write` (or admin). It stays in this tab only '
      + '(sessionStorage) and is sent in the Authorization header; closing the tab or signing out forgets it.',
  });
  const form = h('form', { class: 'card sign-in', novalidate: true },
    h('h1', null, 'Sign in'), h('div', { class: 'form-errors' }), f.row,
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = key.value.trim();
    f.error.hidden = true;
    if (!value) {
      f.error.hidden = false;
      fill(f.error, 'Error: paste an API key.');
      key.setAttribute('aria-invalid', 'true');
      key.focus();
      return;
    }
    setKey(value);
    try {
      await identify();
    } catch (error) {
      forgetKey();
      f.error.hidden = false;
      fill(f.error, 'Error: ', error instanceof ApiError && error.status === 401
        ? 'this key is unknown or revoked.' : error.message);
      key.setAttribute('aria-invalid', 'true');
      key.focus();
      return;
    }
    if (!location.hash || location.hash === '#/' || location.hash === '#/sign-in') location.hash = '#/rules';
    else show();
  });
  fill(main, message ? notice('info', message) : null, form);
  key.focus();
}

/** Who the key is: an admin key may list keys (the keys page shows), others get 403 there. */
async function identify() {
  await api('GET', '/api/v1/stats');
  try {
    await api('GET', '/api/v1/api-keys', { query: { limit: 1 } });
    ctx.scope = 'admin';
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
    ctx.scope = 'read or write';
  }
}

function signOut(message) {
  forgetKey();
  ctx.scope = null;
  history.replaceState(null, '', location.pathname + '#/sign-in');
  signInPage(message || 'Signed out: the key is forgotten.');
  announce('Signed out');
}

async function show() {
  const ticket = ++rendering;
  if (!getKey()) {
    signInPage();
    return;
  }
  if (!ctx.scope) {
    try {
      await identify();
    } catch (error) {
      signOut(error instanceof ApiError && error.status === 401 ? null : `Could not sign in: ${error.message}`);
      return;
    }
  }
  const parts = hashPath().split('/').filter(Boolean);
  const name = PAGES[parts[0]] ? parts[0] : 'rules';
  const page = PAGES[name];
  document.getElementById('nav').hidden = false;
  document.getElementById('nav-keys').hidden = ctx.scope !== 'admin';
  document.getElementById('who').hidden = false;
  fill(document.getElementById('who-text'), `Signed in (${ctx.scope === 'admin' ? 'admin key' : 'key without admin scope'})`);
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${page.title}: redirectory console`;
  fill(main, h('p', { class: 'loading' }, 'Loading…'));
  try {
    await page.module.render(main, { parts: parts.slice(1), params: hashParams(), ctx, stale: () => ticket !== rendering });
  } catch (error) {
    if (ticket !== rendering) return;
    fill(main, h('h1', null, page.title), notice('error', error.message || String(error)));
  }
  if (ticket === rendering) announce(`${page.title} page`);
}

window.addEventListener('hashchange', () => {
  show().then(() => {
    if (!main.contains(document.activeElement) || document.activeElement === document.body) main.focus();
  });
});
window.addEventListener('console:unauthorized', () => {
  if (ctx.scope) signOut('The key is no longer accepted (unknown or revoked): sign in again.');
});
document.getElementById('sign-out').addEventListener('click', () => signOut());
show();
