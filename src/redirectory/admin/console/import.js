// Import: upload a rule file (any format the API takes), POST /api/v1/rule-imports, follow the
// long-running operation (202 + progress, then 303 to the report) and show the report: what was
// added, the new revision, every problem with its line, the warnings.

import { api, ApiError } from './api.js';
import { detailText, field, fill, h, notice, select } from './dom.js';

const FORMATS = [['', 'from the file name'], ['yaml', 'YAML (redirectory)'], ['json', 'JSON (redirectory)'], ['csv', 'CSV (redirectory)'],
  ['nginx', 'nginx'], ['apache', 'Apache (.htaccess)'], ['netlify', 'Netlify _redirects'], ['netlify-toml', 'Netlify netlify.toml'],
  ['vercel', 'Vercel vercel.json'], ['cloudflare-csv', 'Cloudflare bulk redirects (CSV)'], ['wordpress-redirection', 'WordPress Redirection']];
const BY_EXTENSION = { yaml: 'yaml', yml: 'yaml', json: 'json', csv: 'csv', conf: 'nginx', htaccess: 'apache', toml: 'netlify-toml' };

function guess(name) {
  if (name === '_redirects') return 'netlify';
  if (name === 'vercel.json') return 'vercel';
  if (name === 'netlify.toml') return 'netlify-toml';
  if (name === '.htaccess') return 'apache';
  const extension = name.includes('.') ? name.split('.').pop().toLowerCase() : '';
  return BY_EXTENSION[extension] || null;
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

export async function render(main) {
  const file = field('Rule file', h('input', { type: 'file', required: true }), {
    name: 'file', hint: 'A redirectory rule file, or an nginx, Apache, Netlify, Vercel, Cloudflare or WordPress export.' });
  const format = field('Format', select(FORMATS, ''), { name: 'format' });
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Import progress' });
  const status = h('p', { class: 'progress-text', role: 'status' });
  const report = h('section', { class: 'report', 'aria-label': 'Import report' });
  const form = h('form', { class: 'card', novalidate: true, 'aria-label': 'Import a rule file' },
    h('div', { class: 'form-errors', tabindex: '-1' }), h('div', { class: 'grid' }, file.row, format.row),
    h('p', null, 'An import adds rules (it does not remove any). They are checked together with the table and written in one '
      + 'transaction: if any rule has a problem, nothing is written and the report lists every problem with its line.'),
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Import')), progress, status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    report.replaceChildren();
    file.error.hidden = true;
    format.error.hidden = true;
    const chosen = file.input.files[0];
    if (!chosen) {
      file.error.hidden = false;
      fill(file.error, 'Error: choose a file.');
      file.input.focus();
      return;
    }
    const fmt = format.input.value || guess(chosen.name);
    if (!fmt) {
      format.error.hidden = false;
      fill(format.error, `Error: cannot tell the format of ${chosen.name} from its name: choose it.`);
      format.input.focus();
      return;
    }
    progress.hidden = false;
    progress.removeAttribute('value');  // indeterminate until the server says how many
    fill(status, `Uploading ${chosen.name}…`);
    try {
      const started = await api('POST', '/api/v1/rule-imports', { query: { format: fmt }, raw: chosen, contentType: 'text/plain' });
      const where = started.headers.get('location');
      let answer = started;
      while (answer.status === 202) {
        const p = answer.data.progress || {};
        if (p.total) {
          progress.max = p.total;
          progress.value = p.done;
        }
        fill(status, `Import ${p.phase || 'running'}${p.total ? `: ${p.done} of ${p.total} rules` : ''}…`);
        await sleep(250);
        answer = await api('GET', where);  // 202 while running; then 303, which fetch follows to the report
      }
      showReport(report, answer.data, chosen.name);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      fill(report, notice('error', `The import was refused (${error.status}): `, detailText(error.message)));
    } finally {
      progress.hidden = true;
      fill(status, '');
    }
  });
  fill(main, h('h1', null, 'Import'), form, report);
}

function problemList(items) {
  return h('ul', { class: 'problems' }, items.map((item) => h('li', null,
    item.index !== undefined ? `Rule ${item.index + 1}` : null, item.index !== undefined ? ': ' : null, detailText(item.detail),
    item.fields ? ` (field ${item.fields.join(', ')})` : null)));
}

function showReport(box, data, name) {
  const warnings = data.metadata ? data.metadata.warnings : [];
  fill(box, h('h2', null, 'Report'),
    data.status === 'SUCCEEDED'
      ? notice('ok', `Imported ${name}: ${data.added} rule${data.added === 1 ? '' : 's'} added`, data.revision ? ` as revision ${data.revision}.` : '.')
      : notice('error', `Nothing was imported from ${name}: ${data.errors.length} problem${data.errors.length === 1 ? '' : 's'}.`),
    h('dl', { class: 'facts' }, h('dt', null, 'Status'), h('dd', null, data.status), h('dt', null, 'Format'), h('dd', null, data.format),
      h('dt', null, 'Added'), h('dd', null, String(data.added)), h('dt', null, 'Changed'), h('dd', null, String(data.changed)),
      h('dt', null, 'Removed'), h('dd', null, '0 (an import never removes rules)'),
      h('dt', null, 'Revision'), h('dd', null, data.revision ? String(data.revision) : '—')),
    data.errors.length ? [h('h3', null, 'Problems'), problemList(data.errors)] : null,
    warnings.length ? [h('h3', null, 'Warnings'), problemList(warnings)] : null,
    data.status === 'SUCCEEDED' ? h('p', null, h('a', { href: '#/rules' }, 'See the rules')) : null);
  box.querySelector('.notice').focus?.();
}
