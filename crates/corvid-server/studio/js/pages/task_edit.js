// Add or edit a RavenDB ETL, SQL ETL, Queue ETL or OLAP ETL task, in the RavenDB book's flow:
// name, connection string (picked, or created inline), transformations (collections and a
// script each), SQL tables, queue options or OLAP settings, "Test script" on one document
// before anything is saved, then Save. Whatever the server refuses is shown next to the field
// it is about.

import { api, dbPath } from '../api.js';
import { createEditor } from '../editor.js';
import { h, mount, field, toast, errorBox, link, busy } from '../ui.js';
import {
  brokerOfPath, connectionLabel, queueConnectionFields, queueExample, queuesEditor, queueTestResult,
} from './task_edit_queue.js';
import {
  DEFAULT_RUN_FREQUENCY, OLAP_EXAMPLE, olapConnectionFields, olapConnectionLabel, olapSettingsEditor, olapTestResult,
} from './task_edit_olap.js';

const FACTORIES = [
  ['Npgsql', 'PostgreSQL (Npgsql)'],
  ['MySqlConnector.MySqlConnectorFactory', 'MySQL / MariaDB (MySqlConnector)'],
  ['Microsoft.Data.Sqlite', 'SQLite (Microsoft.Data.Sqlite)'],
];
const NEW_CONNECTION = '__new__';
// When the server comes back after an outage, the shell leaves this form as it is.
export const keepOnReconnect = true;

const RAVEN_EXAMPLE = `// Runs for each document of the collections; \`this\` is the document.
loadToCompanies({
    Name: this.Name
});`;
const SQL_EXAMPLE = `// Each loadTo<Table>() call makes one row; its document-id column is filled in.
loadToCompanies({
    Name: this.Name
});`;

