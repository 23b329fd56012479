// The OLAP ETL parts of the Studio: the task's settings (RunFrequency as cron with its next
// run, CustomPartitionValue, OlapTables, EmitDeletes), a connection string's destination
// (a folder or S3, shared by the task editor and the Connection Strings page), and the test
// answer (per table and partition, the file and its columns). The next run is worked out here
// as the server does (crates/corvid-etl/src/destinations/olap/schedule.rs) only to show it; the
// server checks the expression when the task is saved.

import { h, field } from '../ui.js';

export const OLAP_EXAMPLE = `// Each loadTo<Table>() call writes one row; partitionBy() names its folder
// (Hive style: Orders/year=2024/month=3/…), noPartition() writes to the table's folder.
var orderedAt = new Date(this.OrderedAt);
loadToOrders(partitionBy(['year', orderedAt.getUTCFullYear()], ['month', orderedAt.getUTCMonth() + 1]), {
    Company: this.Company,
    Total: this.Total
});`;

export const DEFAULT_RUN_FREQUENCY = '0 * * * *';

const PRESETS = [
  ['*/5 * * * *', 'Every 5 minutes'],
  ['0 * * * *', 'Every hour'],
  ['0 */6 * * *', 'Every 6 hours'],
  ['0 0 * * *', 'Every day at 00:00 UTC'],
  ['0 0 * * 0', 'Every Sunday at 00:00 UTC'],
];

// --- RunFrequency: five cron fields, as the server reads them

const CRON_FIELDS = [['minute', 0, 59], ['hour', 0, 23], ['day of month', 1, 31], ['month', 1, 12], ['day of week', 0, 7]];
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** The sets of a cron expression's fields, or null when the server would refuse it. */
function parseCron(text) {
  const fields = String(text || '').trim().split(/\s+/);
  if (fields.length !== 5) return null;
  const sets = [];
  for (const [idx, part] of fields.entries()) {
    const set = parseCronField(part, idx);
    if (!set) return null;
    sets.push(set);
  }
  if (sets[4].has(7)) sets[4].add(0);
  return { sets, eitherDay: !fields[2].startsWith('*') && !fields[4].startsWith('*') };
}

function parseCronField(text, idx) {
  const [, min, max] = CRON_FIELDS[idx];
  const names = idx === 3 ? MONTHS : (idx === 4 ? DAYS : []);
  const value = (it) => {
    const named = names.indexOf(it.toUpperCase());
    if (named >= 0) return named + (idx === 3 ? 1 : 0);
    const number = /^\d+$/.test(it) ? Number(it) : NaN;
    return number >= min && number <= max ? number : null;
  };
  const set = new Set();
  for (const part of text.split(',')) {
    const slash = part.indexOf('/');
    const range = slash < 0 ? part : part.slice(0, slash);
    const step = slash < 0 ? 1 : (/^\d+$/.test(part.slice(slash + 1)) ? Number(part.slice(slash + 1)) : 0);
    if (step < 1) return null;
    let from;
    let to;
    if (range === '*') {
      from = min;
      to = idx === 4 ? 6 : max;
    } else if (range.includes('-')) {
      const dash = range.indexOf('-');
      from = value(range.slice(0, dash));
      to = value(range.slice(dash + 1));
    } else {
      from = value(range);
      to = slash < 0 ? from : max;
    }
    if (from === null || to === null || from > to) return null;
    for (let at = from; at <= to; at += step) set.add(at);
  }
  return set;
}

/** The first minute after `after` the expression runs at (UTC), or null (invalid, or never). */
export function nextRun(expression, after = new Date()) {
  const cron = parseCron(expression);
  if (!cron) return null;
  const [minutes, hours, days, months, weekdays] = cron.sets;
  const dayMatches = (time) => {
    if (!months.has(time.getUTCMonth() + 1)) return false;
    const byMonthDay = days.has(time.getUTCDate());
    const byWeekDay = weekdays.has(time.getUTCDay());
    return cron.eitherDay ? byMonthDay || byWeekDay : byMonthDay && byWeekDay;
  };
  let minute = Math.floor(after.getTime() / 60000) + 1;
  const last = minute + 5 * 366 * 24 * 60;
  while (minute < last) {
    const time = new Date(minute * 60000);
    if (!dayMatches(time)) {
      minute = (Math.floor(minute / 1440) + 1) * 1440;
    } else if (!hours.has(time.getUTCHours())) {
      minute = (Math.floor(minute / 60) + 1) * 60;
    } else if (minutes.has(time.getUTCMinutes())) {
      return time;
    } else {
      minute += 1;
    }
  }
  return null;
}

