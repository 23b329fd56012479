// One ETL task in detail (`#databases/tasks/etlTaskDetails?database=X&taskId=N&type=RavenEtl`):
// its state and actions, the counts of /etl/stats, the errors with the documents that failed
// and when, the last batches as a timeline (the server's /etl/performance), and
// processed-per-second over the last minutes. An OLAP ETL task also shows its run schedule.

import { api, dbPath } from '../api.js';
import { batchTimeline, rateChart, COLORS } from '../chart.js';
import { h, mount, toast, errorBox, fmtDate, fmtNumber, fmtMs, link, busy } from '../ui.js';
import { taskState, destinationOf, editLink, setDisabled, deleteTask, resetTask, typeLabel, processStatus } from './tasks.js';
import { nextRunText } from './task_edit_olap.js';

const REFRESH_MS = 1000;
const HISTORY_MS = 10 * 60 * 1000;

// Rates seen by this browser tab, per database/task/transformation, kept while the Studio is
// open so that the chart has history when the page is opened.
const history = new Map();

/** Records one reading of each transformation's processed-per-second. */
export function recordRates(database, taskName, rates) {
  const now = Date.now();
  for (const [transformation, rate] of Object.entries(rates)) {
    const key = `${database}\u0000${taskName}\u0000${transformation}`;
    const points = history.get(key) || [];
    points.push({ t: now, v: rate });
    while (points.length && now - points[0].t > HISTORY_MS) points.shift();
    history.set(key, points);
  }
}

function ratesOf(database, taskName) {
  const prefix = `${database}\u0000${taskName}\u0000`;
  const sum = new Map();
  for (const [key, points] of history) {
    if (!key.startsWith(prefix)) continue;
    for (const point of points) {
      const second = Math.round(point.t / 1000) * 1000;
      sum.set(second, (sum.get(second) || 0) + point.v);
    }
  }
  return [...sum.entries()].sort((a, b) => a[0] - b[0]).map(([t, v]) => ({ t, v }));
}