export async function render(ctx) {
  const { database } = ctx;
  const broker = brokerOfPath(ctx.path);
  const kind = broker ? 'Queue'
    : ctx.path.endsWith('editSqlEtlTask') ? 'Sql'
      : ctx.path.endsWith('editOlapEtlTask') ? 'Olap' : 'Raven';
  const taskType = { Sql: 'SqlEtl', Raven: 'RavenEtl', Queue: 'QueueEtl', Olap: 'OlapEtl' }[kind];
  const title = broker ? `${broker.label} ETL` : { Sql: 'SQL ETL', Olap: 'OLAP ETL', Raven: 'RavenDB ETL' }[kind];
  const example = broker ? queueExample(broker) : { Sql: SQL_EXAMPLE, Olap: OLAP_EXAMPLE, Raven: RAVEN_EXAMPLE }[kind];
  const taskId = ctx.params.taskId ? Number(ctx.params.taskId) : null;

  const [connections, collectionStats, existing] = await Promise.all([
    api.get(dbPath(database, '/admin/connection-strings')),
    api.get(dbPath(database, '/collections/stats')),
    taskId ? api.get(dbPath(database, '/task'), { key: taskId, type: taskType }) : null,
  ]);
  if (!ctx.isCurrent()) return;
  const config = existing?.Configuration || {
    Name: '',
    ConnectionStringName: '',
    Transforms: [],
    ...(kind === 'Sql' ? { SqlTables: [], QuoteTables: true, ParameterizeDeletes: true } : {}),
    ...(broker ? { BrokerType: broker.type, Queues: [], SkipAutomaticQueueDeclaration: false } : {}),
    ...(kind === 'Olap' ? { RunFrequency: DEFAULT_RUN_FREQUENCY, OlapTables: [], Format: 'Parquet' } : {}),
  };
  const collections = Object.keys(collectionStats?.Collections || {}).sort();
  const existingConnections = kind === 'Queue'
    ? Object.values(connections?.QueueConnectionStrings || {}).filter((it) => it.BrokerType === broker.type)
    : Object.values(connections?.[`${kind}ConnectionStrings`] || {});

  // --- task name
  const nameInput = h('input', { value: config.Name || '', autocomplete: 'off' });
  const nameField = field('Task name', nameInput);

  // --- connection string (existing or new inline)
  const connectionSelect = h('select', {},
    h('option', { value: '' }, '— choose a connection string —'),
    existingConnections.map((it) => h('option', { value: it.Name, selected: it.Name === config.ConnectionStringName },
      kind === 'Queue' ? connectionLabel(it)
        : kind === 'Olap' ? olapConnectionLabel(it)
          : kind === 'Sql' ? `${it.Name} (${it.FactoryName})` : `${it.Name} (${it.Database} at ${(it.TopologyDiscoveryUrls || []).join(', ')})`)),
    h('option', { value: NEW_CONNECTION, selected: !existingConnections.length && !taskId }, 'Create a new connection string'));
  const connectionField = field('Connection string', connectionSelect);
  const newConnection = newConnectionForm(kind, database, broker);
  const syncConnection = () => { newConnection.el.hidden = connectionSelect.value !== NEW_CONNECTION; };
  connectionSelect.addEventListener('change', syncConnection);
  syncConnection();

  // --- transformations
  const transformsBox = h('div');
  const transforms = [];
  const addTransform = (transform) => {
    const item = transformEditor(transform, collections, kind, () => {
      transforms.splice(transforms.indexOf(item), 1);
      item.el.remove();
      refreshTestChoices();
    }, refreshTestChoices);
    transforms.push(item);
    transformsBox.append(item.el);
    refreshTestChoices();
    return item;
  };
  const transformsField = fieldless(transformsBox);

  // --- SQL tables
  const tables = kind === 'Sql' ? sqlTablesEditor(config.SqlTables || []) : null;
  const quoteTables = h('input', { type: 'checkbox', checked: config.QuoteTables !== false });
  const parameterizeDeletes = h('input', { type: 'checkbox', checked: config.ParameterizeDeletes !== false });
  const commandTimeout = h('input', { type: 'number', min: '1', placeholder: '30', value: config.CommandTimeout ?? '' });

  // --- queues
  const queues = broker ? queuesEditor(config.Queues || []) : null;
  const skipDeclaration = h('input', { type: 'checkbox', checked: Boolean(config.SkipAutomaticQueueDeclaration) });

  // --- OLAP: run frequency, partition value, tables
  const olap = kind === 'Olap' ? olapSettingsEditor(config) : null;

  // --- test script
  const test = testPanel();

  const formError = h('div');
  const saveButton = h('button', { type: 'submit' }, 'Save');
  const form = h('form', { onsubmit: save, novalidate: true },
    h('div', { class: 'panel' }, nameField, connectionField, newConnection.el),
    h('div', { class: 'panel' },
      h('div', { class: 'toolbar' }, h('h2', { style: 'margin:0' }, 'Transformations'), h('span', { class: 'spacer' }),
        h('button', { type: 'button', class: 'secondary', onclick: () => addTransform({ Name: `Script #${transforms.length + 1}`, Collections: [], Script: example }).focus() }, 'Add transformation')),
      transformsField),
    tables ? h('div', { class: 'panel' }, h('h2', { style: 'margin-top:0' }, 'SQL tables'), tables.el,
      h('div', { class: 'row' },
        field('Quote table names', quoteTables, { hint: 'Off: names are used as written (validated as identifiers).' }),
        field('Parameterize deletes', parameterizeDeletes),
        field('Command timeout (seconds)', commandTimeout))) : null,
    queues ? h('div', { class: 'panel' }, h('h2', { style: 'margin-top:0' }, 'Queues'), queues.el,
      field('Skip automatic queue declaration', skipDeclaration,
        { hint: 'On: the queues (exchanges, topics, streams) must exist; a missing one stops the task with a configuration error.' })) : null,
    olap ? h('div', { class: 'panel' }, h('h2', { style: 'margin-top:0' }, 'Runs and tables'), olap.el) : null,
    test.el,
    formError,
    h('div', { class: 'toolbar' }, saveButton,
      h('a', { class: 'button secondary', href: link('databases/tasks/ongoingTasks', { database }) }, 'Cancel')));

  mount(ctx.view,
    h('h1', {}, taskId ? `Edit ${title}: ${config.Name}` : `Add ${title}`),
    h('p', { class: 'muted' }, {
      Sql: 'Writes rows to tables of a relational database: one transaction per batch, deletes before inserts.',
      Raven: 'Sends documents to a database on a RavenDB-protocol server (Corvid or RavenDB), reshaped by a script.',
      Queue: `Publishes documents as CloudEvents to ${broker?.label}; progress moves only once the broker acknowledged them.`,
      Olap: 'Writes Parquet files, partitioned Hive-style, to a folder or an S3 bucket, in runs on a schedule; a run\'s files are published together once it is done.',
    }[kind]),
    form);

  for (const transform of config.Transforms || []) addTransform(transform);
  if (!transforms.length) {
    const preferred = kind === 'Queue' || kind === 'Olap' ? 'Orders' : 'Companies';
    addTransform({ Name: 'Script #1', Collections: collections.includes(preferred) ? [preferred] : [], Script: example });
  }

  function buildConfiguration() {
    const connectionName = connectionSelect.value === NEW_CONNECTION ? newConnection.name() : connectionSelect.value;
    const result = {
      ...config,
      EtlType: kind,
      Name: nameInput.value.trim(),
      ConnectionStringName: connectionName,
      Transforms: transforms.map((it) => it.value()),
    };
    if (taskId) result.TaskId = taskId;
    if (tables) {
      result.SqlTables = tables.value();
      result.QuoteTables = quoteTables.checked;
      result.ParameterizeDeletes = parameterizeDeletes.checked;
      const timeout = commandTimeout.value.trim();
      if (timeout) result.CommandTimeout = Number(timeout);
      else delete result.CommandTimeout;
    }
    if (queues) {
      result.BrokerType = broker.type;
      result.Queues = queues.value();
      result.SkipAutomaticQueueDeclaration = skipDeclaration.checked;
    }
    if (olap) Object.assign(result, olap.value());
    return result;
  }

  function clearErrors() {
    formError.replaceChildren();
    nameField.setError('');
    connectionField.setError('');
    transformsField.setError('');
    newConnection.setError('');
    tables?.setError('');
    queues?.setError('');
    olap?.clearErrors();
    for (const transform of transforms) transform.clearError();
  }

  /** Puts an error from the server next to what it is about; true when placed. */
  function placeError(error) {
    const message = error.message || String(error);
    const transformName = /transformation `([^`]+)`/.exec(message)?.[1] || /in '([^']+)' script/.exec(message)?.[1];
    const transform = transformName && transforms.find((it) => it.name() === transformName);
    if (transform) {
      transform.setError(message, error.position);
      return true;
    }
    if (olap?.placeError(message)) return true;
    if (/connection string/i.test(message)) {
      if (connectionSelect.value === NEW_CONNECTION) newConnection.setError(message);
      else connectionField.setError(message);
      return true;
    }
    if (tables && /SqlTables|table/i.test(message)) {
      tables.setError(message);
      return true;
    }
    if (queues && /Queues|queue `/.test(message)) {
      queues.setError(message);
      return true;
    }
    if (/transformation/i.test(message)) {
      transformsField.setError(message);
      return true;
    }
    if (/name/i.test(message)) {
      nameField.setError(message);
      return true;
    }
    return false;
  }

  async function save(event) {
    event.preventDefault();
    clearErrors();
    await busy(saveButton, async () => {
      const configuration = buildConfiguration();
      if (!configuration.Name) {
        nameField.setError('Enter a name for the task.');
        return;
      }
      if (!configuration.ConnectionStringName) {
        connectionField.setError('Choose a connection string or create one.');
        return;
      }
      const connectionProblem = connectionSelect.value === NEW_CONNECTION ? newConnection.check() : '';
      if (connectionProblem) {
        newConnection.setError(connectionProblem);
        return;
      }
      try {
        if (connectionSelect.value === NEW_CONNECTION) await newConnection.save();
        await api.put(dbPath(database, '/admin/etl'), taskId ? { id: taskId } : {}, configuration);
        toast(`Task ${configuration.Name} saved`, 'ok');
        ctx.navigate(link('databases/tasks/ongoingTasks', { database }));
      } catch (error) {
        if (!placeError(error)) mount(formError, errorBox(error));
      }
    });
  }

  function refreshTestChoices() {
    test?.setTransforms?.(transforms.map((it) => it.name()));
  }

  function testPanel() {
    const idInput = h('input', { list: 'test-document-ids', autocomplete: 'off', placeholder: 'companies/1-A' });
    const suggestions = h('datalist', { id: 'test-document-ids' });
    const transformSelect = h('select', {});
    const asDelete = h('input', { type: 'checkbox' });
    const rollback = h('input', { type: 'checkbox' });
    const output = h('div', { class: 'test-output', 'aria-live': 'polite' });
    const idField = field('Document id', idInput);
    const run = h('button', { type: 'button', class: 'secondary' }, 'Test');
    let suggestTimer = null;
    idInput.addEventListener('input', () => {
      clearTimeout(suggestTimer);
      suggestTimer = setTimeout(async () => {
        const prefix = idInput.value.trim();
        try {
          const answer = await api.get(dbPath(database, '/docs'), { startsWith: prefix, pageSize: 10, metadataOnly: true });
          mount(suggestions, (answer?.Results || []).map((doc) => h('option', { value: doc['@metadata']?.['@id'] || '' })));
        } catch {
          // suggestions are a convenience
        }
      }, 150);
    });
    run.addEventListener('click', () => busy(run, async () => {
      clearErrors();
      output.replaceChildren();
      idField.setError('');
      const documentId = idInput.value.trim();
      if (!documentId) {
        idField.setError('Enter the id of a document to test with.');
        return;
      }
      const configuration = buildConfiguration();
      const chosen = transformSelect.value;
      configuration.Transforms = configuration.Transforms.filter((it) => it.Name === chosen);
      if (!configuration.Name) configuration.Name = 'test';
      const body = { DocumentId: documentId, IsDelete: asDelete.checked, Configuration: configuration };
      if (kind === 'Sql') body.PerformRolledBackTransaction = rollback.checked;
      try {
        if (connectionSelect.value === NEW_CONNECTION && kind === 'Raven') {
          // The Raven test needs no connection; the name only has to be there.
          configuration.ConnectionStringName = configuration.ConnectionStringName || 'test';
        }
        if (connectionSelect.value === NEW_CONNECTION && kind !== 'Raven') {
          // Not saved yet: the SQL and Queue tests take the connection string inline.
          body.Connection = newConnection.value();
          configuration.ConnectionStringName = configuration.ConnectionStringName || body.Connection.Name || 'test';
          body.Connection.Name = configuration.ConnectionStringName;
        }
        const answer = await api.post(dbPath(database, `/admin/etl/${kind.toLowerCase()}/test`), {}, body);
        mount(output, kind === 'Queue' ? [...transformationErrors(answer), ...queueTestResult(answer), ...debugOutput(answer)]
          : kind === 'Olap' ? [...transformationErrors(answer), ...olapTestResult(answer), ...debugOutput(answer)] : testResult(answer, kind));
      } catch (error) {
        if (error.status === 404 || /not found|does not exist/i.test(error.message) && /document/i.test(error.message)) {
          idField.setError(error.message);
        } else if (!placeError(error)) {
          mount(output, errorBox(error));
        }
      }
    }));
    const el = h('details', { class: 'panel test-panel' },
      h('summary', {}, h('strong', {}, 'Test script'), h('span', { class: 'muted' }, ' — run a transformation on one document; nothing is sent or saved')),
      h('div', { class: 'row' }, idField, field('Transformation', transformSelect),
        field('Test a delete', asDelete),
        kind === 'Sql' ? field('Run the SQL and roll it back', rollback) : null),
      suggestions, run, output);
    return {
      el,
      setTransforms(names) {
        // Keep the chosen one by name, or by position when it was just renamed.
        const current = transformSelect.value;
        const keep = names.includes(current) ? names.indexOf(current) : transformSelect.selectedIndex;
        mount(transformSelect, names.map((name, index) => h('option', { value: name, selected: index === keep }, name)));
      },
    };
  }
}

