// Manage Ongoing Tasks (`#databases/tasks/ongoingTasks?database=X`): the ETL tasks (RavenDB,
// SQL, Queue and OLAP ETL) with their state and, per transformation, what is left and how fast
// it goes (for OLAP ETL, what is left for its next run) — refreshed every second
// by polling /tasks and /etl/progress. Each task's card is built once and then only its texts
// change, so a list of 50 tasks costs the page almost nothing per refresh.

import { api, dbPath, TASK_TYPES } from '../api.js';
import { h, mount, toast, confirmDialog, errorBox, fmtNumber, link, busy } from '../ui.js';
import { recordRates } from './task_details.js';
import { BROKERS, brokerOfType } from './task_edit_queue.js';
import { nextRunText } from './task_edit_olap.js';

/** The task types this page shows (`TaskType` of /tasks). */
const ETL_TASK_TYPES = ['RavenEtl', 'SqlEtl', 'QueueEtl', 'OlapEtl'];

const REFRESH_MS = 1000;

/** The state shown for a task: Disabled, Error, Reconnect (in fallback) or Active. */
export function taskState(task) {
  if (task.TaskState === 'Disabled') return 'Disabled';
  if (task.Error) return 'Error';
  if (task.TaskConnectionStatus === 'Reconnect') return 'Reconnect';
  if (task.TaskConnectionStatus === 'NotActive') return 'Disabled';
  return 'Active';
}

export function destinationOf(task) {
  if (task.TaskType === 'RavenEtl') {
    const url = task.DestinationUrl || (task.TopologyDiscoveryUrls || [])[0] || '?';
    return `${url} → ${task.DestinationDatabase || '?'}`;
  }
  if (task.TaskType === 'SqlEtl') {
    if (!task.ConnectionStringDefined) return `connection string ${task.ConnectionStringName} is missing`;
    const engine = task.DestinationEngine || 'SQL';
    if (engine === 'SQLite') return `SQLite · ${task.DestinationDatabase || '?'}`;
    return `${engine} · ${task.DestinationServer || '?'} / ${task.DestinationDatabase || '?'}`;
  }
  if (task.TaskType === 'QueueEtl') {
    if (!task.ConnectionStringDefined) return `connection string ${task.ConnectionStringName} is missing`;
    return `${brokerOfType(task.BrokerType).label} · ${task.Url || '?'}`;
  }
  if (task.TaskType === 'OlapEtl') {
    if (!task.ConnectionStringDefined) return `connection string ${task.ConnectionStringName} is missing`;
    return task.Destination || '?';
  }
  return '';
}

export function editLink(database, task) {
  const page = task.TaskType === 'QueueEtl' ? brokerOfType(task.BrokerType).route
    : task.TaskType === 'SqlEtl' ? 'databases/tasks/editSqlEtlTask'
      : task.TaskType === 'OlapEtl' ? 'databases/tasks/editOlapEtlTask' : 'databases/tasks/editRavenEtlTask';
  return link(page, { database, taskId: task.TaskId });
}

/** The badge of a task's type: RavenDB ETL, SQL ETL, OLAP ETL, RabbitMQ ETL… */
export function typeLabel(task) {
  if (task.TaskType === 'QueueEtl') return `${brokerOfType(task.BrokerType).label} ETL`;
  return { SqlEtl: 'SQL ETL', OlapEtl: 'OLAP ETL' }[task.TaskType] || 'RavenDB ETL';
}

/**
 * A transformation's status: disabled, up to date, working; for OLAP ETL, whose documents
 * wait for a run, when the next run is.
 */
export function processStatus(task, process) {
  if (process.Disabled) return 'disabled';
  if (process.Completed) return 'up to date';
  if (task.TaskType !== 'OlapEtl') return 'working';
  return nextRunText(task.Configuration?.RunFrequency) || 'waiting for a run';
}

/** The "add a task" links, one per kind of ETL (the brokers Corvid publishes to). */
export function addTaskLinks(database) {
  return [
    h('a', { href: link('databases/tasks/editRavenEtlTask', { database }) }, 'RavenDB ETL'),
    h('a', { href: link('databases/tasks/editSqlEtlTask', { database }) }, 'SQL ETL'),
    h('a', { href: link('databases/tasks/editOlapEtlTask', { database }) }, 'OLAP ETL'),
    ...BROKERS.filter((it) => it.supported).map((it) => h('a', { href: link(it.route, { database }) }, `${it.label} ETL`)),
  ];
}

