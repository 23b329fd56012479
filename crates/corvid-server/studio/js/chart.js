// Two small SVG charts, drawn here rather than with a chart library: the ETL batches as a
// timeline (extract+transform and load durations, and batch sizes), and a rate over time.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) element.setAttribute(key, String(value));
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const COLORS = { transform: '#6366f1', load: '#10b981', failed: '#ef4444', items: '#f59e0b', rate: '#2563eb' };

/**
 * The last batches, oldest left: a stacked bar per batch (extract and transform, then load),
 * its height the duration; a dot for the number of items. `batches` are /etl/performance's
 * entries: {Started, DurationInMs, NumberOfExtractedItems, Successfully, Details.Operations}.
 */
export function batchTimeline(batches, { width = 760, height = 220 } = {}) {
  const pad = { left: 54, right: 46, top: 12, bottom: 28 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'ETL batches: durations and sizes' });
  if (!batches.length) {
    root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'No batches yet'));
    return root;
  }
  const parts = batches.map((batch) => {
    const ops = batch.Details?.Operations || [];
    const load = ops.filter((op) => /load/i.test(op.Name)).reduce((sum, op) => sum + op.DurationInMs, 0);
    const transform = ops.filter((op) => !/load/i.test(op.Name)).reduce((sum, op) => sum + op.DurationInMs, 0);
    return { transform, load, total: Math.max(batch.DurationInMs || 0, transform + load), items: batch.NumberOfExtractedItems || 0, ok: batch.Successfully !== false, started: batch.Started };
  });
  const maxMs = Math.max(1, ...parts.map((p) => p.total));
  const maxItems = Math.max(1, ...parts.map((p) => p.items));
  const slot = plotW / parts.length;
  const barW = Math.max(2, Math.min(28, slot * 0.7));
  for (let tick = 0; tick <= 4; tick += 1) {
    const y = pad.top + plotH - (plotH * tick) / 4;
    root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, stroke: '#eef0f3' }));
    root.append(svg('text', { x: pad.left - 6, y: y + 4, 'text-anchor': 'end' }, `${Math.round((maxMs * tick) / 4)} ms`));
    root.append(svg('text', { x: width - pad.right + 6, y: y + 4 }, Number(((maxItems * tick) / 4).toFixed(1))));
  }
  parts.forEach((part, index) => {
    const x = pad.left + slot * index + (slot - barW) / 2;
    const scale = (ms) => (plotH * ms) / maxMs;
    const transformH = scale(part.transform);
    const loadH = scale(part.load);
    const base = pad.top + plotH;
    const title = `${part.started || ''}\nextract+transform ${part.transform.toFixed(1)} ms, load ${part.load.toFixed(1)} ms, ${part.items} items${part.ok ? '' : ' (failed)'}`;
    root.append(svg('rect', { x, y: base - transformH, width: barW, height: transformH, fill: part.ok ? COLORS.transform : COLORS.failed }, svg('title', {}, title)));
    root.append(svg('rect', { x, y: base - transformH - loadH, width: barW, height: loadH, fill: part.ok ? COLORS.load : COLORS.failed, opacity: 0.85 }, svg('title', {}, title)));
    root.append(svg('circle', { cx: x + barW / 2, cy: base - (plotH * part.items) / maxItems, r: 3, fill: COLORS.items }, svg('title', {}, `${part.items} items`)));
  });
  root.append(svg('text', { x: pad.left, y: height - 8 }, 'older'));
  root.append(svg('text', { x: width - pad.right, y: height - 8, 'text-anchor': 'end' }, 'newer'));
  return root;
}

/** A line of (time ms, value) points over the last `windowMs`. */
export function rateChart(points, { width = 760, height = 160, windowMs = 5 * 60 * 1000, unit = '/s' } = {}) {
  const pad = { left: 54, right: 12, top: 12, bottom: 24 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Processed per second' });
  const now = Date.now();
  const visible = points.filter((p) => now - p.t <= windowMs);
  const maxValue = niceMax(Math.max(1, ...visible.map((p) => p.v)));
  for (let tick = 0; tick <= 3; tick += 1) {
    const y = pad.top + plotH - (plotH * tick) / 3;
    root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, stroke: '#eef0f3' }));
    root.append(svg('text', { x: pad.left - 6, y: y + 4, 'text-anchor': 'end' }, `${fmtTick((maxValue * tick) / 3)}${unit}`));
  }
  const xOf = (t) => pad.left + plotW - (plotW * (now - t)) / windowMs;
  const yOf = (v) => pad.top + plotH - (plotH * v) / maxValue;
  if (visible.length > 1) {
    const d = visible.map((p, i) => `${i ? 'L' : 'M'}${xOf(p.t).toFixed(1)},${yOf(p.v).toFixed(1)}`).join(' ');
    root.append(svg('path', { d, fill: 'none', stroke: COLORS.rate, 'stroke-width': 2 }));
  } else {
    root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'Collecting…'));
  }
  root.append(svg('text', { x: pad.left, y: height - 6 }, `${Math.round(windowMs / 60000)} min ago`));
  root.append(svg('text', { x: width - pad.right, y: height - 6, 'text-anchor': 'end' }, 'now'));
  return root;
}

function niceMax(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 3, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return value;
}

function fmtTick(value) {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : String(Math.round(value * 10) / 10);
}
