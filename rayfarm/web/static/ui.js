// Small DOM and formatting helpers shared by the dashboard's views. Text always goes in as text nodes.

export const TASK_STATUS = {
  0: 'Waiting', 5: 'Rendering', 8: 'Pre-processing', 10: 'Stopped', 20: 'Stopped (arrears)',
  23: 'Over-time stopped', 25: 'Done', 30: 'Done with failures', 35: 'Abandoned', 40: 'Priority frames done',
  45: 'Failed',
};
export const FRAME_STATUS = {
  1: 'Waiting', 2: 'Rendering', 3: 'Stopped', 4: 'Done', 5: 'Failed', 6: 'Waiting', 8: 'Held', 11: 'Timed out',
};

// h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child) -> element
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'value') el.value = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

export function setText(el, text) {
  const value = String(text ?? '');
  if (el.textContent !== value) el.textContent = value;
}

export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) el.removeAttribute(name);
  else if (el.getAttribute(name) !== String(value)) el.setAttribute(name, String(value));
}

// Keep `parent`'s children in step with `items` by key: existing elements are updated in place (focus
// and scroll survive a refresh), new ones made, gone ones removed, order fixed only when it changed.
export function syncChildren(parent, items, key, make, update) {
  const existing = new Map([...parent.children].map((el) => [el.dataset.key, el]));
  const wanted = items.map((item) => {
    const id = String(key(item));
    let el = existing.get(id);
    if (!el) {
      el = make(item);
      el.dataset.key = id;
    }
    existing.delete(id);
    update(el, item);
    return el;
  });
  for (const el of existing.values()) el.remove();
  wanted.forEach((el, index) => {
    if (parent.children[index] !== el) parent.insertBefore(el, parent.children[index] || null);
  });
}

export function badge(status, names, prefix) {
  return h('span', { class: `badge ${prefix}${status}` }, names[status] ?? `Status ${status}`);
}

export function updateBadge(el, status, names, prefix) {
  el.className = `badge ${prefix}${status}`;
  setText(el, names[status] ?? `Status ${status}`);
}

// Local time as the command line prints it, whatever the browser's locale: 2025-03-04 17:05:09.
export function dateTime(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

// A length of time as the command line says it: 45 s, 3 min 20 s, 2 h 5 min, 3 days.
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86400 || s % 86400) return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
  return `${s / 86400} day${s >= 172800 ? 's' : ''}`;
}

// A frame range as the command line shows it: 1-24[1] -> 1-24; 1-99[2] -> 1-99, every 2nd frame.
export function framesText(text) {
  if (!text) return '–';
  const ordinal = (n) => `${n}${n % 100 >= 10 && n % 100 <= 20 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] || 'th')}`;
  const parts = text.replace(/\s+/g, '').split(',').map((item) => {
    const m = item.match(/^(\d+)(?:-(\d+))?(?:\[(\d+)\])?$/);
    if (!m) return { text: item, step: 1 };
    const [start, end, step] = [Number(m[1]), Number(m[2] ?? m[1]), Number(m[3] ?? 1)];
    const last = end - ((end - start) % step);
    return start === last ? { text: String(start), step: 1 } : { text: `${start}-${last}`, step };
  });
  const stepped = parts.some((p) => p.step > 1);
  return parts.map((p) => (p.step > 1 ? `${p.text}, every ${ordinal(p.step)} frame` : p.text)).join(stepped ? '; ' : ', ');
}

// The time a rendering task still needs, from its done chunks (etaSeconds); '' when the farm has no estimate.
export function timeLeft(task) {
  return task.etaSeconds === null || task.etaSeconds === undefined ? '' : `about ${duration(task.etaSeconds)} left`;
}

export function ago(epochSeconds) {
  if (!epochSeconds) return 'never';
  const s = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function percent(value) {
  return value === null || value === undefined ? '–' : `${Math.round(value)}%`;
}

// A <progress> with its number beside it, labelled for screen readers.
export function progressBar(label) {
  return h('span', { class: 'progress' }, h('progress', { max: '100', value: '0', 'aria-label': label }),
    h('span', { class: 'progress-text' }, '0%'));
}

export function updateProgress(el, value) {
  const bar = el.querySelector('progress');
  const shown = Math.max(0, Math.min(100, Number(value) || 0));
  if (Number(bar.value) !== shown) bar.value = shown;
  setText(el.querySelector('.progress-text'), `${shown.toFixed(shown % 1 ? 1 : 0)}%`);
}