/** Enables or disables a task. */
export async function setDisabled(database, task, disable) {
  await api.post(dbPath(database, '/admin/tasks/state'), { key: task.TaskId, type: task.TaskType, disable, taskName: task.TaskName });
}

/** Deletes a task after asking; true when deleted. */
export async function deleteTask(database, task) {
  const ok = await confirmDialog(`Delete task ${task.TaskName}?`,
    'The task stops and its configuration and progress are removed. What it already sent stays at the destination.');
  if (!ok) return false;
  await api.del(dbPath(database, '/admin/tasks'), { id: task.TaskId, type: task.TaskType, taskName: task.TaskName });
  toast(`Task ${task.TaskName} deleted`, 'ok');
  return true;
}

/** Resets one transformation (or all) after asking; true when reset. */
export async function resetTask(database, task, transformation) {
  const names = transformation ? [transformation] : (task.Configuration?.Transforms || []).map((t) => t.Name);
  const ok = await confirmDialog(`Reset ${transformation ? `transformation ${transformation}` : `task ${task.TaskName}`}?`,
    'Everything is sent again from the beginning of the database.', 'Reset');
  if (!ok) return false;
  for (const name of names) {
    await api.send('RESET', dbPath(database, '/admin/etl'), { params: { configurationName: task.TaskName, transformationName: name } });
  }
  toast(`Task ${task.TaskName} reset`, 'ok');
  return true;
}

