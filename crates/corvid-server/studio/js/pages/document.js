// One document: its JSON in the editor (without @metadata), the metadata, the attachments
// (download, upload, delete); save with the change vector it was loaded with, so that a
// document changed meanwhile is never overwritten; a new document when there is no id.

import { api, dbPath, ApiError } from '../api.js';
import { h, mount, field, toast, confirmDialog, errorBox, fmtDate, fmtBytes, link, busy } from '../ui.js';
import { createEditor, jsonError } from '../editor.js';

// Coming back from an outage must not throw away an unsaved edit.
export const keepOnReconnect = true;

// Metadata the server owns: shown, never sent back as if the user had written it.
const SERVER_METADATA = ['@id', '@change-vector', '@last-modified', '@flags', '@attachments'];

export async function render(ctx) {
  const database = ctx.database;
  const id = ctx.params.id || '';
  if (!id) {
    renderNew(ctx);
    return;
  }
  mount(ctx.view, h('h1', {}, id), h('p', { class: 'muted' }, 'Loading…'));
  let doc;
  try {
    doc = await loadDocument(database, id);
  } catch (error) {
    if (!ctx.isCurrent()) return;
    mount(ctx.view, h('h1', {}, id), errorBox(error), backLink(database, ''));
    return;
  }
  if (!ctx.isCurrent()) return;
  if (!doc) {
    mount(ctx.view, h('h1', {}, id),
      h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Not found'),
        ` Document ${id} does not exist in ${database}. It may have been deleted.`),
      backLink(database, ''));
    return;
  }
  renderExisting(ctx, doc);
}

/** The document with its @metadata, or null when there is none. */
async function loadDocument(database, id) {
  try {
    const answer = await api.get(dbPath(database, '/docs'), { id });
    return answer?.Results?.[0] || null;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

function backLink(database, collection) {
  return h('p', {}, h('a', { href: link('databases/documents', { database, collection }) },
    collection ? `← Back to ${collection}` : '← Back to the documents'));
}

function bodyOf(doc) {
  const body = { ...doc };
  delete body['@metadata'];
  return body;
}

/**
 * Reads the editor: the document object, or null after marking what is wrong in it.
 * Nothing is sent when this answers null.
 */
function readEditor(editor, saveStatus) {
  const text = editor.value;
  const problem = jsonError(text);
  if (problem) {
    editor.setError(problem.line, problem.column, `Line ${problem.line}, column ${problem.column}: ${problem.message}`);
    mount(saveStatus, h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Invalid JSON'),
      ` at line ${problem.line}, column ${problem.column} — nothing was saved.`));
    return null;
  }
  const value = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    editor.setError(1, 1, 'A document must be a JSON object: { "Name": … }');
    mount(saveStatus, h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Not an object'),
      ' A document is a JSON object — nothing was saved.'));
    return null;
  }
  editor.clearError();
  return value;
}

/** The @metadata to send: what the document had (or the user typed), its collection kept. */
function metadataToSend(original, typed, collection) {
  const metadata = { ...(original || {}) };
  if (typed && typeof typed === 'object' && !Array.isArray(typed)) Object.assign(metadata, typed);
  for (const key of SERVER_METADATA) delete metadata[key];
  if (collection) metadata['@collection'] = collection;
  else delete metadata['@collection'];
  return metadata;
}

