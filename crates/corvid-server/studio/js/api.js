// The Studio's only way to the server: the public HTTP API, as any client uses it.
//
// Every call answers the parsed JSON (or null for an empty body) or throws an ApiError with
// the server's {Type, Message}. When the server cannot be reached at all, the Studio turns to
// "unreachable": the status line says so, /setup/alive is polled every second, and once the
// server answers again the listeners (the router re-renders the page) are told.

export class ApiError extends Error {
  constructor(status, type, message, body) {
    super(message);
    this.status = status;
    this.type = type || '';
    this.body = body;
  }
  // "transformation `t`: script syntax error at line 2, column 10: …" → {line, column}
  get position() {
    const m = /line (\d+), column (\d+)/.exec(this.message);
    return m ? { line: Number(m[1]), column: Number(m[2]) } : null;
  }
}

export class UnreachableError extends Error {
  constructor() {
    super('The server is unreachable; nothing was sent. The Studio retries by itself and goes on when the server is back.');
    this.unreachable = true;
  }
}

const listeners = new Set();
let unreachable = false;
let probing = null;

export function onReachabilityChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function isUnreachable() {
  return unreachable;
}

function setUnreachable(value) {
  if (unreachable === value) return;
  unreachable = value;
  for (const listener of listeners) listener(value);
  if (value && !probing) {
    probing = setInterval(async () => {
      try {
        const response = await fetch('/setup/alive', { cache: 'no-store' });
        if (response.ok || response.status === 204) {
          clearInterval(probing);
          probing = null;
          setUnreachable(false);
        }
      } catch {
        // still away
      }
    }, 1000);
  }
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) value.forEach((item) => search.append(key, item));
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export function dbPath(database, path) {
  return `/databases/${encodeURIComponent(database)}${path}`;
}

/** Sends one request. `body` objects are sent as JSON; strings, Blobs and Files as they are. */
export async function request(method, path, { params, body, headers = {}, raw = false, signal } = {}) {
  const init = { method, headers: { ...headers }, signal, cache: 'no-store' };
  if (body !== undefined) {
    if (body instanceof Blob || typeof body === 'string') {
      init.body = body;
      if (!init.headers['Content-Type']) init.headers['Content-Type'] = 'application/octet-stream';
    } else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json; charset=utf-8';
    }
  }
  let response;
  try {
    response = await fetch(path + query(params), init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    setUnreachable(true);
    throw new UnreachableError();
  }
  setUnreachable(false);
  if (raw) {
    if (!response.ok) throw await toError(response);
    return response;
  }
  if (response.status === 304) return null;
  if (!response.ok) throw await toError(response);
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function toError(response) {
  const text = await response.text().catch(() => '');
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  if (body && (body.Message || body.Error)) {
    return new ApiError(response.status, body.Type, body.Message || body.Error, body);
  }
  if (response.status === 404) return new ApiError(404, 'NotFound', 'Not found', body);
  return new ApiError(response.status, '', text || `${response.status} ${response.statusText}`, body);
}

export const api = {
  get: (path, params, options = {}) => request('GET', path, { ...options, params }),
  put: (path, params, body, options = {}) => request('PUT', path, { ...options, params, body }),
  post: (path, params, body, options = {}) => request('POST', path, { ...options, params, body }),
  del: (path, params, body, options = {}) => request('DELETE', path, { ...options, params, body }),
  send: request,
};

/** Etl task type names as /task and /admin/tasks want them. */
export const TASK_TYPES = { Raven: 'RavenEtl', Sql: 'SqlEtl', Queue: 'QueueEtl', Olap: 'OlapEtl' };