export async function render(ctx) {
  const { database } = ctx;
  const addMenu = h('div', { class: 'menu-items', hidden: true }, addTaskLinks(database));
  const addButton = h('button', { type: 'button', 'aria-haspopup': 'true', onclick: () => { addMenu.hidden = !addMenu.hidden; } }, 'Add Task');
  const list = h('div', { class: 'tasks', 'aria-label': 'Ongoing tasks' }, h('p', { class: 'muted' }, 'Loading…'));
  const problem = h('div');
  mount(ctx.view,
    h('div', { class: 'toolbar' }, h('h1', { style: 'margin:0' }, 'Ongoing Tasks'), h('span', { class: 'spacer' }),
      h('div', { class: 'menu' }, addButton, addMenu)),
    problem, list);
  const closeMenu = (event) => {
    if (!addButton.contains(event.target)) addMenu.hidden = true;
  };
  document.addEventListener('click', closeMenu);
  ctx.onLeave(() => document.removeEventListener('click', closeMenu));

  const cards = new Map();
  let timer = null;
  let stopped = false;
  ctx.onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });

  async function refresh() {
    const started = performance.now();
    try {
      const [tasks, progress] = await Promise.all([
        api.get(dbPath(database, '/tasks')),
        api.get(dbPath(database, '/etl/progress')),
      ]);
      if (stopped) return;
      problem.replaceChildren();
      update(tasks?.OngoingTasksList || [], progress?.Results || []);
    } catch (error) {
      if (stopped) return;
      mount(problem, errorBox(error));
    }
    window.__corvidStudio.timings.tasksRefresh = performance.now() - started;
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  function update(tasks, progress) {
    const byName = new Map(progress.map((it) => [it.TaskName, it.ProcessesProgress || []]));
    const seen = new Set();
    const etlTasks = tasks.filter((task) => ETL_TASK_TYPES.includes(task.TaskType));
    if (!etlTasks.length) {
      cards.clear();
      mount(list, h('div', { class: 'panel' },
        h('p', {}, 'No ongoing tasks yet.'),
        h('p', {}, 'Add one: ', addTaskLinks(database).flatMap((it, i) => (i ? [', ', it] : [it])), '.')));
      return;
    }
    if (!cards.size) list.replaceChildren();
    for (const task of etlTasks) {
      const key = `${task.TaskType}/${task.TaskId}`;
      seen.add(key);
      let card = cards.get(key);
      if (!card) {
        card = makeCard(task);
        cards.set(key, card);
        list.append(card.el);
      }
      card.update(task, byName.get(task.TaskName) || []);
    }
    for (const [key, card] of cards) {
      if (!seen.has(key)) {
        card.el.remove();
        cards.delete(key);
      }
    }
  }

  function makeCard(initial) {
    let task = initial;
    const name = h('a', { class: 'name', href: link('databases/tasks/etlTaskDetails', { database, taskId: task.TaskId, type: task.TaskType }) });
    const type = h('span', { class: 'badge type' }, typeLabel(task));
    const state = h('span', { class: 'badge', role: 'status' });
    const dest = h('span', { class: 'dest' });
    const toggle = h('button', { type: 'button', class: 'secondary' });
    const edit = h('a', { class: 'button secondary', href: editLink(database, task) }, 'Edit');
    const reset = h('button', { type: 'button', class: 'secondary' }, 'Reset');
    const remove = h('button', { type: 'button', class: 'secondary' }, 'Delete');
    const error = h('div', { class: 'task-error', role: 'alert' });
    const rows = h('div', { class: 'task-body' });
    const el = h('section', { class: 'task', dataset: { task: task.TaskName } },
      h('div', { class: 'task-head' }, name, type, state, dest,
        h('div', { class: 'actions' }, toggle, edit, reset, remove)),
      error, rows);
    toggle.addEventListener('click', () => busy(toggle, async () => {
      const disable = task.TaskState !== 'Disabled';
      try {
        await setDisabled(database, task, disable);
        toast(`Task ${task.TaskName} ${disable ? 'disabled' : 'enabled'}`, 'ok');
      } catch (err) {
        toast(err.message, 'error');
      }
      clearTimeout(timer);
      refresh();
    }));
    reset.addEventListener('click', () => busy(reset, async () => {
      try {
        await resetTask(database, task);
      } catch (err) {
        toast(err.message, 'error');
      }
    }));
    remove.addEventListener('click', () => busy(remove, async () => {
      try {
        if (await deleteTask(database, task)) {
          clearTimeout(timer);
          refresh();
        }
      } catch (err) {
        toast(err.message, 'error');
      }
    }));
    const rowCells = new Map();
    const header = h('div', { class: 'transform-row header' },
      h('span', {}, 'Transformation'), h('span', { class: 'num' }, 'Documents left'), h('span', { class: 'num' }, 'Tombstones left'),
      h('span', { class: 'num' }, 'Processed/s'), h('span', { class: 'num' }, 'Total'), h('span', {}, ''));
    let last = {};

    function update(next, processes) {
      task = next;
      setText(name, task.TaskName);
      const shown = taskState(task);
      setText(state, shown === 'Reconnect' ? 'Reconnect (fallback)' : shown);
      state.className = `badge ${shown}`;
      setText(dest, destinationOf(task));
      setText(toggle, task.TaskState === 'Disabled' ? 'Enable' : 'Disable');
      edit.href = editLink(database, task);
      const problemText = task.Error || (task.LoadError ? `${task.LoadErrorClass ? `${task.LoadErrorClass}: ` : ''}${task.LoadError}` : '');
      setText(error, problemText);
      if (!rows.firstChild) rows.append(header);
      const now = performance.now();
      const rates = {};
      for (const process of processes) {
        let cells = rowCells.get(process.TransformationName);
        if (!cells) {
          cells = {
            docs: h('span', { class: 'num' }), tombstones: h('span', { class: 'num' }), rate: h('span', { class: 'num' }), total: h('span', { class: 'num' }),
            status: h('span', { class: 'muted' }),
          };
          rowCells.set(process.TransformationName, cells);
          rows.append(h('div', { class: 'transform-row', dataset: { transformation: process.TransformationName } },
            h('span', {}, process.TransformationName), cells.docs, cells.tombstones, cells.rate, cells.total, cells.status));
        }
        const done = (process.TotalNumberOfDocuments - process.NumberOfDocumentsToProcess)
          + (process.TotalNumberOfDocumentTombstones - process.NumberOfDocumentTombstonesToProcess);
        const before = last[process.TransformationName];
        const rate = before ? Math.max(0, ((done - before.done) * 1000) / Math.max(1, now - before.at)) : 0;
        last[process.TransformationName] = { done, at: now };
        rates[process.TransformationName] = rate;
        setText(cells.docs, fmtNumber(process.NumberOfDocumentsToProcess));
        setText(cells.tombstones, fmtNumber(process.NumberOfDocumentTombstonesToProcess));
        setText(cells.rate, before ? fmtNumber(rate) : '…');
        setText(cells.total, fmtNumber(process.TotalNumberOfDocuments));
        setText(cells.status, processStatus(task, process));
      }
      recordRates(database, task.TaskName, rates);
    }
    return { el, update };
  }

  await refresh();
}

function setText(element, text) {
  const value = String(text ?? '');
  if (element.textContent !== value) element.textContent = value;
}

export { TASK_TYPES };
