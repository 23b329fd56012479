// Databases: the list (documents, collections, size), create, delete.

import { api, dbPath } from '../api.js';
import { h, mount, field, toast, confirmDialog, errorBox, fmtNumber, fmtBytes, link, busy } from '../ui.js';

const VALID_NAME = /^[A-Za-z0-9_\-.]+$/;

export async function render(ctx) {
  const nameInput = h('input', { name: 'database-name', placeholder: 'shop', autocomplete: 'off' });
  const nameField = field('New database name', nameInput);
  const createButton = h('button', { type: 'submit' }, 'Create database');
  const form = h('form', { class: 'panel row', onsubmit: create },
    nameField, h('div', { style: 'flex: none; padding-top: 22px' }, createButton));
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  mount(ctx.view, h('h1', {}, 'Databases'), form, list);
  await load();

  async function load() {
    let answer;
    try {
      answer = await api.get('/databases');
    } catch (error) {
      mount(list, errorBox(error));
      return;
    }
    const names = (answer?.Databases || []).map((it) => it.Name).sort();
    if (!names.length) {
      mount(list, h('p', { class: 'muted' }, 'No databases yet. Create one above.'));
      return;
    }
    const details = await Promise.all(names.map(async (name) => {
      try {
        const [stats, collections] = await Promise.all([
          api.get(dbPath(name, '/stats')),
          api.get(dbPath(name, '/collections/stats')),
        ]);
        return { name, stats, collections };
      } catch (error) {
        return { name, error };
      }
    }));
    if (!ctx.isCurrent()) return;
    mount(list, h('table', { class: 'grid', 'aria-label': 'Databases' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'Name'), h('th', { class: 'num' }, 'Documents'), h('th', { class: 'num' }, 'Collections'),
        h('th', { class: 'num' }, 'Size'), h('th', {}, ''))),
      h('tbody', {}, details.map(row))));
  }

  function row({ name, stats, collections, error }) {
    const remove = h('button', { type: 'button', class: 'secondary', 'aria-label': `Delete database ${name}` }, 'Delete');
    remove.addEventListener('click', () => busy(remove, async () => {
      const ok = await confirmDialog(`Delete database ${name}?`,
        `Every document of ${name}, its ETL tasks and connection strings are deleted. This cannot be undone.`);
      if (!ok) return;
      try {
        await api.del('/admin/databases', {}, { DatabaseNames: [name], HardDelete: true });
        toast(`Database ${name} deleted`, 'ok');
        await ctx.refreshDatabases();
        await load();
      } catch (err) {
        toast(err.message, 'error');
      }
    }));
    return h('tr', { dataset: { database: name } },
      h('td', {}, h('a', { href: link('databases/documents', { database: name }) }, name)),
      h('td', { class: 'num' }, error ? '–' : fmtNumber(stats.CountOfDocuments)),
      h('td', { class: 'num' }, error ? '–' : fmtNumber(Object.keys(collections.Collections || {}).length)),
      h('td', { class: 'num' }, error ? '–' : fmtBytes(stats.SizeOnDisk?.SizeInBytes)),
      h('td', {},
        error ? h('span', { class: 'field-error' }, error.message) : null,
        h('a', { href: link('databases/tasks/ongoingTasks', { database: name }), class: 'button secondary' }, 'Tasks'),
        ' ', remove));
  }

  async function create(event) {
    event.preventDefault();
    const name = nameInput.value.trim();
    nameField.setError('');
    if (!name) {
      nameField.setError('Enter a name.');
      return;
    }
    if (!VALID_NAME.test(name)) {
      nameField.setError('Use letters, digits, and _ - . only.');
      return;
    }
    await busy(createButton, async () => {
      try {
        await api.put('/admin/databases', { name }, { DatabaseName: name });
        toast(`Database ${name} created`, 'ok');
        nameInput.value = '';
        await ctx.refreshDatabases();
        await load();
      } catch (error) {
        nameField.setError(error.message);
      }
    });
  }
}
