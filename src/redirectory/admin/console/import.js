// Import: upload a rule file (any format the API takes) and see the plan first: a dry run
// (POST /api/v1/rule-imports?dryRun=true) answers what the import would add, every problem with its
// line and the warnings, and writes nothing. "Apply" then posts the same file for real, follows the
// long-running operation (202 + progress, then 303 to the report) and shows the report; "Cancel"
// drops the plan.

import { api, ApiError } from './api.js';
import { announce, button, detailText, field, fill, h, notice, select } from './dom.js';
import { conditionText, policyText } from './rules.js';

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

/** POST the file (a dry run or the import itself), follow the job to its report and return it. */
async function runJob(chosen, fmt, dryRun, progress, status) {
  const verb = dryRun ? 'Planning' : 'Importing';
  progress.hidden = false;
  progress.removeAttribute('value');  // indeterminate until the server says how many
  fill(status, `Uploading ${chosen.name}…`);
  try {
    const started = await api('POST', '/api/v1/rule-imports', {
      query: { format: fmt, dryRun: dryRun ? 'true' : null }, raw: chosen, contentType: 'text/plain' });
    const where = started.headers.get('location');
    let answer = started;
    let wait = 50;  // a small file is done at once; a large one is polled every 250 ms
    while (answer.status === 202) {
      const p = answer.data.progress || {};
      if (p.total) {
        progress.max = p.total;
        progress.value = p.done;
      }
      fill(status, `${verb}: ${p.phase || 'running'}${p.total ? `, ${p.done} of ${p.total} rules` : ''}…`);
      await sleep(wait);
      wait = Math.min(wait * 2, 250);
      answer = await api('GET', where);  // 202 while running; then 303, which fetch follows to the report
    }
    return answer.data;
  } finally {
    progress.hidden = true;
    fill(status, '');
  }
}