function transformationErrors(answer) {
  const errors = answer?.TransformationErrors || [];
  return errors.length ? [h('h3', {}, 'Transformation errors'),
    h('div', { class: 'error-box' }, errors.map((it) => h('div', {}, `${it.DocumentId || ''} ${it.Error || JSON.stringify(it)}`)))] : [];
}

function testResult(answer, kind) {
  const parts = transformationErrors(answer);
  const loadErrors = answer?.LoadErrors || [];
  if (loadErrors.length) {
    parts.push(h('h3', {}, 'Load errors'), h('div', { class: 'error-box' }, loadErrors.map((it) => h('div', {}, it.Error || JSON.stringify(it)))));
  }
  if (kind === 'Sql') {
    const summary = answer?.Summary || [];
    parts.push(h('h3', {}, 'SQL that would run'));
    if (!summary.length) parts.push(h('p', { class: 'muted' }, 'No statements: the script loads nothing for this document.'));
    for (const table of summary) {
      parts.push(h('div', { class: 'sql-table' }, h('strong', {}, table.TableName),
        (table.Commands || []).map((command) => h('pre', { class: 'out' },
          command.CommandText,
          (command.Params || []).length ? `\n  -- ${command.Params.map((p) => `${p.Key} = ${p.Value}`).join(', ')}` : ''))));
    }
  } else {
    const commands = answer?.Commands || [];
    parts.push(h('h3', {}, 'Commands that would be sent'));
    if (!commands.length) parts.push(h('p', { class: 'muted' }, 'Nothing: the script loads nothing for this document.'));
    else parts.push(h('pre', { class: 'out' }, JSON.stringify(commands, null, 2)));
  }
  parts.push(...debugOutput(answer));
  return parts;
}

