// A small code editor: a <textarea> for typing (so the browser's own editing, undo and
// accessibility work) over a highlighted copy of its text, with line numbers and an error
// marker at a line and column. JavaScript and JSON.

import { h } from './ui.js';

const KEYWORDS = new Set(('var let const function return if else for while do break continue new delete typeof ' +
  'instanceof in of switch case default throw try catch finally this').split(' '));
const LITERALS = new Set(['true', 'false', 'null', 'undefined', 'NaN', 'Infinity']);

function escape(text) {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

const TOKEN = /(\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|("(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?|`(?:[^`\\]|\\[\s\S])*`?)|(\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_$][\w$]*)/g;

/** Highlighted HTML of a text. */
export function highlight(text, language) {
  let html = '';
  let last = 0;
  TOKEN.lastIndex = 0;
  for (let match = TOKEN.exec(text); match; match = TOKEN.exec(text)) {
    html += escape(text.slice(last, match.index));
    const [token, comment, string, number, word] = match;
    let kind = null;
    if (comment && language !== 'json') kind = 'com';
    else if (string) kind = language === 'json' && /^\s*:/.test(text.slice(match.index + token.length)) ? 'key' : 'str';
    else if (number) kind = 'num';
    else if (word) {
      if (LITERALS.has(word)) kind = 'lit';
      else if (language !== 'json' && KEYWORDS.has(word)) kind = 'kw';
      else if (language !== 'json' && /^loadTo|^(load|id|output|getMetadata|hasAttachment|loadAttachment|varchar)$/.test(word)) kind = 'fn';
    }
    html += kind ? `<span class="tok-${kind}">${escape(token)}</span>` : escape(token);
    last = match.index + token.length;
  }
  return html + escape(text.slice(last));
}

/**
 * createEditor({value, language, label, rows}) → {el, value, setValue, setError, clearError,
 * onChange, focus}. `label` names the textarea for screen readers and tests.
 */
export function createEditor({ value = '', language = 'javascript', label = 'Code', rows = 12 } = {}) {
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const pre = h('pre', { 'aria-hidden': 'true' });
  const textarea = h('textarea', {
    spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', wrap: 'off',
    'aria-label': label, rows, class: 'code-input',
  });
  const message = h('div', { class: 'editor-message', role: 'alert' });
  const box = h('div', { class: 'editor', dataset: { language } }, gutter, h('div', { class: 'code' }, pre, textarea));
  const el = h('div', { class: 'editor-wrap' }, box, message);
  const listeners = [];
  let errorLine = 0;
  let lines = -1;

  function paint() {
    const text = textarea.value;
    let html = highlight(text, language);
    if (errorLine > 0) {
      const parts = html.split('\n');
      if (errorLine <= parts.length) parts[errorLine - 1] = `<span class="err-line">${parts[errorLine - 1] || ' '}</span>`;
      html = parts.join('\n');
    }
    pre.innerHTML = `${html}\n`;
    const count = text.split('\n').length;
    if (count !== lines) {
      // Grow with the text up to 32 lines, then scroll.
      textarea.style.height = `${Math.min(Math.max(count, rows), 32) * 19 + 18}px`;
      // The line numbers scroll with the text; they never make the box taller.
      gutter.style.height = textarea.style.height;
    }
    if (count !== lines || errorLine) {
      lines = count;
      let numbers = '';
      for (let i = 1; i <= count; i += 1) numbers += i === errorLine ? `<span class="err">${i}</span>\n` : `${i}\n`;
      gutter.innerHTML = numbers;
    }
    syncScroll();
  }
  function syncScroll() {
    pre.scrollTop = textarea.scrollTop;
    pre.scrollLeft = textarea.scrollLeft;
    gutter.scrollTop = textarea.scrollTop;
  }
  textarea.addEventListener('input', () => {
    if (errorLine) clearError();
    paint();
    for (const listener of listeners) listener(textarea.value);
  });
  textarea.addEventListener('scroll', syncScroll);
  textarea.addEventListener('keydown', (event) => {
    if (event.key === 'Tab' && !event.shiftKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      document.execCommand('insertText', false, '  ');
    }
  });

  function setValue(text) {
    textarea.value = text;
    lines = -1;
    paint();
  }
  function setError(line, column, text) {
    errorLine = line || 0;
    lines = -1;
    message.textContent = text || '';
    el.classList.add('invalid');
    paint();
    if (line) {
      // Put the caret where the error is.
      const all = textarea.value.split('\n');
      let offset = 0;
      for (let i = 0; i < Math.min(line - 1, all.length); i += 1) offset += all[i].length + 1;
      offset += Math.max(0, (column || 1) - 1);
      textarea.setSelectionRange(offset, offset);
    }
  }
  function clearError() {
    errorLine = 0;
    lines = -1;
    message.textContent = '';
    el.classList.remove('invalid');
    paint();
  }
  setValue(value);
  el.editor = {
    el,
    get value() {
      return textarea.value;
    },
    setValue,
    setError,
    clearError,
    onChange: (listener) => listeners.push(listener),
    focus: () => textarea.focus(),
    textarea,
  };
  return el.editor;
}

/**
 * Checks JSON text and says where it is wrong: null when valid, else {line, column, message}.
 * The browser's own message does not always give a position, so this walks the text itself.
 */
export function jsonError(text) {
  let i = 0;
  const fail = (message) => {
    const before = text.slice(0, i).split('\n');
    const error = new Error(message);
    error.line = before.length;
    error.column = before[before.length - 1].length + 1;
    throw error;
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i += 1;
  };
  const describe = () => (i >= text.length ? 'the end of the text' : `'${text[i]}'`);
  function value() {
    ws();
    const c = text[i];
    if (c === '{') return object();
    if (c === '[') return array();
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    fail(`expected a value, found ${describe()}`);
  }
  function object() {
    i += 1;
    ws();
    if (text[i] === '}') {
      i += 1;
      return;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') fail(`expected a property name in double quotes, found ${describe()}`);
      string();
      ws();
      if (text[i] !== ':') fail(`expected ':' after the property name, found ${describe()}`);
      i += 1;
      value();
      ws();
      if (text[i] === ',') {
        i += 1;
        ws();
        if (text[i] === '}') fail("a trailing ',' before '}' is not allowed in JSON");
        continue;
      }
      if (text[i] === '}') {
        i += 1;
        return;
      }
      fail(`expected ',' or '}', found ${describe()}`);
    }
  }
  function array() {
    i += 1;
    ws();
    if (text[i] === ']') {
      i += 1;
      return;
    }
    for (;;) {
      value();
      ws();
      if (text[i] === ',') {
        i += 1;
        ws();
        if (text[i] === ']') fail("a trailing ',' before ']' is not allowed in JSON");
        continue;
      }
      if (text[i] === ']') {
        i += 1;
        return;
      }
      fail(`expected ',' or ']', found ${describe()}`);
    }
  }
  function string() {
    i += 1;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') {
        i += 1;
        return;
      }
      if (c === '\n') fail('a string must end on the line it starts');
      if (c === '\\') {
        i += 1;
        if (!'"\\/bfnrtu'.includes(text[i] || '')) fail(`invalid escape \\${text[i] || ''}`);
        if (text[i] === 'u' && !/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('\\u needs four hex digits');
      }
      i += 1;
    }
    fail('the string is not closed');
  }
  function number() {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match) fail(`invalid number at ${describe()}`);
    i += match[0].length;
  }
  try {
    value();
    ws();
    if (i < text.length) fail(`unexpected ${describe()} after the end of the JSON value`);
    return null;
  } catch (error) {
    return { line: error.line, column: error.column, message: error.message };
  }
}
