// Connection strings: the Raven and SQL ones, add, edit, delete, test; the OLAP ones (a folder
// or an S3 bucket), add, edit, delete; the Queue ones (made in the Queue ETL task editor)
// listed, without their secrets, and deleted. Passwords and secret keys never come back from
// the server (GET shows `Password=*****`); saving with `*****` left as it is keeps the stored
// one, as long as the server (or bucket) stays the same.

import { api, dbPath } from '../api.js';
import { h, mount, field, toast, confirmDialog, errorBox, busy } from '../ui.js';
import { brokerOfType, connectionLabel } from './task_edit_queue.js';
import { olapConnectionFields, olapWhere } from './task_edit_olap.js';

const TYPE_LABELS = { Raven: 'Raven', Sql: 'SQL', Olap: 'OLAP', Queue: 'Queue' };

const FACTORIES = [
  ['Npgsql', 'PostgreSQL (Npgsql)'],
  ['MySqlConnector.MySqlConnectorFactory', 'MySQL / MariaDB (MySqlConnector)'],
  ['Microsoft.Data.Sqlite', 'SQLite (Microsoft.Data.Sqlite)'],
];
const PLACEHOLDERS = {
  Npgsql: 'Host=db.example;Port=5432;Database=reports;Username=etl;Password=…',
  'MySqlConnector.MySqlConnectorFactory': 'Server=db.example;Port=3306;Database=reports;User Id=etl;Password=…',
  'Microsoft.Data.Sqlite': 'Data Source=reports.db',
};