function debugOutput(answer) {
  const parts = [];
  const debug = answer?.DebugOutput || [];
  parts.push(h('h3', {}, 'output()'), debug.length
    ? h('pre', { class: 'out debug-output' }, debug.join('\n'))
    : h('p', { class: 'muted' }, 'No output() lines.'));
  return parts;
}

function transformEditor(transform, collections, kind, onRemove, onRename) {
  const nameInput = h('input', { value: transform.Name || '', autocomplete: 'off' });
  const nameField = field('Transformation name', nameInput);
  const chosen = new Set(transform.Collections || []);
  const chips = h('div', { class: 'chips' });
  const listId = `collections-${Math.random().toString(36).slice(2)}`;
  const collectionInput = h('input', { list: listId, placeholder: 'Add a collection', autocomplete: 'off' });
  const addButton = h('button', { type: 'button', class: 'secondary' }, 'Add collection');
  const allDocs = h('input', { type: 'checkbox', checked: Boolean(transform.ApplyToAllDocuments) });
  const collectionsField = field('Collections', h('div', {},
    chips, h('div', { class: 'toolbar', style: 'margin-top:6px' }, collectionInput,
      h('datalist', { id: listId }, collections.map((name) => h('option', { value: name }))), addButton)));
  const allField = field('Apply to all documents', allDocs);
  const editor = createEditor({ value: transform.Script || '', language: 'javascript', label: `Script of ${transform.Name || 'the transformation'}`, rows: 10 });
  const scriptField = field('Script', editor.el);
  const error = h('div', { class: 'field-error', role: 'alert' });

  function paintChips() {
    mount(chips, [...chosen].map((name) => h('span', { class: 'chip' }, name,
      h('button', { type: 'button', 'aria-label': `Remove collection ${name}`, onclick: () => { chosen.delete(name); paintChips(); } }, '×'))));
    collectionInput.disabled = allDocs.checked;
    addButton.disabled = allDocs.checked;
  }
  function add() {
    const name = collectionInput.value.trim();
    if (name) chosen.add(name);
    collectionInput.value = '';
    paintChips();
  }
  addButton.addEventListener('click', add);
  collectionInput.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      add();
    }
  });
  collectionInput.addEventListener('change', () => {
    if (collections.includes(collectionInput.value.trim())) add();
  });
  allDocs.addEventListener('change', paintChips);
  nameInput.addEventListener('input', () => {
    editor.textarea.setAttribute('aria-label', `Script of ${nameInput.value}`);
    onRename?.();
  });
  paintChips();

  const el = h('div', { class: 'transform', dataset: { transform: transform.Name || '' } },
    h('div', { class: 'row' }, nameField, h('div', { style: 'flex:none; padding-top:22px' },
      h('button', { type: 'button', class: 'secondary', onclick: onRemove }, 'Remove transformation'))),
    h('div', { class: 'row' }, collectionsField, allField),
    scriptField, error);
  return {
    el,
    name: () => nameInput.value.trim(),
    focus: () => nameInput.focus(),
    value: () => ({
      ...transform,
      Name: nameInput.value.trim(),
      Collections: allDocs.checked ? [] : [...chosen],
      ApplyToAllDocuments: allDocs.checked,
      Script: editor.value,
      Disabled: Boolean(transform.Disabled),
    }),
    setError(message, position) {
      if (position) editor.setError(position.line, position.column, message);
      else if (/collection/i.test(message)) collectionsField.setError(message);
      else error.textContent = message;
      el.scrollIntoView({ block: 'nearest' });
    },
    clearError() {
      editor.clearError();
      collectionsField.setError('');
      error.textContent = '';
    },
  };
}