export async function render(ctx) {
  const { database } = ctx;
  const taskId = Number(ctx.params.taskId);
  const type = ctx.params.type || 'RavenEtl';
  const header = h('div', { class: 'toolbar' });
  const summary = h('div', { class: 'panel' });
  const counts = h('div', { class: 'panel' });
  const errors = h('div', { class: 'panel' });
  const timeline = h('div', { class: 'panel' });
  const rates = h('div', { class: 'panel' });
  const problem = h('div');
  mount(ctx.view, h('p', {}, h('a', { href: link('databases/tasks/ongoingTasks', { database }) }, '← Ongoing Tasks')),
    header, problem, summary, counts, rates, timeline, errors);

  let stopped = false;
  let timer = null;
  let last = {};
  let task = null;
  ctx.onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });

  const toggle = h('button', { type: 'button', class: 'secondary' });
  const reset = h('button', { type: 'button', class: 'secondary' }, 'Reset');
  const remove = h('button', { type: 'button', class: 'secondary' }, 'Delete');
  const edit = h('a', { class: 'button secondary' }, 'Edit');
  const title = h('h1', { style: 'margin:0' });
  const state = h('span', { class: 'badge', role: 'status' });
  mount(header, title, state, h('span', { class: 'spacer' }), toggle, edit, reset, remove);
  toggle.addEventListener('click', () => busy(toggle, async () => {
    try {
      await setDisabled(database, task, task.TaskState !== 'Disabled');
    } catch (error) {
      toast(error.message, 'error');
    }
    await refresh(false);
  }));
  reset.addEventListener('click', () => busy(reset, async () => {
    try {
      await resetTask(database, task);
    } catch (error) {
      toast(error.message, 'error');
    }
  }));
  remove.addEventListener('click', () => busy(remove, async () => {
    try {
      if (await deleteTask(database, task)) ctx.navigate(link('databases/tasks/ongoingTasks', { database }));
    } catch (error) {
      toast(error.message, 'error');
    }
  }));

  async function refresh(schedule = true) {
    try {
      task = await api.get(dbPath(database, '/task'), { key: taskId, type });
      const name = task.TaskName;
      const [progress, stats, performance] = await Promise.all([
        api.get(dbPath(database, '/etl/progress'), { name }),
        api.get(dbPath(database, '/etl/stats'), { name }),
        api.get(dbPath(database, '/etl/performance'), { name }),
      ]);
      if (stopped) return;
      problem.replaceChildren();
      paint(task, progress?.Results?.[0], stats?.Results?.[0], performance?.Results?.[0]);
    } catch (error) {
      if (stopped) return;
      mount(problem, errorBox(error.status === 404 ? { message: 'This task no longer exists.', type: 'NotFound' } : error));
    }
    if (schedule && !stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  function paint(current, progress, stats, performance) {
    const shown = taskState(current);
    title.textContent = `${typeLabel(current)}: ${current.TaskName}`;
    state.textContent = shown === 'Reconnect' ? 'Reconnect (fallback)' : shown;
    state.className = `badge ${shown}`;
    toggle.textContent = current.TaskState === 'Disabled' ? 'Enable' : 'Disable';
    edit.href = editLink(database, current);

    const now = Date.now();
    const rows = (progress?.ProcessesProgress || []).map((process) => {
      const done = (process.TotalNumberOfDocuments - process.NumberOfDocumentsToProcess)
        + (process.TotalNumberOfDocumentTombstones - process.NumberOfDocumentTombstonesToProcess);
      const before = last[process.TransformationName];
      const rate = before ? Math.max(0, ((done - before.done) * 1000) / Math.max(1, now - before.at)) : null;
      last[process.TransformationName] = { done, at: now };
      if (rate !== null) recordRates(database, current.TaskName, { [process.TransformationName]: rate });
      return h('tr', {},
        h('td', {}, process.TransformationName),
        h('td', { class: 'num' }, fmtNumber(process.NumberOfDocumentsToProcess)),
        h('td', { class: 'num' }, fmtNumber(process.NumberOfDocumentTombstonesToProcess)),
        h('td', { class: 'num' }, rate === null ? '…' : fmtNumber(rate)),
        h('td', { class: 'num' }, fmtNumber(process.TotalNumberOfDocuments)),
        h('td', {}, processStatus(current, process)));
    });
    const loadProblem = current.LoadError ? `${current.LoadErrorClass ? `${current.LoadErrorClass}: ` : ''}${current.LoadError}` : null;
    mount(summary,
      h('dl', { class: 'meta-list' },
        h('dt', {}, 'Destination'), h('dd', {}, destinationOf(current)),
        h('dt', {}, 'Connection string'), h('dd', {}, current.ConnectionStringName || '–'),
        h('dt', {}, 'Responsible node'), h('dd', {}, current.ResponsibleNode?.NodeTag || '–'),
        current.TaskType === 'OlapEtl' ? olapSchedule(current.Configuration || {}) : null),
      current.Error ? h('div', { class: 'error-box' }, current.Error) : null,
      loadProblem ? h('div', { class: 'error-box' }, `Loading fails, retrying: ${loadProblem}`) : null,
      h('table', { class: 'grid', style: 'margin-top:10px' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Transformation'), h('th', { class: 'num' }, 'Documents left'),
          h('th', { class: 'num' }, 'Tombstones left'), h('th', { class: 'num' }, 'Processed/s'), h('th', { class: 'num' }, 'Total'), h('th', {}, ''))),
        h('tbody', {}, rows)));

    mount(counts, h('h2', { style: 'margin-top:0' }, 'Statistics'),
      current.TaskType === 'OlapEtl'
        ? h('p', { class: 'muted' }, 'Rows count as loaded once their batch is staged; the documents left and the last processed etag move when the run\'s files are published.')
        : null,
      statisticsTable(stats));

    mount(rates, h('h2', { style: 'margin-top:0' }, 'Processed per second'),
      rateChart(ratesOf(database, current.TaskName)));

    const batches = [];
    for (const transformation of performance?.Stats || []) {
      for (const batch of transformation.Performance || []) batches.push({ ...batch, transformation: transformation.TransformationName });
    }
    batches.sort((a, b) => String(a.Started).localeCompare(String(b.Started)));
    const recent = batches.slice(-40);
    const lastBatch = recent[recent.length - 1];
    mount(timeline, h('h2', { style: 'margin-top:0' }, 'Last batches'),
      h('div', { class: 'legend' },
        h('span', {}, h('i', { style: `background:${COLORS.transform}` }), 'extract + transform'),
        h('span', {}, h('i', { style: `background:${COLORS.load}` }), 'load'),
        h('span', {}, h('i', { style: `background:${COLORS.items}` }), 'items (right axis)'),
        h('span', {}, h('i', { style: `background:${COLORS.failed}` }), 'failed')),
      batchTimeline(recent),
      lastBatch ? h('p', { class: 'muted' }, `Last batch ${fmtDate(lastBatch.Started)}: ${fmtNumber(lastBatch.NumberOfExtractedItems)} items in ${fmtMs(lastBatch.DurationInMs)}`) : null);

    const errorRows = [];
    for (const process of stats?.Stats || []) {
      const s = process.Statistics || {};
      for (const it of s.LastTransformationErrors || []) errorRows.push({ kind: 'Transformation', transformation: process.TransformationName, ...it });
      for (const it of s.LastSkippedItems || []) errorRows.push({ kind: 'Skipped (refused by the destination)', transformation: process.TransformationName, ...it });
      if (s.LastLoadError) errorRows.push({ kind: `Load${s.LastLoadErrorClass ? ` (${s.LastLoadErrorClass})` : ''}`, transformation: process.TransformationName, Date: s.LastLoadErrorTime, DocumentId: '', Error: s.LastLoadError });
    }
    errorRows.sort((a, b) => String(b.Date).localeCompare(String(a.Date)));
    mount(errors, h('h2', { style: 'margin-top:0' }, 'Errors'),
      errorRows.length
        ? h('table', { class: 'grid', 'aria-label': 'Errors' },
          h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'Kind'), h('th', {}, 'Transformation'), h('th', {}, 'Document'), h('th', {}, 'Error'))),
          h('tbody', {}, errorRows.map((it) => h('tr', {},
            h('td', {}, fmtDate(it.Date)), h('td', {}, it.kind), h('td', {}, it.transformation),
            h('td', {}, it.DocumentId ? h('a', { href: link('databases/edit', { database, id: it.DocumentId }) }, it.DocumentId) : '–'),
            h('td', {}, it.Error)))))
        : h('p', { class: 'muted' }, 'No errors.'));
  }

  await refresh();
}

