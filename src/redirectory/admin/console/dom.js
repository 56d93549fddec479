// Building the page. Everything from the API goes in as text (text nodes, textContent, attribute
// values set one by one): no HTML string is ever parsed, so a rule's note or target cannot become
// markup or script, whatever it holds.

/** An element: h('p', {class: 'x', onclick: f}, 'text', child, [more, children]). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.className = value;
    } else if (name === 'value' || name === 'checked' || name === 'selected') {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let counter = 0;
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** Say something to screen readers (the page's live region). */
export function announce(text) {
  const region = document.getElementById('announce');
  if (region) region.textContent = text;
}

/** A labelled control with a slot for its error: {row, input, error}. `name` is the API field. */
export function field(label, control, { name, hint } = {}) {
  const id = control.id || uid('f');
  control.id = id;
  if (name) control.name = name;
  const error = h('p', { class: 'field-error', id: `${id}-error`, 'data-error-for': name || id, hidden: true });
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  control.setAttribute('aria-describedby', [hintEl ? hintEl.id : null, error.id].filter(Boolean).join(' '));
  const labelEl = control.type === 'checkbox'
    ? h('label', { for: id, class: 'check' }, control, ' ', label)
    : h('label', { for: id }, label);
  const row = h('div', { class: 'field' }, labelEl, control.type === 'checkbox' ? null : control, hintEl, error);
  return { row, input: control, error };
}

export function input(props = {}) {
  return h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...props });
}

export function select(options, value, props = {}) {
  const el = h('select', props);
  for (const option of options) {
    const [optionValue, text] = Array.isArray(option) ? option : [option, option];
    el.append(h('option', { value: String(optionValue), selected: String(optionValue) === String(value ?? '') }, text));
  }
  return el;
}

export function button(text, onclick, props = {}) {
  return h('button', { type: 'button', onclick, ...props }, text);
}

/** A message box; kind is info, ok, warn or error (spelt out in words too, never colour only). */
export function notice(kind, ...children) {
  const words = { info: 'Note:', ok: 'Done:', warn: 'Warning:', error: 'Error:' };
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('strong', null, words[kind]), ' ', children);
}

export function when(value) {
  if (!value) return 'never';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}

/** A <dialog> asking to confirm; resolves true or false. Keyboard: Esc cancels, focus starts on Cancel. */
export function confirmDialog(title, body, confirmText = 'Confirm') {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const cancel = button('Cancel', () => dialog.close('cancel'));
    const ok = button(confirmText, () => dialog.close('confirm'), { class: 'danger' });
    const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'confirm' },
      h('h2', { id: titleId }, title), h('div', { class: 'dialog-body' }, body), h('p', { class: 'actions' }, cancel, ' ', ok));
    dialog.addEventListener('close', () => {
      const opener = document.activeElement;
      dialog.remove();
      resolve(dialog.returnValue === 'confirm');
      if (opener && opener.focus) opener.focus();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Query parameters of the page URL's fragment (#/page?a=1). */
export function hashParams() {
  const hash = location.hash || '';
  const at = hash.indexOf('?');
  return new URLSearchParams(at < 0 ? '' : hash.slice(at + 1));
}

export function hashPath() {
  const hash = (location.hash || '#/').slice(1);
  const at = hash.indexOf('?');
  return at < 0 ? hash : hash.slice(0, at);
}

/** A fragment link: link('#/rules', {q: '/x'}). Empty values are left out. */
export function route(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

const RULE_REF = /\b(rule )([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/g;

/** An error's detail as text, with every "rule <uuid>" it names made a link to that rule. */
export function detailText(detail) {
  const out = [];
  let last = 0;
  for (const match of String(detail).matchAll(RULE_REF)) {
    out.push(detail.slice(last, match.index), match[1]);
    out.push(h('a', { href: `#/rules/edit/${match[2]}`, class: 'rule-ref' }, match[2]));
    last = match.index + match[0].length;
  }
  out.push(String(detail).slice(last));
  return out;
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll('.field-error')) {
    slot.replaceChildren();
    slot.hidden = true;
  }
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
  const summary = form.querySelector('.form-errors');
  if (summary) summary.replaceChildren();
}

/**
 * Show an ApiError's items next to the fields they name (`fields[0]`, the API's field name, is
 * the control's `name`); the others, and a summary, at the top of the form. Focus moves to the
 * first invalid control.
 */
export function showErrors(form, error, title) {
  clearErrors(form);
  const summary = form.querySelector('.form-errors');
  const items = error.items && error.items.length ? error.items : [{ detail: error.message }];
  const general = [];
  let first = null;
  for (const item of items) {
    const name = item.fields && item.fields[0] ? item.fields[0].split(/[.[]/)[0] : null;
    const slot = name ? form.querySelector(`.field-error[data-error-for="${CSS.escape(name)}"]`) : null;
    if (!slot) {
      general.push(item);
      continue;
    }
    slot.hidden = false;
    slot.append(h('span', { class: 'error-word' }, 'Error: '), ...detailText(item.detail), ' ');
    const control = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      first = first || control;
    }
  }
  if (summary) {
    const heading = title || `The server refused this (${error.status}):`;
    summary.append(notice('error', heading, general.length
      ? h('ul', null, general.map((item) => h('li', null, detailText(item.detail))))
      : ' see the fields marked below.'));
  }
  (first || summary || form).focus?.();
  if (!first && summary) summary.scrollIntoView({ block: 'nearest' });
}
