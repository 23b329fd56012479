// Small DOM helpers shared by the pages: element building, dialogs, toasts, formatting.

/** h('button', {class: 'primary', onclick}, 'Save') — attributes starting with "on" are listeners. */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      element.className = value;
    } else if (key === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (key === 'value') {
      element.value = value;
    } else if (key === 'checked' || key === 'disabled' || key === 'selected') {
      element[key] = Boolean(value);
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's content. */
export function mount(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A labelled field: the label wraps the control so tests and screen readers find it by name. */
export function field(label, control, { hint, id } = {}) {
  const error = h('div', { class: 'field-error', role: 'alert' });
  const wrapper = h('div', { class: 'field', dataset: id ? { field: id } : {} },
    h('label', {}, h('span', { class: 'label' }, label), control),
    hint ? h('div', { class: 'hint' }, hint) : null,
    error);
  wrapper.setError = (message) => {
    error.textContent = message || '';
    wrapper.classList.toggle('invalid', Boolean(message));
  };
  return wrapper;
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 3500);
}

/** Asks before something that cannot be undone; resolves true when confirmed. */
export function confirmDialog(title, text, okLabel = 'Delete') {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm', 'aria-label': title },
      h('h3', {}, title),
      h('p', {}, text),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', onclick: () => close(true) }, okLabel)));
    function close(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Shows an error from the server (or the network) in a box. */
export function errorBox(error) {
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', {}, error.unreachable ? 'Server unreachable' : (error.type ? shortType(error.type) : 'Error')),
    ' ', error.message);
}

export function shortType(type) {
  return String(type).split('.').pop();
}

export function fmtNumber(value) {
  if (value === undefined || value === null || Number.isNaN(value)) return '–';
  return Number(value).toLocaleString('en-US', { maximumFractionDigits: 1 });
}

export function fmtBytes(bytes) {
  if (bytes === undefined || bytes === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function fmtDate(text) {
  if (!text) return '–';
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return String(text);
  return date.toLocaleString('en-GB', { hour12: false });
}

export function fmtMs(ms) {
  if (ms === undefined || ms === null) return '–';
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

/** The hash link of a Studio page. */
export function link(path, params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ''}`;
}

/** Runs an async action from a button, disabling it meanwhile. */
export async function busy(button, action) {
  const wasDisabled = button.disabled;
  button.disabled = true;
  button.classList.add('busy');
  try {
    return await action();
  } finally {
    button.disabled = wasDisabled;
    button.classList.remove('busy');
  }
}
