// The Studio's shell: hash routes in RavenDB's own shape
// (`#databases/tasks/ongoingTasks?database=shop`), the sidebar, the database picker and the
// server's reachability. A page is a module whose `render(ctx)` fills `ctx.view`; whatever it
// starts (polling) it stops through `ctx.onLeave`.

import { api, onReachabilityChange } from './api.js';
import { h, link, mount, errorBox } from './ui.js';

const PAGES = {
  databases: () => import('./pages/databases.js'),
  'databases/documents': () => import('./pages/documents.js'),
  'databases/edit': () => import('./pages/document.js'),
  'databases/tasks/ongoingTasks': () => import('./pages/tasks.js'),
  'databases/tasks/editRavenEtlTask': () => import('./pages/task_edit.js'),
  'databases/tasks/editSqlEtlTask': () => import('./pages/task_edit.js'),
  'databases/tasks/editRabbitMqEtlTask': () => import('./pages/task_edit.js'),
  'databases/tasks/editKafkaEtlTask': () => import('./pages/task_edit.js'),
  'databases/tasks/editAzureQueueStorageEtlTask': () => import('./pages/task_edit.js'),
  'databases/tasks/editAmazonSqsEtlTask': () => import('./pages/task_edit.js'),
  'databases/tasks/editNatsEtlTask': () => import('./pages/task_edit.js'),
  'databases/tasks/editOlapEtlTask': () => import('./pages/task_edit.js'),
  'databases/tasks/etlTaskDetails': () => import('./pages/task_details.js'),
  'databases/settings/connectionStrings': () => import('./pages/connections.js'),
};

const view = document.getElementById('view');
const sidebar = document.getElementById('sidebar');
const picker = document.getElementById('database-picker');
const status = document.getElementById('server-status');

let leaveHandlers = [];
let renderToken = 0;
let knownDatabases = [];
let currentPage = null;

/** Parses `#path?x=1` into {path, params}. */
export function currentRoute() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, '')) ? location.hash.slice(1) : '';
  const [rawPath, rawQuery = ''] = hash.split('?');
  const path = decodeURIComponent(rawPath || 'databases').replace(/\/+$/, '');
  const params = Object.fromEntries(new URLSearchParams(rawQuery));
  return { path, params };
}

/** Goes to a Studio page (a hash link made with ui.link). */
export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function render() {
  const token = ++renderToken;
  for (const handler of leaveHandlers) {
    try {
      handler();
    } catch {
      // a page's cleanup must not stop the next page
    }
  }
  leaveHandlers = [];
  currentPage = null;
  const { path, params } = currentRoute();
  renderSidebar(path, params.database);
  const loader = PAGES[path];
  if (!loader) {
    mount(view, h('h1', {}, 'Page not found'),
      h('p', {}, 'The Studio has no page ', h('code', {}, path), '. ', h('a', { href: '#databases' }, 'Go to the databases.')));
    return;
  }
  if (path !== 'databases' && !params.database) {
    mount(view, h('p', {}, 'Choose a database first: ', h('a', { href: '#databases' }, 'databases')));
    return;
  }
  try {
    const page = await loader();
    if (token !== renderToken) return;
    currentPage = page;
    const ctx = {
      view,
      path,
      params,
      database: params.database,
      onLeave: (handler) => leaveHandlers.push(handler),
      isCurrent: () => token === renderToken,
      navigate,
      refreshDatabases,
    };
    view.replaceChildren();
    await page.render(ctx);
    window.__corvidStudio.renders += 1;
  } catch (error) {
    if (token !== renderToken) return;
    mount(view, errorBox(error));
  }
}

function renderSidebar(path, database) {
  const item = (label, target, active) =>
    h('a', { href: target, class: active ? 'active' : '', 'aria-current': active ? 'page' : null }, label);
  const items = [item('Databases', '#databases', path === 'databases')];
  if (database) {
    items.push(h('div', { class: 'nav-db' }, database));
    items.push(item('Documents', link('databases/documents', { database }),
      path === 'databases/documents' || path === 'databases/edit'));
    items.push(item('Ongoing Tasks', link('databases/tasks/ongoingTasks', { database }),
      path.startsWith('databases/tasks')));
    items.push(item('Connection Strings', link('databases/settings/connectionStrings', { database }),
      path === 'databases/settings/connectionStrings'));
  }
  mount(sidebar, items);
  syncPicker(database);
}

function syncPicker(database) {
  const names = knownDatabases;
  const options = [h('option', { value: '' }, '— choose —')];
  for (const name of names) options.push(h('option', { value: name, selected: name === database }, name));
  if (database && !names.includes(database)) options.push(h('option', { value: database, selected: true }, database));
  mount(picker, options);
}

/** Re-reads the list of databases for the picker. */
export async function refreshDatabases() {
  try {
    const answer = await api.get('/databases', { namesOnly: true });
    knownDatabases = (answer?.Databases || []).map((it) => (typeof it === 'string' ? it : it.Name)).sort();
  } catch {
    // the picker keeps what it had; the page shows the error
  }
  syncPicker(currentRoute().params.database);
}

picker.addEventListener('change', () => {
  const database = picker.value;
  if (!database) {
    navigate('#databases');
    return;
  }
  const { path } = currentRoute();
  const keep = ['databases/documents', 'databases/tasks/ongoingTasks', 'databases/settings/connectionStrings'];
  navigate(link(keep.includes(path) ? path : 'databases/documents', { database }));
});

onReachabilityChange((away) => {
  document.body.classList.toggle('unreachable', away);
  status.textContent = away ? 'Server unreachable — retrying…' : '';
  status.className = away ? 'server-status away' : 'server-status';
  if (!away) {
    // Back: show the page from fresh data — unless it is a form the user is filling in
    // (`export const keepOnReconnect = true`): re-rendering it would throw away what was typed.
    refreshDatabases();
    if (!currentPage?.keepOnReconnect) render();
  }
});

// For the browser tests and anyone curious: how many pages rendered, how long lists took.
window.__corvidStudio = { renders: 0, timings: {} };

window.addEventListener('hashchange', render);
if (!location.hash) history.replaceState(null, '', '#databases');
refreshDatabases();
render();
