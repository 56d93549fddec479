// A rule's lifecycle in the form and in words: scheduled `phases` (rows of starts + status + cache),
// `deprecation` and `sunset` (times), and `links` (rows of relation + URL). Times are edited as
// datetime-local inputs read as UTC (and said to be). The form checks nothing: the API's errors,
// which name `phases`, `links`, `deprecation` or `sunset`, are shown beside the group.

import { button, field, h, input, select, uid, when } from './dom.js';

const PHASE_STATUSES = [[308, '308 Permanent Redirect'], [301, '301 Moved Permanently'], [307, '307 Temporary Redirect'],
  [303, '303 See Other']];
/** The API fields this module's groups edit (the form sends them; an edit does not copy them back). */
export const LIFECYCLE_FIELDS = [
  ['phases', 'Phases'], ['deprecation', 'Deprecated from'], ['sunset', 'Sunset'], ['links', 'Links'],
];

// -- times: RFC 3339 (UTC) <-> datetime-local --------------------------------------------------

/** `2027-03-01T00:00:00Z` as a datetime-local value (`2027-03-01T00:00:00`), in UTC. */
export function toLocalInput(value) {
  if (!value) return '';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return '';
  return date.toISOString().slice(0, 19);
}

/** A datetime-local control's value read as UTC; null when empty. A half-typed time is sent as
 * typed-out words, so the API names the field instead of the time being dropped silently. */
export function fromLocalInput(control) {
  if (control.validity && control.validity.badInput) return 'an incomplete date and time';
  const value = control.value.trim();
  if (!value) return null;
  return `${value.length === 16 ? `${value}:00` : value}Z`;
}

function timeControl(value) {
  return input({ type: 'datetime-local', step: 1, value: toLocalInput(value) });
}

/** A day as `2027-03-01`, or the full time when it is not midnight UTC. */
export function dayText(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const iso = date.toISOString();
  return iso.slice(11, 19) === '00:00:00' ? iso.slice(0, 10) : when(value);
}

// -- in words ------------------------------------------------------------------------------------

/** "308 from 2027-03-01, 308 (cache 31536000 s) from 2027-06-01", or null. */
export function phasesText(rule) {
  if (!Array.isArray(rule.phases) || !rule.phases.length) return null;
  return rule.phases.map((p) => `${p.status}${p.cache !== null && p.cache !== undefined ? ` (cache ${p.cache} s)` : ''}`
    + ` from ${dayText(p.starts)}`).join(', ');
}

/** "deprecated 2026-06-01, sunset 2027-01-01", or null. */
export function lifecycleText(rule) {
  const parts = [];
  if (rule.deprecation) parts.push(`deprecated ${dayText(rule.deprecation)}`);
  if (rule.sunset) parts.push(`sunset ${dayText(rule.sunset)}`);
  return parts.length ? parts.join(', ') : null;
}

/** "successor-version: /api/v2/users; deprecation: https://...", or null. */
export function linksText(rule) {
  const links = rule.links && typeof rule.links === 'object' ? Object.entries(rule.links) : [];
  return links.length ? links.map(([rel, url]) => `${rel}: ${url}`).join('; ') : null;
}

// -- rows ----------------------------------------------------------------------------------------

/** A labelled control of a row: the label names the row ("Starts (UTC), phase 2") for screen readers. */
function cell(text, control, rowWord) {
  control.id = control.id || uid('r');
  return h('div', { class: 'field' },
    h('label', { for: control.id }, text, h('span', { class: 'visually-hidden row-word' }, `, ${rowWord} 1`)), control);
}

/** Renumber the rows' hidden words and remove buttons after an add or a remove. */
function renumber(list, rowWord) {
  [...list.children].forEach((row, i) => {
    for (const word of row.querySelectorAll('.row-word')) word.textContent = `, ${rowWord} ${i + 1}`;
    const remove = row.querySelector('button.remove');
    if (remove) remove.setAttribute('aria-label', `Remove ${rowWord} ${i + 1}`);
  });
}

/** A list of rows with "Add" below it; the new row's first control takes the focus, and a removed
 * row gives it to the row now in its place (or to "Add"). */
function rowList(className, rowWord, addText, makeRow) {
  const list = h('ol', { class: `rows ${className}` });
  const add = button(addText, () => {
    addRow({});
    list.lastChild.querySelector('input, select').focus();
  });
  function addRow(value) {
    const row = h('li', { class: 'row' }, makeRow(value));
    row.append(button('Remove', () => {
      const index = [...list.children].indexOf(row);
      row.remove();
      renumber(list, rowWord);
      const next = list.children[index] || list.children[index - 1];
      (next ? next.querySelector('input, select') : add).focus();
    }, { class: 'remove' }));
    list.append(row);
    renumber(list, rowWord);
  }
  return { list, add, addRow, clear: () => list.replaceChildren() };
}