export async function render(ctx) {
  const database = ctx.database;
  const addButton = h('button', { type: 'button' }, 'Add connection string');
  const formBox = h('div');
  const listBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  addButton.addEventListener('click', () => openForm(null));
  mount(ctx.view,
    h('h1', {}, 'Connection Strings'),
    h('div', { class: 'toolbar' }, addButton),
    formBox,
    listBox);
  await load();

  async function load() {
    let answer;
    try {
      answer = await api.get(dbPath(database, '/admin/connection-strings'));
    } catch (error) {
      if (ctx.isCurrent()) mount(listBox, errorBox(error));
      return;
    }
    if (!ctx.isCurrent()) return;
    const raven = Object.values(answer?.RavenConnectionStrings || {}).sort(byName);
    const sql = Object.values(answer?.SqlConnectionStrings || {}).sort(byName);
    const queue = Object.values(answer?.QueueConnectionStrings || {}).sort(byName);
    const olap = Object.values(answer?.OlapConnectionStrings || {}).sort(byName);
    mount(listBox,
      h('h2', {}, 'RavenDB'),
      raven.length ? table('Raven connection strings', ['Name', 'Database', 'Discovery URLs'], raven.map((it) => row(it, 'Raven', [
        h('td', {}, it.Database),
        h('td', {}, (it.TopologyDiscoveryUrls || []).map((url) => h('div', {}, h('code', {}, url)))),
      ]))) : h('p', { class: 'muted' }, 'No Raven connection strings.'),
      h('h2', {}, 'SQL'),
      sql.length ? table('SQL connection strings', ['Name', 'Factory', 'Connection string'], sql.map((it) => row(it, 'Sql', [
        h('td', {}, factoryLabel(it.FactoryName)),
        h('td', {}, h('code', { style: 'word-break: break-all' }, it.ConnectionString)),
      ]))) : h('p', { class: 'muted' }, 'No SQL connection strings.'),
      h('h2', {}, 'OLAP'),
      olap.length ? table('OLAP connection strings', ['Name', 'Destination', 'Where'], olap.map((it) => row(it, 'Olap', [
        h('td', {}, it.S3Settings ? 'Amazon S3' : 'Local folder'),
        h('td', {}, h('code', { style: 'word-break: break-all' }, olapWhere(it).replace(/^(Local|S3): /, ''))),
      ]))) : h('p', { class: 'muted' }, 'No OLAP connection strings.'),
      h('h2', {}, 'Queue'),
      queue.length ? table('Queue connection strings', ['Name', 'Broker', 'Where'], queue.map((it) => row(it, 'Queue', [
        h('td', {}, brokerOfType(it.BrokerType).label),
        h('td', {}, h('code', { style: 'word-break: break-all' }, connectionLabel(it).replace(`${it.Name} (`, '').replace(/\)$/, ''))),
      ], false))) : h('p', { class: 'muted' }, 'No Queue connection strings: a Queue ETL task\'s editor makes one.'));
  }

  function table(label, headers, rows) {
    return h('table', { class: 'grid', 'aria-label': label },
      h('thead', {}, h('tr', {}, headers.map((it) => h('th', {}, it)), h('th', {}, ''))),
      h('tbody', {}, rows));
  }

  function row(connection, type, cells, editable = true) {
    const edit = editable ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Edit ${connection.Name}` }, 'Edit') : null;
    edit?.addEventListener('click', () => openForm({ ...connection, Type: type }));
    const remove = h('button', { type: 'button', class: 'secondary', 'aria-label': `Delete ${connection.Name}` }, 'Delete');
    const error = h('div', { class: 'field-error', role: 'alert' });
    remove.addEventListener('click', () => busy(remove, async () => {
      const ok = await confirmDialog(`Delete connection string ${connection.Name}?`,
        `The ${TYPE_LABELS[type]} connection string ${connection.Name} will be deleted. A connection string an ETL task uses cannot be deleted.`);
      if (!ok) return;
      try {
        await api.del(dbPath(database, '/admin/connection-strings'), { connectionString: connection.Name, type });
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      toast(`Connection string ${connection.Name} deleted`, 'ok');
      await load();
    }));
    return h('tr', { dataset: { connectionString: connection.Name, type } },
      h('td', {}, h('strong', {}, connection.Name)), cells,
      h('td', { style: 'white-space: nowrap' }, edit, edit ? ' ' : null, remove, error));
  }

  /** The add/edit form; `existing` is a listed connection string with its `Type`, or null. */
  function openForm(existing) {
    const editing = Boolean(existing);
    const typeSelect = h('select', { name: 'type', 'aria-label': 'Type', disabled: editing },
      h('option', { value: 'Raven', selected: existing?.Type === 'Raven' }, 'RavenDB'),
      h('option', { value: 'Sql', selected: existing?.Type === 'Sql' }, 'SQL'),
      h('option', { value: 'Olap', selected: existing?.Type === 'Olap' }, 'OLAP'));
    const nameInput = h('input', { name: 'name', autocomplete: 'off', value: existing?.Name || '', readonly: editing ? true : null });
    const databaseInput = h('input', { name: 'database', autocomplete: 'off', value: existing?.Database || '' });
    const urlsInput = h('textarea', { name: 'urls', rows: 3, placeholder: 'http://10.0.0.5:8080' });
    urlsInput.value = (existing?.TopologyDiscoveryUrls || []).join('\n');
    const factorySelect = h('select', { name: 'factory', 'aria-label': 'Factory' },
      FACTORIES.map(([value, label]) => h('option', { value, selected: existing?.FactoryName === value }, label)));
    if (existing?.FactoryName && !FACTORIES.some(([value]) => value === existing.FactoryName)) {
      factorySelect.append(h('option', { value: existing.FactoryName, selected: true }, existing.FactoryName));
    }
    const stringInput = h('textarea', { name: 'connection-string', rows: 2, spellcheck: 'false' });
    stringInput.value = existing?.ConnectionString || '';

    const fields = {
      type: field('Type', typeSelect),
      name: field('Name', nameInput, { hint: editing ? 'To rename, add a new one and delete this one.' : null }),
      database: field('Database', databaseInput, { hint: 'The database on the destination server.' }),
      urls: field('Discovery URLs', urlsInput, { hint: 'One URL per line: the destination server or its cluster nodes.' }),
      factory: field('Factory', factorySelect),
      connectionString: field('Connection string', stringInput, {
        hint: editing ? 'Password=***** keeps the stored password (for the same server); type a new one to change it.' : null,
      }),
    };
    const ravenPart = h('div', {}, h('div', { class: 'row' }, fields.database), fields.urls);
    const sqlPart = h('div', {}, fields.factory, fields.connectionString);
    const olapFields = olapConnectionFields(existing?.Type === 'Olap' ? existing : null);
    const olapPart = h('div', {}, olapFields.parts);
    const formError = h('div');
    const testResult = h('span', { role: 'status', 'data-testid': 'test-result' });
    const saveButton = h('button', { type: 'submit' }, 'Save');
    const testButton = h('button', { type: 'button', class: 'secondary' }, 'Test connection');
    const cancelButton = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    cancelButton.addEventListener('click', () => mount(formBox));
    testButton.addEventListener('click', () => busy(testButton, test));

    function syncType() {
      ravenPart.hidden = typeSelect.value !== 'Raven';
      sqlPart.hidden = typeSelect.value !== 'Sql';
      olapPart.hidden = typeSelect.value !== 'Olap';
      // Nothing to test for OLAP without writing: a run reports what fails.
      testButton.hidden = typeSelect.value === 'Olap';
      stringInput.placeholder = PLACEHOLDERS[factorySelect.value] || '';
    }
    typeSelect.addEventListener('change', syncType);
    factorySelect.addEventListener('change', syncType);
    syncType();

    const form = h('form', { class: 'panel', 'aria-label': editing ? `Edit connection string ${existing.Name}` : 'New connection string', onsubmit: save },
      h('h2', { style: 'margin-top: 0' }, editing ? `Edit ${existing.Name}` : 'New connection string'),
      h('div', { class: 'row' }, fields.type, fields.name),
      ravenPart, sqlPart, olapPart, formError,
      h('div', { class: 'toolbar' }, saveButton, testButton, cancelButton, testResult));
    mount(formBox, form);
    if (!editing) nameInput.focus();
    else if (typeSelect.value === 'Olap') olapFields.focus();
    else (typeSelect.value === 'Sql' ? stringInput : databaseInput).focus();

    function clearErrors() {
      for (const it of Object.values(fields)) it.setError('');
      olapFields.clearErrors();
      mount(formError);
    }

    function value() {
      const name = nameInput.value.trim();
      if (typeSelect.value === 'Olap') return { Type: 'Olap', Name: name, ...olapFields.value() };
      if (typeSelect.value === 'Sql') {
        return { Type: 'Sql', Name: name, FactoryName: factorySelect.value, ConnectionString: stringInput.value.trim() };
      }
      const urls = urlsInput.value.split('\n').map((it) => it.trim()).filter(Boolean);
      return { Type: 'Raven', Name: name, Database: databaseInput.value.trim(), TopologyDiscoveryUrls: urls };
    }

    /** Puts the server's message next to the field it is about. */
    function showError(error) {
      const message = error.message || String(error);
      const sql = typeSelect.value === 'Sql';
      let target = null;
      if (typeSelect.value === 'Olap' && !error.unreachable && !/`Name`/.test(message) && olapFields.placeError(message)) return;
      if (/`Name`/.test(message)) target = fields.name;
      else if (sql && /FactoryName/.test(message)) target = fields.factory;
      else if (sql && /connection string|ConnectionString|password|`[^`]+`/i.test(message)) target = fields.connectionString;
      else if (!sql && /TopologyDiscoveryUrls|URL/i.test(message)) target = fields.urls;
      else if (!sql && /`Database`/.test(message)) target = fields.database;
      if (target && !error.unreachable) target.setError(message);
      else mount(formError, errorBox(error));
    }

    async function save(event) {
      event.preventDefault();
      clearErrors();
      const connection = value();
      if (!connection.Name) {
        fields.name.setError('Enter a name.');
        return;
      }
      const olapProblem = connection.Type === 'Olap' ? olapFields.check() : '';
      if (olapProblem) {
        mount(formError, h('div', { class: 'error-box', role: 'alert' }, olapProblem));
        return;
      }
      if (connection.Type === 'Sql' && !connection.ConnectionString) {
        fields.connectionString.setError('Enter the connection string.');
        return;
      }
      if (connection.Type === 'Raven' && !connection.Database) {
        fields.database.setError('Enter the destination database.');
        return;
      }
      if (connection.Type === 'Raven' && !connection.TopologyDiscoveryUrls.length) {
        fields.urls.setError('Enter at least one URL.');
        return;
      }
      if (!editing) {
        const clash = await existingNames(connection.Type);
        if (clash.has(connection.Name.toLowerCase())) {
          fields.name.setError(`A ${TYPE_LABELS[connection.Type]} connection string named ${connection.Name} exists already; edit it instead.`);
          return;
        }
      }
      await busy(saveButton, async () => {
        try {
          await api.put(dbPath(database, '/admin/connection-strings'), {}, connection);
        } catch (error) {
          if (ctx.isCurrent()) showError(error);
          return;
        }
        toast(`Connection string ${connection.Name} saved`, 'ok');
        mount(formBox);
        await load();
      });
    }

    async function test() {
      clearErrors();
      mount(testResult, h('span', { class: 'muted' }, 'Testing…'));
      const connection = value();
      let answer;
      try {
        if (connection.Type === 'Sql') {
          if (!connection.ConnectionString) {
            mount(testResult);
            fields.connectionString.setError('Enter the connection string.');
            return;
          }
          if (connection.ConnectionString.includes('*****')) {
            mount(testResult, h('span', { class: 'field-error' },
              'The password shows as *****: type it to test (the stored one is kept only when saving).'));
            return;
          }
          answer = await api.post(dbPath(database, '/admin/etl/sql/test-connection'), { factoryName: connection.FactoryName },
            new Blob([connection.ConnectionString]), { headers: { 'Content-Type': 'application/octet-stream' } });
        } else {
          const url = connection.TopologyDiscoveryUrls[0];
          if (!url) {
            mount(testResult);
            fields.urls.setError('Enter at least one URL.');
            return;
          }
          answer = await testRaven(connection);
        }
      } catch (error) {
        mount(testResult);
        showError(error);
        return;
      }
      if (answer?.Success) {
        mount(testResult, h('span', { class: 'ok-box', style: 'margin: 0; padding: 4px 10px' }, 'Connected'));
      } else {
        mount(testResult, h('span', { class: 'error-box', style: 'margin: 0; padding: 4px 10px; display: inline-block' },
          `Failed: ${answer?.Error || 'no answer'}`));
      }
    }
  }

  /** Every discovery URL in turn, as the ETL process would try them: the first that connects. */
  async function testRaven(connection) {
    const errors = [];
    for (const url of connection.TopologyDiscoveryUrls) {
      const answer = await api.post('/admin/test-connection', { url, database: connection.Database || undefined });
      if (answer?.Success) return answer;
      errors.push(connection.TopologyDiscoveryUrls.length > 1 ? `${url}: ${answer?.Error}` : answer?.Error);
    }
    return { Success: false, Error: errors.join('; ') };
  }

  async function existingNames(type) {
    try {
      const answer = await api.get(dbPath(database, '/admin/connection-strings'));
      const kind = answer?.[`${type}ConnectionStrings`];
      return new Set(Object.keys(kind || {}).map((it) => it.toLowerCase()));
    } catch {
      return new Set();
    }
  }
}

function byName(a, b) {
  return String(a.Name).localeCompare(String(b.Name));
}

function factoryLabel(name) {
  const known = FACTORIES.find(([value]) => value === name);
  return known ? known[1] : name;
}