/** `2026-12-06 03:00 UTC`. */
export function fmtUtc(date) {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "next run 2026-12-06 03:00 UTC" for a task's RunFrequency, or '' when there is none. */
export function nextRunText(expression) {
  const next = nextRun(expression);
  return next ? `next run ${fmtUtc(next)}` : '';
}

// --- the task's settings

/** RunFrequency, CustomPartitionValue, OlapTables and EmitDeletes of an OLAP ETL task. */
export function olapSettingsEditor(config) {
  const frequency = h('input', { value: config.RunFrequency ?? DEFAULT_RUN_FREQUENCY, autocomplete: 'off', spellcheck: 'false', placeholder: '*/10 * * * *' });
  const preset = h('select', {},
    h('option', { value: '' }, 'Custom'),
    PRESETS.map(([value, label]) => h('option', { value }, `${label} (${value})`)));
  const nextText = h('span', { class: 'muted', 'data-testid': 'next-run' });
  const frequencyField = field('Run frequency (cron, UTC)', frequency, {
    hint: h('span', {}, 'Minute, hour, day of month, month, day of week. A run also starts when the task is saved, reset or enabled. ', nextText),
  });
  const syncFrequency = () => {
    const value = frequency.value.trim().replace(/\s+/g, ' ');
    preset.value = PRESETS.some(([it]) => it === value) ? value : '';
    const next = nextRun(value);
    nextText.textContent = next ? `Next run: ${fmtUtc(next)}.` : '';
  };
  frequency.addEventListener('input', syncFrequency);
  preset.addEventListener('change', () => {
    if (preset.value) frequency.value = preset.value;
    syncFrequency();
  });
  syncFrequency();
  const partition = h('input', { value: config.CustomPartitionValue || '', autocomplete: 'off', placeholder: '(none)' });
  const partitionField = field('Custom partition value', partition,
    { hint: 'Scripts read it as $customPartitionValue, so tasks sharing a script write apart: partitionBy([\'region\', $customPartitionValue]).' });
  const emitDeletes = h('input', { type: 'checkbox', checked: Boolean(config.EmitDeletes) });
  const emitField = field('Write deletes (_deleted rows)', emitDeletes,
    { hint: 'Corvid\'s: a deleted document writes a row with _deleted = true, so readers can compute the current state.' });
  const tables = olapTablesEditor(config.OlapTables || []);
  const el = h('div', {},
    h('div', { class: 'row' }, frequencyField, field('Preset', preset)),
    h('div', { class: 'row' }, partitionField, emitField),
    h('h3', {}, 'OLAP tables'), tables.el);
  return {
    el,
    value: () => ({
      RunFrequency: frequency.value.trim(),
      CustomPartitionValue: partition.value.trim() || null,
      OlapTables: tables.value(),
      Format: config.Format || 'Parquet',
      EmitDeletes: emitDeletes.checked,
    }),
    clearErrors() {
      frequencyField.setError('');
      partitionField.setError('');
      tables.setError('');
    },
    /** Puts a server error about these settings next to its field; true when placed. */
    placeError(message) {
      if (/RunFrequency/.test(message)) frequencyField.setError(message);
      else if (/CustomPartitionValue/.test(message)) partitionField.setError(message);
      else if (/OlapTables|DocumentIdColumn|TableName/.test(message)) tables.setError(message);
      else return false;
      frequencyField.scrollIntoView({ block: 'nearest' });
      return true;
    },
  };
}

function olapTablesEditor(initial) {
  const rows = h('div');
  const error = h('div', { class: 'field-error', role: 'alert' });
  const items = [];
  function addRow(table) {
    const name = h('input', { value: table.TableName || '', placeholder: 'Table name', 'aria-label': 'OLAP table name', autocomplete: 'off' });
    const column = h('input', { value: table.DocumentIdColumn || '', placeholder: 'Document id column (_id)', 'aria-label': 'Document id column', autocomplete: 'off' });
    const row = h('div', { class: 'tables-row' }, name, column,
      h('button', { type: 'button', class: 'secondary', onclick: () => { items.splice(items.indexOf(item), 1); row.remove(); } }, 'Remove table'));
    const item = { value: () => ({ TableName: name.value.trim(), DocumentIdColumn: column.value.trim() }) };
    items.push(item);
    rows.append(row);
  }
  for (const table of initial) addRow(table);
  const el = h('div', { class: 'field' },
    h('p', { class: 'muted' }, 'Only tables whose id column is not _id need to be listed; every table a script loads to is written.'),
    rows, h('button', { type: 'button', class: 'secondary', onclick: () => addRow({}) }, 'Add table'), error);
  return {
    el,
    value: () => items.map((it) => it.value()).filter((it) => it.TableName || it.DocumentIdColumn),
    setError: (message) => { error.textContent = message || ''; },
  };
}

// --- connection strings

/** Where an OLAP connection string writes: `Local: folder` or `S3: bucket/prefix`. */
export function olapWhere(connection) {
  if (connection.LocalSettings) return `Local: ${connection.LocalSettings.FolderPath}`;
  const s3 = connection.S3Settings;
  if (s3) return `S3: ${[s3.BucketName, s3.RemoteFolderName].filter(Boolean).join('/')}${s3.CustomServerUrl ? ` at ${s3.CustomServerUrl}` : ''}`;
  return '?';
}

export function olapConnectionLabel(connection) {
  return `${connection.Name} (${olapWhere(connection)})`;
}

/**
 * The destination fields of an OLAP connection string (a folder, or an S3 bucket); `existing`
 * is a stored one (its secret shown as `*****`, which keeps the stored key when sent back).
 */
export function olapConnectionFields(existing) {
  const s3 = existing?.S3Settings || {};
  const input = (value, placeholder, type = 'text') => h('input', { type, value: value || '', placeholder, autocomplete: 'off', spellcheck: 'false' });
  const kind = h('select', {},
    h('option', { value: 'Local', selected: !existing?.S3Settings }, 'Local folder'),
    h('option', { value: 'S3', selected: Boolean(existing?.S3Settings) }, 'Amazon S3 (or S3-compatible)'));
  const folder = input(existing?.LocalSettings?.FolderPath, 'lake');
  const accessKey = input(s3.AwsAccessKey, 'AKIA…');
  const secretKey = input(s3.AwsSecretKey, '', 'password');
  const sessionToken = input(s3.AwsSessionToken, '(optional)', 'password');
  const region = input(s3.AwsRegionName, 'us-east-1');
  const bucket = input(s3.BucketName, 'my-lake');
  const remoteFolder = input(s3.RemoteFolderName, '(optional) prefix/inside/the/bucket');
  const serverUrl = input(s3.CustomServerUrl, '(AWS; or an S3-compatible server such as http://127.0.0.1:9000)');
  const pathStyle = h('input', { type: 'checkbox', checked: Boolean(s3.ForcePathStyle) });
  const fields = {
    kind: field('Destination', kind),
    folder: field('Folder path', folder, { hint: 'Relative to the server\'s OLAP directory (--olap-dir); an absolute path must be inside it.' }),
    accessKey: field('Access key', accessKey),
    secretKey: field('Secret key', secretKey, { hint: existing?.S3Settings ? '***** keeps the stored key (for the same access key, region, bucket and server).' : null }),
    sessionToken: field('Session token', sessionToken),
    region: field('Region', region),
    bucket: field('Bucket', bucket),
    remoteFolder: field('Remote folder', remoteFolder),
    serverUrl: field('Custom server URL', serverUrl),
    pathStyle: field('Force path style', pathStyle),
  };
  const localPart = h('div', {}, fields.folder);
  const s3Part = h('div', {},
    h('div', { class: 'row' }, fields.accessKey, fields.secretKey, fields.sessionToken),
    h('div', { class: 'row' }, fields.region, fields.bucket, fields.remoteFolder),
    h('div', { class: 'row' }, fields.serverUrl, fields.pathStyle));
  const sync = () => {
    localPart.hidden = kind.value !== 'Local';
    s3Part.hidden = kind.value === 'Local';
  };
  kind.addEventListener('change', sync);
  sync();
  return {
    parts: [fields.kind, localPart, s3Part],
    value() {
      if (kind.value === 'Local') return { LocalSettings: { FolderPath: folder.value.trim() } };
      return {
        S3Settings: {
          AwsAccessKey: accessKey.value.trim(),
          AwsSecretKey: secretKey.value,
          ...(sessionToken.value ? { AwsSessionToken: sessionToken.value } : {}),
          AwsRegionName: region.value.trim(),
          BucketName: bucket.value.trim(),
          RemoteFolderName: remoteFolder.value.trim(),
          ...(serverUrl.value.trim() ? { CustomServerUrl: serverUrl.value.trim() } : {}),
          ForcePathStyle: pathStyle.checked,
        },
      };
    },
    /** What is missing before anything is sent ('' when nothing). */
    check() {
      if (kind.value === 'Local') return folder.value.trim() ? '' : 'Enter the folder path.';
      for (const [control, name] of [[accessKey, 'access key'], [secretKey, 'secret key'], [region, 'region'], [bucket, 'bucket']]) {
        if (!control.value.trim()) return `Enter the ${name}.`;
      }
      return '';
    },
    clearErrors() {
      for (const it of Object.values(fields)) it.setError('');
    },
    /** Puts a server error next to the field it names; true when placed. */
    placeError(message) {
      const target = [
        [/FolderPath|OLAP folder|OLAP directory/, fields.folder],
        [/AwsAccessKey/, fields.accessKey],
        [/AwsSecretKey/, fields.secretKey],
        [/AwsSessionToken/, fields.sessionToken],
        [/AwsRegionName/, fields.region],
        [/BucketName/, fields.bucket],
        [/RemoteFolderName/, fields.remoteFolder],
        [/CustomServerUrl/, fields.serverUrl],
        [/LocalSettings|S3Settings|GlacierSettings|AzureSettings|GoogleCloudSettings|FtpSettings/, fields.kind],
      ].find(([pattern]) => pattern.test(message))?.[1];
      target?.setError(message);
      return Boolean(target);
    },
    focus: () => (kind.value === 'Local' ? folder : accessKey).focus(),
  };
}

// --- the test answer

/** Per table and partition: the file the rows would go to, and the rows with their Parquet types. */
export function olapTestResult(answer) {
  const parts = [h('h3', {}, 'Rows that would be written')];
  const items = answer?.ItemsByPartition || [];
  if (!items.length) parts.push(h('p', { class: 'muted' }, 'Nothing: the script loads nothing for this document.'));
  for (const item of items) {
    const columns = item.Columns || [];
    const rowCount = Math.max(0, ...columns.map((it) => (it.Values || []).length));
    const rows = [];
    for (let row = 0; row < rowCount; row += 1) {
      rows.push(h('tr', {}, columns.map((it) => h('td', {}, cellText(it.Values?.[row])))));
    }
    parts.push(h('div', { class: 'sql-table', dataset: { partition: item.Key } },
      h('strong', {}, item.Key),
      h('div', { class: 'muted' }, 'File: ', h('code', {}, item.FilePath)),
      h('table', { class: 'grid', 'aria-label': `Rows of ${item.Key}` },
        h('thead', {}, h('tr', {}, columns.map((it) => h('th', {}, it.Name, h('div', { class: 'muted' }, it.Type))))),
        h('tbody', {}, rows))));
  }
  return parts;
}

function cellText(value) {
  if (value === null || value === undefined) return 'null';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