// -- the groups ----------------------------------------------------------------------------------

/**
 * The "Lifecycle" and "Phases" groups of the rule form: {groups: [elements], set(rule), read()}.
 * `read()` gives {phases, deprecation, sunset, links} as the API takes them (null when empty).
 */
export function lifecycleFields() {
  const deprecation = field('Deprecated from (UTC)', timeControl(null), {
    name: 'deprecation', hint: 'Sent as the Deprecation header. The date and time are UTC; empty: not deprecated.' });
  const sunset = field('Sunset (UTC)', timeControl(null), {
    name: 'sunset', hint: 'When the endpoint goes away: the Sunset header. UTC; empty: none announced.' });

  const links = rowList('link-rows', 'link', 'Add a link', (value) => [
    cell('Relation', input({ class: 'link-rel', value: value.rel ?? '', placeholder: 'successor-version', size: 18 }), 'link'),
    cell('URL', input({ class: 'link-url', value: value.url ?? '', placeholder: '/api/v2/users', size: 34 }), 'link'),
  ]);
  const linksError = h('p', { class: 'field-error', id: uid('links-error'), 'data-error-for': 'links', hidden: true });
  const linksHint = h('p', { class: 'hint', id: uid('links-hint') },
    'Sent in the Link header: a lower-case relation (successor-version, deprecation) and an absolute path or http(s) URL.');
  const linksGroup = h('fieldset', { class: 'subgroup', name: 'links', tabindex: '-1',
    'aria-describedby': `${linksHint.id} ${linksError.id}` },
  h('legend', null, 'Links'), linksHint, links.list, h('p', { class: 'actions' }, links.add), linksError);

  const lifecycle = h('fieldset', { class: 'field wide group lifecycle' }, h('legend', null, 'Lifecycle'),
    h('div', { class: 'grid' }, deprecation.row, sunset.row), linksGroup);

  const phases = rowList('phase-rows', 'phase', 'Add a phase', (value) => [
    cell('Starts (UTC)', timeControl(value.starts), 'phase'),
    cell('Status', select(PHASE_STATUSES, value.status ?? 308), 'phase'),
    cell('Cache max-age (seconds)', input({ class: 'phase-cache', value: value.cache ?? '', inputmode: 'numeric', size: 10 }), 'phase'),
  ]);
  const phasesError = h('p', { class: 'field-error', id: uid('phases-error'), 'data-error-for': 'phases', hidden: true });
  const phasesHint = h('p', { class: 'hint', id: uid('phases-hint') },
    'Later answers, each from its start (UTC), in time order; until the first starts, the status above. '
    + 'Cache: empty for the default of a permanent status.');
  const phasesGroup = h('fieldset', { class: 'field wide group phases', name: 'phases', tabindex: '-1',
    'aria-describedby': `${phasesHint.id} ${phasesError.id}` },
  h('legend', null, 'Phases'), phasesHint, phases.list, h('p', { class: 'actions' }, phases.add), phasesError);

  function set(rule) {
    deprecation.input.value = toLocalInput(rule && rule.deprecation);
    sunset.input.value = toLocalInput(rule && rule.sunset);
    links.clear();
    for (const [rel, url] of Object.entries((rule && rule.links) || {})) links.addRow({ rel, url });
    phases.clear();
    for (const phase of (rule && rule.phases) || []) phases.addRow(phase);
  }

  function read() {
    const outLinks = {};
    for (const row of links.list.children) {
      const rel = row.querySelector('.link-rel').value.trim();
      const url = row.querySelector('.link-url').value.trim();
      if (rel || url) outLinks[rel] = url;  // a half-filled row goes as is: the API says what is missing
    }
    const outPhases = [];
    for (const row of phases.list.children) {
      const [starts, status] = [row.querySelector('input[type=datetime-local]'), row.querySelector('select')];
      const cacheText = row.querySelector('.phase-cache').value.trim();
      const phase = { starts: fromLocalInput(starts) ?? '', status: Number(status.value) };
      if (cacheText) phase.cache = /^\d+$/.test(cacheText) ? Number(cacheText) : cacheText;
      outPhases.push(phase);
    }
    return {
      phases: outPhases.length ? outPhases : null,
      deprecation: fromLocalInput(deprecation.input),
      sunset: fromLocalInput(sunset.input),
      links: Object.keys(outLinks).length ? outLinks : null,
    };
  }

  return { groups: [phasesGroup, lifecycle], set, read };
}
