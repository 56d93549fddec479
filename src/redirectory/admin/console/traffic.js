// Traffic: hits over time (GET /api/v1/stats/timeline) drawn as SVG here (no chart library), for
// the whole table or one rule; the top unmatched paths (each with "redirect this path", which opens
// a new rule prefilled with it); the rules never hit, candidates for removal.

import { api } from './api.js';
import { field, fill, h, notice, route, select, when } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function label(start, interval) {
  const iso = new Date(start).toISOString();
  if (interval === 'day') return iso.slice(5, 10);
  return iso.slice(11, 16);
}

/** A bar chart of buckets: matched hits, and unmatched ones (hatched, and named in the legend and table). */
export function chart(timeline, title) {
  const buckets = timeline.buckets;
  const width = 760;
  const height = 220;
  const left = 44;
  const bottom = 28;
  const plotW = width - left - 8;
  const plotH = height - bottom - 10;
  const max = Math.max(2, ...buckets.map((b) => b.hits + (b.unmatchedHits || 0)));
  const step = plotW / Math.max(1, buckets.length);
  const titleId = `chart-${Math.random().toString(36).slice(2)}`;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': titleId, class: 'chart' },
    s('title', { id: titleId }, `${title}: ${timeline.hits} hits${timeline.unmatchedHits !== null ? `, ${timeline.unmatchedHits} unmatched` : ''} from ${when(timeline.since)} to ${when(timeline.until)}, per ${timeline.interval}`),
    s('defs', null, s('pattern', { id: 'hatch', width: 4, height: 4, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
      s('rect', { width: 2, height: 4, class: 'hatch' }))));
  for (const tick of [0, 0.5, 1]) {
    const y = 10 + plotH - tick * plotH;
    svg.append(s('line', { x1: left, x2: width - 8, y1: y, y2: y, class: 'grid' }),
      s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' }, String(Number.isInteger(max * tick) ? max * tick : (max * tick).toFixed(1))));
  }
  buckets.forEach((bucket, i) => {
    const x = left + i * step;
    const matchedH = (bucket.hits / max) * plotH;
    const unmatchedH = ((bucket.unmatchedHits || 0) / max) * plotH;
    const w = Math.max(1, step - 1);
    svg.append(s('rect', { x, y: 10 + plotH - matchedH, width: w, height: matchedH, class: 'bar' },
      s('title', null, `${when(bucket.start)}: ${bucket.hits} hits${bucket.unmatchedHits !== null ? `, ${bucket.unmatchedHits} unmatched` : ''}`)));
    if (unmatchedH > 0) {
      svg.append(s('rect', { x, y: 10 + plotH - matchedH - unmatchedH, width: w, height: unmatchedH, class: 'bar-unmatched', fill: 'url(#hatch)' }));
    }
    const every = Math.ceil(buckets.length / 8);
    if (i % every === 0) svg.append(s('text', { x: x + w / 2, y: height - 8, 'text-anchor': 'middle', class: 'axis' }, label(bucket.start, timeline.interval)));
  });
  const legend = h('p', { class: 'legend' },
    h('span', { class: 'key key-hits', 'aria-hidden': 'true' }), ' solid: redirected hits ',
    timeline.unmatchedHits !== null ? [h('span', { class: 'key key-unmatched', 'aria-hidden': 'true' }), ' hatched: unmatched (404) requests'] : null);
  const rows = buckets.filter((b) => b.hits || b.unmatchedHits);
  const table = h('details', null, h('summary', null, 'The numbers as a table'),
    rows.length ? h('table', null, h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'From'), h('th', { scope: 'col' }, 'Hits'),
      timeline.unmatchedHits !== null ? h('th', { scope: 'col' }, 'Unmatched') : null)),
    h('tbody', null, rows.map((b) => h('tr', null, h('td', null, when(b.start)), h('td', { class: 'number' }, String(b.hits)),
      timeline.unmatchedHits !== null ? h('td', { class: 'number' }, String(b.unmatchedHits)) : null))))
      : h('p', null, 'No hits in this range.'));
  return h('figure', { class: 'chart-box' }, svg, h('figcaption', null, legend, table));
}