function renderExisting(ctx, doc) {
  const database = ctx.database;
  const metadata = doc['@metadata'] || {};
  const id = metadata['@id'] || ctx.params.id;
  const collection = metadata['@collection'] || '';
  // The change vector the editor's text was loaded with: the save must match it.
  let loadedChangeVector = metadata['@change-vector'] || '';
  const loadedBody = JSON.stringify(bodyOf(doc));

  const editor = createEditor({ value: JSON.stringify(bodyOf(doc), null, 2), language: 'json', label: 'Document JSON', rows: 24 });
  const saveStatus = h('div');
  const saveButton = h('button', { type: 'button' }, 'Save');
  const deleteButton = h('button', { type: 'button', class: 'danger' }, 'Delete');
  const metaBox = h('div');
  const attachmentsBox = h('div');
  saveButton.addEventListener('click', () => busy(saveButton, save));
  deleteButton.addEventListener('click', () => busy(deleteButton, remove));

  mount(ctx.view,
    h('h1', {}, h('span', { class: 'muted' }, 'Document '), h('code', { 'data-testid': 'document-id' }, id)),
    backLink(database, collection),
    h('div', { class: 'toolbar' }, saveButton, deleteButton),
    saveStatus,
    h('div', { class: 'row' },
      h('section', { style: 'flex: 3; min-width: 320px', 'aria-label': 'Document' }, editor.el),
      h('aside', { style: 'flex: 1; min-width: 260px' },
        h('div', { class: 'panel' }, h('h2', { style: 'margin-top: 0' }, 'Metadata'), metaBox),
        h('div', { class: 'panel' }, h('h2', { style: 'margin-top: 0' }, 'Attachments'), attachmentsBox))));
  showMetadata(metadata);

  function showMetadata(current) {
    const extra = Object.keys(current).filter((key) => !SERVER_METADATA.includes(key) && key !== '@collection');
    mount(metaBox, h('dl', { class: 'meta-list' },
      h('dt', {}, 'Collection'), h('dd', {}, current['@collection'] || '(none)'),
      h('dt', {}, 'Change vector'), h('dd', { 'data-testid': 'change-vector' }, current['@change-vector'] || '–'),
      h('dt', {}, 'Last modified'), h('dd', { title: current['@last-modified'] || '' }, fmtDate(current['@last-modified'])),
      h('dt', {}, 'Flags'), h('dd', {}, current['@flags'] || '(none)'),
      extra.map((key) => [h('dt', {}, key), h('dd', {}, JSON.stringify(current[key]))])));
    showAttachments(current['@attachments'] || []);
  }

  function showAttachments(attachments) {
    const fileInput = h('input', { type: 'file' });
    const fileField = field('Attachment file', fileInput);
    const uploadButton = h('button', { type: 'button', class: 'secondary' }, 'Upload attachment');
    uploadButton.addEventListener('click', () => busy(uploadButton, async () => {
      const file = fileInput.files?.[0];
      fileField.setError('');
      if (!file) {
        fileField.setError('Choose a file first.');
        return;
      }
      try {
        await api.put(dbPath(database, '/attachments'),
          { id, name: file.name, contentType: file.type || 'application/octet-stream' }, file);
      } catch (error) {
        fileField.setError(error.message);
        return;
      }
      toast(`Attachment ${file.name} uploaded`, 'ok');
      await refreshMetadata();
    }));
    const list = attachments.length
      ? h('ul', { style: 'padding-left: 18px; margin: 0 0 10px', 'aria-label': 'Attachments' }, attachments.map(attachmentItem))
      : h('p', { class: 'muted' }, 'No attachments.');
    mount(attachmentsBox, list, fileField, uploadButton);
  }

  function attachmentItem(attachment) {
    const href = `${dbPath(database, '/attachments')}?${new URLSearchParams({ id, name: attachment.Name })}`;
    const removeButton = h('button', { type: 'button', class: 'link', 'aria-label': `Delete attachment ${attachment.Name}` }, 'delete');
    const error = h('div', { class: 'field-error', role: 'alert' });
    removeButton.addEventListener('click', () => busy(removeButton, async () => {
      const ok = await confirmDialog(`Delete attachment ${attachment.Name}?`,
        `The attachment ${attachment.Name} of ${id} will be deleted. This cannot be undone.`);
      if (!ok) return;
      try {
        await api.del(dbPath(database, '/attachments'), { id, name: attachment.Name });
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      toast(`Attachment ${attachment.Name} deleted`, 'ok');
      await refreshMetadata();
    }));
    return h('li', { dataset: { attachment: attachment.Name } },
      h('a', { href, download: attachment.Name }, attachment.Name), ' ',
      h('span', { class: 'muted' }, `${attachment.ContentType || ''}, ${fmtBytes(attachment.Size)}`), ' ',
      removeButton, error);
  }

  /** After an attachment changed: the metadata again, the editor's text untouched. */
  async function refreshMetadata() {
    let fresh;
    try {
      fresh = await loadDocument(database, id);
    } catch (error) {
      mount(saveStatus, errorBox(error));
      return;
    }
    if (!ctx.isCurrent() || !fresh) return;
    const freshMetadata = fresh['@metadata'] || {};
    // The attachment changed the change vector. Take the new one only if the body is still
    // the one the editor was loaded with; if someone else changed it, saving must conflict.
    if (JSON.stringify(bodyOf(fresh)) === loadedBody) loadedChangeVector = freshMetadata['@change-vector'] || loadedChangeVector;
    Object.assign(metadata, { '@attachments': freshMetadata['@attachments'] });
    showMetadata(freshMetadata);
  }

  async function save() {
    mount(saveStatus);
    const value = readEditor(editor, saveStatus);
    if (!value) return;
    const { '@metadata': typed, ...body } = value;
    const toSend = { ...body, '@metadata': metadataToSend(metadata, typed, collection) };
    let answer;
    try {
      answer = await api.put(dbPath(database, '/docs'), { id }, toSend, { headers: { 'If-Match': loadedChangeVector } });
    } catch (error) {
      if (!ctx.isCurrent()) return;
      showSaveError(error);
      return;
    }
    toast(`Saved ${answer?.Id || id}`, 'ok');
    ctx.navigate(link('databases/edit', { database, id: answer?.Id || id }));
  }

  function showSaveError(error) {
    if (error.status === 409) {
      const reload = h('button', { type: 'button', class: 'secondary' }, 'Reload');
      reload.addEventListener('click', () => ctx.navigate(link('databases/edit', { database, id })));
      mount(saveStatus, h('div', { class: 'error-box', role: 'alert', 'data-testid': 'conflict' },
        h('strong', {}, 'Conflict'),
        ` ${id} was changed since you opened it — nothing was saved. Reload to see the current version (your edits here are lost), or copy them first.`,
        h('div', { style: 'margin-top: 8px' }, reload)));
      return;
    }
    mount(saveStatus, errorBox(error));
    const position = error.position;
    if (position) editor.setError(position.line, position.column, error.message);
  }

  async function remove() {
    const ok = await confirmDialog(`Delete ${id}?`, `The document ${id} and its attachments will be deleted. This cannot be undone.`);
    if (!ok) return;
    try {
      await api.del(dbPath(database, '/docs'), { id }, undefined, { headers: { 'If-Match': loadedChangeVector } });
    } catch (error) {
      if (!ctx.isCurrent()) return;
      if (error.status === 409) {
        const reload = h('button', { type: 'button', class: 'secondary' }, 'Reload');
        reload.addEventListener('click', () => ctx.navigate(link('databases/edit', { database, id })));
        mount(saveStatus, h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Conflict'),
          ` ${id} was changed since you opened it — nothing was deleted.`, h('div', { style: 'margin-top: 8px' }, reload)));
        return;
      }
      mount(saveStatus, errorBox(error));
      return;
    }
    toast(`Deleted ${id}`, 'ok');
    ctx.navigate(link('databases/documents', { database, collection }));
  }
}