/** A box with an error line but no label of its own (its panel has the heading). */
function fieldless(content) {
  const error = h('div', { class: 'field-error', role: 'alert' });
  const el = h('div', { class: 'field' }, content, error);
  el.setError = (message) => { error.textContent = message || ''; };
  return el;
}

function sqlTablesEditor(initial) {
  const rows = h('div');
  const error = h('div', { class: 'field-error', role: 'alert' });
  const items = [];
  function addRow(table) {
    const name = h('input', { value: table.TableName || '', placeholder: 'Table name', 'aria-label': 'Table name', autocomplete: 'off' });
    const column = h('input', { value: table.DocumentIdColumn || '', placeholder: 'Document id column', 'aria-label': 'Document id column', autocomplete: 'off' });
    const insertOnly = h('input', { type: 'checkbox', checked: Boolean(table.InsertOnlyMode), 'aria-label': 'Insert only' });
    const row = h('div', { class: 'tables-row' }, name, column,
      h('label', { class: 'inline' }, insertOnly, ' Insert only'),
      h('button', { type: 'button', class: 'secondary', onclick: () => { items.splice(items.indexOf(item), 1); row.remove(); } }, 'Remove table'));
    const item = { row, value: () => ({ TableName: name.value.trim(), DocumentIdColumn: column.value.trim(), InsertOnlyMode: insertOnly.checked }) };
    items.push(item);
    rows.append(row);
  }
  for (const table of initial) addRow(table);
  if (!items.length) addRow({});
  const el = h('div', { class: 'field' }, rows,
    h('button', { type: 'button', class: 'secondary', onclick: () => addRow({}) }, 'Add table'), error);
  return {
    el,
    value: () => items.map((it) => it.value()).filter((it) => it.TableName || it.DocumentIdColumn),
    setError: (message) => { error.textContent = message || ''; },
  };
}

