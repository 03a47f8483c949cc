// Render nodes: state, current chunks, CPU and memory, last seen; enable/disable/drain for administrators.

import { API, call } from './api.js';
import { ago, bytes, h, percent, setText, syncChildren } from './ui.js';

const MODES = [['enable', 'Enable'], ['drain', 'Drain'], ['disable', 'Disable']];

function stateOf(worker) {
  if (worker.disabled) return ['disabled', `Disabled (${worker.state})`];
  if (worker.draining) return ['draining', `Draining (${worker.state})`];
  return [worker.state, worker.state[0].toUpperCase() + worker.state.slice(1)];
}

export class WorkersView {
  constructor(app) {
    this.app = app;
    this.title = 'Render nodes';
    this.admin = app.me.isAdmin;
    this.rows = h('tbody');
    this.error = h('p', { class: 'error', role: 'alert' });
    this.notice = h('p', { class: 'notice', role: 'status' });
    this.empty = h('p', { class: 'empty', hidden: true },
      'No render node has registered yet. Start one with `rayfarm worker --server URL --token T`.');
    const columns = ['Node', 'State', 'Current chunks', 'CPU', 'Memory', 'Software', 'Last seen'];
    if (this.admin) columns.push('Actions');
    this.root = h('section', { class: 'workers', 'aria-labelledby': 'workers-title' },
      h('h1', { id: 'workers-title' }, 'Render nodes'),
      this.admin ? null : h('p', { class: 'hint' }, 'Only your own chunks are shown. Farm administrators can enable, disable and drain nodes.'),
      this.error, this.notice,
      h('table', { class: 'grid-table' },
        h('caption', { class: 'visually-hidden' }, 'Render nodes of the farm'),
        h('thead', {}, h('tr', {}, columns.map((name) => h('th', { scope: 'col' }, name)))),
        this.rows),
      this.empty);
  }

  problem(text) {
    setText(this.error, text);
  }

  async refresh() {
    const workers = await call(API.workers);
    syncChildren(this.rows, workers, (w) => w.id, (w) => this.makeRow(w), (tr, w) => this.updateRow(tr, w));
    this.empty.hidden = workers.length > 0;
  }

  makeRow(worker) {
    const cells = [h('th', { scope: 'row' }, h('span', { class: 'node-name' }), h('span', { class: 'hint host' })),
      h('td', {}, h('span', { class: 'badge' })), h('td', { class: 'chunks' }), h('td', { class: 'num' }),
      h('td', { class: 'num' }), h('td', { class: 'software' }), h('td', {})];
    if (this.admin) {
      cells.push(h('td', {}, h('div', { class: 'buttons' }, MODES.map(([mode, label]) => h('button', {
        type: 'button', 'data-mode': mode, 'aria-label': `${label} node ${worker.name}`,
        onclick: () => this.setMode(worker, mode, label),
      }, label)))));
    }
    return h('tr', { 'data-worker-id': worker.id }, cells);
  }

  updateRow(tr, worker) {
    const cells = tr.children;
    setText(cells[0].querySelector('.node-name'), worker.name);
    setText(cells[0].querySelector('.host'), worker.hostname !== worker.name ? ` ${worker.hostname}` : '');
    const [state, label] = stateOf(worker);
    const pill = cells[1].firstChild;
    pill.className = `badge ws-${state}`;
    setText(pill, label);
    const running = worker.running.map((chunk) => `${chunk.taskId}:${chunk.frameIndex}:${Math.round(chunk.progress)}`).join(',');
    if (cells[2].dataset.running !== running) {
      cells[2].dataset.running = running;
      cells[2].replaceChildren(...(worker.running.length ? worker.running.map((chunk) => h('div', {},
        h('a', { href: `#/task/${chunk.taskId}` }, `Task ${chunk.taskId}`), ` frame ${chunk.frameIndex} · ${Math.round(chunk.progress)}%`))
        : ['–']));
    }
    setText(cells[3], `${percent(worker.cpu)} of ${worker.cores} cores`);
    setText(cells[4], `${bytes(worker.memUsed)} / ${bytes(worker.memory)}`);
    setText(cells[5], Object.entries(worker.software).map(([name, version]) => (version ? `${name} ${version}` : name)).join(', ') || '–');
    setText(cells[6], ago(worker.lastSeen));
    if (this.admin) {
      for (const button of cells[7].querySelectorAll('button')) {
        const mode = button.dataset.mode;
        button.disabled = mode === 'enable' ? !(worker.disabled || worker.draining)
          : mode === 'disable' ? worker.disabled : worker.draining || worker.disabled;
      }
    }
  }

  async setMode(worker, mode, label) {
    if (mode === 'disable' && !window.confirm(`Disable ${worker.name}? Its running chunks go back to waiting now.`)) return;
    setText(this.error, '');
    try {
      await call(API.workerMode, { workerIds: [worker.id], mode });
      setText(this.notice, `${label}: ${worker.name} done.`);
      this.app.tick();
    } catch (error) {
      setText(this.notice, '');
      setText(this.error, error.message);
    }
  }
}