/** The run schedule and options of an OLAP ETL task, as `dt`/`dd` pairs. */
function olapSchedule(config) {
  const next = nextRunText(config.RunFrequency);
  return [
    h('dt', {}, 'Run frequency'),
    h('dd', {}, h('code', {}, config.RunFrequency || '–'), ' (UTC)', next ? ` · ${next}` : ''),
    h('dt', {}, 'Custom partition value'), h('dd', {}, config.CustomPartitionValue || '–'),
    h('dt', {}, 'Format'), h('dd', {}, config.Format || 'Parquet'),
    h('dt', {}, 'Tables'), h('dd', {}, (config.OlapTables || []).map((it) => `${it.TableName} (id column ${it.DocumentIdColumn || '_id'})`).join(', ') || '–'),
  ];
}

/** Per transformation, the counts of /etl/stats. */
function statisticsTable(stats) {
  const processes = stats?.Stats || [];
  if (!processes.length) return h('p', { class: 'muted' }, 'No statistics yet.');
  const headers = ['Extracted', 'Loaded', 'Filtered', 'Batches', 'Transformation errors', 'Load errors', 'Skipped', 'Last processed etag'];
  return h('table', { class: 'grid', 'aria-label': 'Statistics' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Transformation'), headers.map((it) => h('th', { class: 'num' }, it)))),
    h('tbody', {}, processes.map((process) => {
      const s = process.Statistics || {};
      const values = [s.Extracted, s.Transformation?.Successes, s.Filtered, s.Load?.Batches, s.Transformation?.Errors,
        s.Load?.Errors, s.Load?.SkippedItems, s.LastProcessedEtag];
      return h('tr', { dataset: { transformation: process.TransformationName } }, h('td', {}, process.TransformationName),
        values.map((it) => h('td', { class: 'num' }, fmtNumber(it))));
    })));
}