function newConnectionForm(kind, database, broker) {
  const name = h('input', { autocomplete: 'off' });
  const parts = [field('New connection string name', name)];
  let value;
  let check = () => '';
  let placeError = () => false;
  let clearFields = () => {};
  if (kind === 'Queue') {
    const fields = queueConnectionFields(broker);
    parts.push(...fields.parts);
    value = () => ({ Type: 'Queue', Name: name.value.trim(), BrokerType: broker.type, ...fields.value() });
    check = fields.check;
  } else if (kind === 'Olap') {
    const fields = olapConnectionFields(null);
    parts.push(...fields.parts);
    value = () => ({ Type: 'Olap', Name: name.value.trim(), ...fields.value() });
    check = fields.check;
    placeError = fields.placeError;
    clearFields = fields.clearErrors;
  } else if (kind === 'Sql') {
    const factory = h('select', {}, FACTORIES.map(([id, label]) => h('option', { value: id }, label)));
    const text = h('textarea', { rows: 2, placeholder: 'Host=127.0.0.1;Database=test;Username=postgres  —  or  Data Source=reporting.db' });
    parts.push(h('div', { class: 'row' }, field('Factory', factory), field('SQL connection string', text, { hint: 'SQLite files live in the server\'s sqlite directory.' })));
    value = () => ({ Type: 'Sql', Name: name.value.trim(), FactoryName: factory.value, ConnectionString: text.value.trim() });
  } else {
    const db = h('input', { autocomplete: 'off', placeholder: 'shipping' });
    const urls = h('textarea', { rows: 2, placeholder: location.origin });
    urls.value = location.origin;
    parts.push(h('div', { class: 'row' }, field('Destination database', db), field('Discovery URLs (one per line)', urls)));
    value = () => ({
      Type: 'Raven', Name: name.value.trim(), Database: db.value.trim(),
      TopologyDiscoveryUrls: urls.value.split(/\s+/).map((it) => it.trim()).filter(Boolean),
    });
  }
  const error = h('div', { class: 'field-error', role: 'alert' });
  const el = h('div', { class: 'panel new-connection' }, h('h3', { style: 'margin-top:0' }, 'New connection string'), parts, error);
  return {
    el,
    name: () => name.value.trim(),
    value: () => value(),
    check: () => check(),
    setError(message) {
      // Next to the field the server named (OLAP's folder, bucket…), else under the panel.
      clearFields();
      error.textContent = message && placeError(message) ? '' : (message || '');
    },
    async save() {
      await api.put(dbPath(database, '/admin/connection-strings'), {}, value());
    },
  };
}
