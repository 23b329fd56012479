// Documents: the collections with their counts on the left, one page of documents on the
// right (100 a page, paged by the server: a collection's page comes from its own index, so a
// collection of a million documents opens as fast as one of ten), select and delete, new.

import { api, dbPath } from '../api.js';
import { h, mount, toast, confirmDialog, errorBox, fmtNumber, fmtDate, link, busy } from '../ui.js';

const PAGE_SIZE = 100;
const PREVIEW_FIELDS = 6;
const PREVIEW_CHARS = 40;

export async function render(ctx) {
  const database = ctx.database;
  const collection = ctx.params.collection || '';
  let start = Math.max(0, Number.parseInt(ctx.params.start, 10) || 0);
  let total = null;
  let loadToken = 0;
  let shownOnPage = 0;
  const selected = new Set();

  const newButton = h('button', { type: 'button' }, 'New document');
  newButton.addEventListener('click', () => ctx.navigate(link('databases/edit', { database, collection })));
  const deleteButton = h('button', { type: 'button', class: 'danger', disabled: true }, 'Delete selected');
  deleteButton.addEventListener('click', () => busy(deleteButton, deleteSelected));
  const side = h('nav', { class: 'collections panel', style: 'align-self: start', 'aria-label': 'Collections' }, h('p', { class: 'muted' }, 'Loading…'));
  const status = h('span', { class: 'muted', role: 'status' });
  const prev = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Previous page');
  const next = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Next page');
  prev.addEventListener('click', () => goTo(Math.max(0, start - PAGE_SIZE)));
  next.addEventListener('click', () => goTo(start + PAGE_SIZE));
  const tableBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const pageError = h('div');

  mount(ctx.view,
    h('h1', {}, collection ? `Documents — ${collection}` : 'Documents — all'),
    h('div', { class: 'toolbar' }, newButton, deleteButton, h('span', { class: 'spacer' })),
    pageError,
    h('div', { class: 'split' },
      side,
      h('section', { 'aria-label': 'Documents' },
        tableBox,
        h('div', { class: 'pager' }, prev, next, status))));

  await Promise.all([loadCollections(), loadPage()]);

  async function loadCollections() {
    let stats;
    try {
      stats = await api.get(dbPath(database, '/collections/stats'));
    } catch (error) {
      if (ctx.isCurrent()) mount(side, errorBox(error));
      return;
    }
    if (!ctx.isCurrent()) return;
    const counts = stats?.Collections || {};
    const names = Object.keys(counts).sort((a, b) => a.localeCompare(b));
    const all = stats?.CountOfDocuments ?? names.reduce((sum, name) => sum + counts[name], 0);
    const match = names.find((name) => name.toLowerCase() === collection.toLowerCase());
    total = collection ? (match ? counts[match] : 0) : all;
    const item = (label, target, count, active) => h('a', {
      href: link('databases/documents', { database, collection: target }),
      class: active ? 'active' : '',
      'aria-current': active ? 'page' : null,
      dataset: { collection: target || '' },
    }, h('span', {}, label), h('span', { class: 'muted' }, fmtNumber(count)));
    mount(side,
      item('All documents', '', all, !collection),
      names.map((name) => item(name, name, counts[name], match === name)));
    if (collection && !match) {
      side.append(h('p', { class: 'muted' }, `There is no collection ${collection} (yet).`));
    }
    updatePager(null);
  }

  async function loadPage() {
    const token = ++loadToken;
    const t0 = performance.now();
    let answer;
    try {
      answer = collection
        ? await api.get(dbPath(database, '/collections/docs'), { name: collection, start, pageSize: PAGE_SIZE })
        : await api.get(dbPath(database, '/docs'), { start, pageSize: PAGE_SIZE });
    } catch (error) {
      if (!ctx.isCurrent() || token !== loadToken) return;
      mount(tableBox, errorBox(error));
      return;
    }
    if (!ctx.isCurrent() || token !== loadToken) return;
    const docs = (answer?.Results || []).filter(Boolean);
    selected.clear();
    mount(tableBox, table(docs));
    updateSelection();
    updatePager(docs.length);
    window.__corvidStudio.timings.documentsPage = performance.now() - t0;
  }

  function updatePager(count) {
    if (count !== null) shownOnPage = count;
    prev.disabled = start === 0;
    const more = total === null ? shownOnPage === PAGE_SIZE : start + shownOnPage < total;
    next.disabled = !more;
    if (!shownOnPage) {
      status.textContent = start === 0 ? 'No documents.' : 'No documents on this page.';
      return;
    }
    const of = total === null ? '' : ` of ${fmtNumber(total)}`;
    status.textContent = `Showing ${fmtNumber(start + 1)}–${fmtNumber(start + shownOnPage)}${of}`;
  }

  function goTo(newStart) {
    start = newStart;
    // The page lives in the hash too, so that back and reload keep it; replaceState does
    // not re-render.
    history.replaceState(null, '', link('databases/documents', { database, collection, start: start || null }));
    loadPage();
  }

  function table(docs) {
    if (!docs.length) {
      return h('p', { class: 'muted' }, collection
        ? `No documents in ${collection}${start ? ' on this page' : ''}.`
        : 'No documents in this database yet.');
    }
    const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all on this page' });
    selectAll.addEventListener('change', () => {
      for (const box of body.querySelectorAll('input[type=checkbox]')) {
        box.checked = selectAll.checked;
        if (selectAll.checked) selected.add(box.dataset.id);
        else selected.delete(box.dataset.id);
      }
      updateSelection();
    });
    const body = h('tbody', {}, docs.map(row));
    return h('table', { class: 'grid', 'aria-label': 'Documents' },
      h('thead', {}, h('tr', {},
        h('th', { style: 'width: 28px' }, selectAll),
        h('th', {}, 'Id'), h('th', {}, 'Collection'), h('th', {}, 'Last modified'), h('th', {}, 'Preview'))),
      body);
  }

  function row(doc) {
    const metadata = doc['@metadata'] || {};
    const id = metadata['@id'] || '';
    const box = h('input', { type: 'checkbox', 'aria-label': `Select ${id}`, dataset: { id } });
    box.addEventListener('change', () => {
      if (box.checked) selected.add(id);
      else selected.delete(id);
      updateSelection();
    });
    return h('tr', { dataset: { id } },
      h('td', {}, box),
      h('td', { style: 'white-space: nowrap' }, h('a', { href: link('databases/edit', { database, id }) }, id)),
      h('td', {}, metadata['@collection'] || ''),
      h('td', { style: 'white-space: nowrap', title: metadata['@last-modified'] || '' }, fmtDate(metadata['@last-modified'])),
      h('td', { class: 'preview' }, preview(doc)));
  }

  function updateSelection() {
    deleteButton.disabled = selected.size === 0;
    deleteButton.textContent = selected.size ? `Delete selected (${selected.size})` : 'Delete selected';
  }

  async function deleteSelected() {
    const ids = [...selected];
    if (!ids.length) return;
    const ok = await confirmDialog(
      ids.length === 1 ? `Delete ${ids[0]}?` : `Delete ${ids.length} documents?`,
      `${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ` and ${ids.length - 5} more` : ''} will be deleted. This cannot be undone.`);
    if (!ok) return;
    const failures = [];
    for (const id of ids) {
      try {
        await api.del(dbPath(database, '/docs'), { id });
      } catch (error) {
        failures.push(`${id}: ${error.message}`);
        if (error.unreachable) break;
      }
    }
    if (!ctx.isCurrent()) return;
    if (failures.length) {
      mount(pageError, errorBox({ type: 'Not deleted', message: failures.join('\n') }));
    } else {
      mount(pageError);
      toast(ids.length === 1 ? `Deleted ${ids[0]}` : `Deleted ${ids.length} documents`, 'ok');
    }
    await loadCollections();
    if (total !== null && start >= total && start > 0) start = Math.max(0, start - PAGE_SIZE);
    await loadPage();
  }
}

/** `Name: "Ann", Age: 42, Address: {…}` from the first fields, cheap whatever the size. */
function preview(doc) {
  const parts = [];
  for (const key of Object.keys(doc)) {
    if (key === '@metadata') continue;
    if (parts.length === PREVIEW_FIELDS) {
      parts.push('…');
      break;
    }
    parts.push(`${key}: ${short(doc[key])}`);
  }
  return parts.join(', ');
}

function short(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.length}]`;
  if (typeof value === 'object') return '{…}';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
}