export async function render(main) {
  const file = field('Rule file', h('input', { type: 'file', required: true }), {
    name: 'file', hint: 'A redirectory rule file, or an nginx, Apache, Netlify, Vercel, Cloudflare or WordPress export.' });
  const format = field('Format', select(FORMATS, ''), { name: 'format' });
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Import progress' });
  const status = h('p', { class: 'progress-text', role: 'status' });
  const plan = h('section', { class: 'plan', 'aria-label': 'Import plan' });
  const report = h('section', { class: 'report', 'aria-label': 'Import report' });
  const form = h('form', { class: 'card', novalidate: true, 'aria-label': 'Import a rule file' },
    h('div', { class: 'form-errors', tabindex: '-1' }), h('div', { class: 'grid' }, file.row, format.row),
    h('p', null, 'An import adds rules (it does not remove any). The plan comes first: what the file would add, checked '
      + 'together with the table, and every problem with its line; nothing is written until you apply it. The import '
      + 'itself is checked again and written in one transaction: if any rule has a problem, nothing is written.'),
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Show the plan')), progress, status);

  const refused = (error) => {
    if (!(error instanceof ApiError)) throw error;
    fill(report, notice('error', `The import was refused (${error.status}): `, detailText(error.message)));
  };

  async function apply(chosen, fmt) {
    plan.replaceChildren();
    try {
      showReport(report, await runJob(chosen, fmt, false, progress, status), chosen.name);
    } catch (error) {
      refused(error);
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    plan.replaceChildren();
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
    try {
      const data = await runJob(chosen, fmt, true, progress, status);
      showPlan(plan, data, chosen.name, () => apply(chosen, fmt), () => {
        plan.replaceChildren();
        fill(report, notice('info', `Cancelled: nothing was imported from ${chosen.name}.`));
        announce(`Cancelled: nothing was imported from ${chosen.name}.`);
        file.input.focus();
      });
    } catch (error) {
      refused(error);
    }
  });
  fill(main, h('h1', null, 'Import'), form, plan, report);
}

function problemList(items) {
  return h('ul', { class: 'problems' }, items.map((item) => h('li', null,
    item.index !== undefined ? `Rule ${item.index + 1}` : null, item.index !== undefined ? ': ' : null, detailText(item.detail),
    item.fields ? ` (field ${item.fields.join(', ')})` : null)));
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function showPlan(box, data, name, onApply, onCancel) {
  const warnings = data.metadata ? data.metadata.warnings : [];
  const ok = data.status === 'SUCCEEDED';
  const planned = data.plan ? data.plan.added : [];
  const hosts = data.plan ? data.plan.allowedHosts : null;
  const rows = planned.map((rule) => h('tr', null,
    h('td', null, rule.line ? String(rule.line) : String(rule.index + 1)),
    h('td', null, h('code', null, rule.from !== null ? rule.from : `regex: ${rule.fromRegex}`),
      conditionText(rule) ? h('span', { class: 'query-cond' }, conditionText(rule)) : null),
    h('td', null, rule.status === 404 ? h('span', { class: 'not-redirected' }, 'not redirected (404)')
      : [h('code', null, rule.to), policyText(rule.query) ? h('span', { class: 'query-policy' }, policyText(rule.query)) : null]),
    h('td', null, String(rule.status)),
    h('td', null, rule.methods ? rule.methods.join(', ') : 'any')));
  const apply = button(`Apply: import ${plural(data.added, 'rule')}`, onApply, { class: 'primary' });
  fill(box, h('h2', { id: 'plan-title' }, 'Plan'),
    ok
      ? notice('info', `Importing ${name} would add ${plural(data.added, 'rule')}. Nothing is written until you apply it.`)
      : notice('error', `${name} cannot be imported: ${plural(data.errors.length, 'problem')}; nothing would be written.`),
    h('dl', { class: 'facts' }, h('dt', null, 'Added'), h('dd', null, String(data.added)),
      h('dt', null, 'Changed'), h('dd', null, String(data.changed)),
      h('dt', null, 'Removed'), h('dd', null, `${data.removed} (an import never changes or removes rules)`),
      hosts ? [h('dt', null, 'Allowed hosts'), h('dd', null, `${hosts.before.join(', ') || 'none'} → ${hosts.after.join(', ')}`)] : null),
    rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'plan-table' },
      h('caption', null, planned.length < data.added ? `The first ${planned.length} of the ${data.added} rules to add`
        : `The ${plural(data.added, 'rule')} to add`),
      h('thead', null, h('tr', null, ['Line', 'Source', 'Target', 'Status', 'Methods'].map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', null, rows))) : null,
    data.errors.length ? [h('h3', null, 'Problems'), problemList(data.errors)] : null,
    warnings.length ? [h('h3', null, 'Warnings'), problemList(warnings)] : null,
    h('p', { class: 'actions' }, ok ? apply : null, ' ', button('Cancel', onCancel)));
  announce(ok ? `Plan: ${plural(data.added, 'rule')} to add. Apply or cancel.` : 'The file cannot be imported: see the problems.');
  (ok ? apply : box.querySelector('.notice')).focus?.();
}

function showReport(box, data, name) {
  const warnings = data.metadata ? data.metadata.warnings : [];
  fill(box, h('h2', null, 'Report'),
    data.status === 'SUCCEEDED'
      ? notice('ok', `Imported ${name}: ${plural(data.added, 'rule')} added`, data.revision ? ` as revision ${data.revision}.` : '.')
      : notice('error', `Nothing was imported from ${name}: ${plural(data.errors.length, 'problem')}.`),
    h('dl', { class: 'facts' }, h('dt', null, 'Status'), h('dd', null, data.status), h('dt', null, 'Format'), h('dd', null, data.format),
      h('dt', null, 'Added'), h('dd', null, String(data.added)), h('dt', null, 'Changed'), h('dd', null, String(data.changed)),
      h('dt', null, 'Removed'), h('dd', null, '0 (an import never removes rules)'),
      h('dt', null, 'Revision'), h('dd', null, data.revision ? String(data.revision) : '—')),
    data.errors.length ? [h('h3', null, 'Problems'), problemList(data.errors)] : null,
    warnings.length ? [h('h3', null, 'Warnings'), problemList(warnings)] : null,
    data.status === 'SUCCEEDED' ? h('p', null, h('a', { href: '#/rules' }, 'See the rules')) : null);
  box.querySelector('.notice').focus?.();
}