export async function render(main, { params, stale }) {
  const interval = ['minute', 'hour', 'day'].includes(params.get('interval')) ? params.get('interval') : 'hour';
  const ruleUuid = params.get('rule') || '';
  const [summary, timeline, unmatched, unused, top] = await Promise.all([
    api('GET', '/api/v1/stats'),
    api('GET', '/api/v1/stats/timeline', { query: { interval, ruleUuid } }),
    api('GET', '/api/v1/stats/unmatched-paths', { query: { limit: 20 } }),
    api('GET', '/api/v1/stats/rules', { query: { unused: true, limit: 50, sort: 'from+ASC' } }),
    api('GET', '/api/v1/stats/rules', { query: { unused: false, limit: 50 } }),
  ]);
  if (stale()) return;
  const totals = summary.data;
  const choices = [['', 'the whole table'], ...top.data.items.map((r) => [r.uuid, `${r.from} → ${r.to} (${r.hits} hits)`])];
  if (ruleUuid && !top.data.items.some((r) => r.uuid === ruleUuid)) choices.push([ruleUuid, `rule ${ruleUuid}`]);
  const intervalField = field('Per', select([['minute', 'minute (last hour)'], ['hour', 'hour (last day)'], ['day', 'day (last 30 days)']], interval), { name: 'interval' });
  const ruleField = field('Hits of', select(choices, ruleUuid), { name: 'rule' });
  const form = h('form', { class: 'filters', 'aria-label': 'Chart settings' }, intervalField.row, ruleField.row,
    h('p', { class: 'actions' }, h('button', { type: 'submit' }, 'Show')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = route('#/traffic', { interval: intervalField.input.value, rule: ruleField.input.value });
  });
  const chosen = choices.find(([value]) => value === ruleUuid);
  fill(main, h('h1', null, 'Traffic'),
    h('p', { class: 'totals' }, `${totals.hits} redirects by ${totals.rulesHit} of ${totals.rules} rules (last ${when(totals.lastHit)}); `
      + `${totals.unmatchedHits} unmatched requests on ${totals.unmatchedPaths} paths. Counts trail the traffic by about a second.`),
    form,
    h('h2', null, `Hits per ${interval}: ${chosen ? chosen[1] : 'the whole table'}`),
    chart(timeline.data, ruleUuid ? 'Hits of the rule' : 'Hits of the whole table'),
    h('h2', null, 'Top unmatched paths'),
    unmatched.data.items.length
      ? h('table', { class: 'unmatched' }, h('caption', null, 'Requests no rule matched (answered 404), most requested first'),
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Path'), h('th', { scope: 'col' }, 'Requests'),
          h('th', { scope: 'col' }, 'Last'), h('th', { scope: 'col' }, 'Action'))),
        h('tbody', null, unmatched.data.items.map((p) => h('tr', null, h('td', null, h('code', null, p.path)),
          h('td', { class: 'number' }, String(p.hits)), h('td', null, when(p.lastHit)),
          h('td', null, h('a', { href: route('#/rules/new', { from: p.path }), class: 'button', 'aria-label': `Redirect ${p.path}` }, 'Redirect this path'))))))
      : notice('info', 'No unmatched requests yet.'),
    h('h2', null, 'Rules never hit'),
    h('p', null, 'Candidates for removal: no request has matched them since hits are counted.'),
    unused.data.items.length
      ? h('ul', { class: 'never-hit' }, unused.data.items.map((r) => h('li', null, h('code', null, r.from ?? ''), ' → ', h('code', null, r.to),
        ` (${r.status}) `, h('a', { href: `#/rules/edit/${r.uuid}` }, 'open'))),
      unused.data.metadata.pagination.totalCount > unused.data.items.length
        ? h('li', null, `… and ${unused.data.metadata.pagination.totalCount - unused.data.items.length} more`) : null)
      : notice('ok', 'Every rule has been hit.'));
}