function renderNew(ctx) {
  const database = ctx.database;
  const defaultCollection = ctx.params.collection || '';
  const idInput = h('input', { name: 'document-id', autocomplete: 'off', value: defaultCollection ? `${defaultCollection.toLowerCase()}/` : '', placeholder: 'orders/1' });
  const idField = field('Document id', idInput, {
    hint: 'End with / for an id the server makes (orders/0000000000000000042-A), or with | for the next number (orders/7).',
  });
  const collectionInput = h('input', { name: 'collection', autocomplete: 'off', value: defaultCollection, placeholder: 'Orders' });
  const collectionField = field('Collection', collectionInput, { hint: 'Empty: the document belongs to no collection (@empty).' });
  const editor = createEditor({ value: '{\n  \n}', language: 'json', label: 'Document JSON', rows: 20 });
  const saveStatus = h('div');
  const saveButton = h('button', { type: 'button' }, 'Save');
  saveButton.addEventListener('click', () => busy(saveButton, save));

  mount(ctx.view,
    h('h1', {}, 'New document'),
    backLink(database, defaultCollection),
    h('div', { class: 'panel row' }, idField, collectionField),
    h('div', { class: 'toolbar' }, saveButton),
    saveStatus,
    editor.el);

  async function save() {
    mount(saveStatus);
    idField.setError('');
    collectionField.setError('');
    const id = idInput.value.trim();
    if (!id) {
      idField.setError('Enter an id, or a prefix ending with / or |.');
      return;
    }
    const value = readEditor(editor, saveStatus);
    if (!value) return;
    const { '@metadata': typed, ...body } = value;
    const collection = collectionInput.value.trim();
    const toSend = { ...body, '@metadata': metadataToSend(null, typed, collection) };
    let answer;
    try {
      // An empty change vector: only if no document has this id yet.
      answer = await api.put(dbPath(database, '/docs'), { id }, toSend, { headers: { 'If-Match': '""' } });
    } catch (error) {
      if (!ctx.isCurrent()) return;
      if (error.status === 409) {
        idField.setError('');
        mount(saveStatus, h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Already exists'),
          ` A document with the id ${id} already exists — nothing was saved. `,
          h('a', { href: link('databases/edit', { database, id }) }, `Open ${id}`), ' or choose another id.'));
        idField.setError(`${id} already exists.`);
        return;
      }
      const message = error.message || '';
      if (/\bid\b/i.test(message)) idField.setError(message);
      else if (/collection/i.test(message)) collectionField.setError(message);
      else mount(saveStatus, errorBox(error));
      return;
    }
    toast(`Created ${answer?.Id || id}`, 'ok');
    ctx.navigate(link('databases/edit', { database, id: answer?.Id || id }));
  }
}
