// One task: state, progress and time left, controls, the frame grid coloured by frame status (filtered by
// state), the chosen frame's details, thumbnails and log tail, and the task's previews and outputs.

import { API, call } from './api.js';
import { Gallery } from './gallery.js';
import { Previews } from './previews.js';
import {
  FRAME_STATUS, TASK_STATUS, badge, bytes, dateTime, duration, framesText, h, percent, progressBar, setAttr,
  setText, syncChildren, timeLeft, updateBadge, updateProgress,
} from './ui.js';

const FRAME_PAGE = 500;
const RERENDERABLE = [3, 4, 5, 11]; // stopped, done, failed, timed out
// The frame filters: a name means what the counts with that name count (failed: failed and timed out), as in
// `rayfarm task frames --state`. Each shows the colours of the states it holds, so it doubles as the legend.
const FILTERS = [['All', []], ['Waiting', [1, 6, 8], [1, 8]], ['Rendering', [2], [2]], ['Done', [4], [4]],
  ['Failed', [5, 11], [5, 11]], ['Stopped', [3], [3]]];
const FINISHED = [25, 30];
const OUTPUTS_MS = 5000;

function field(dl, label) {
  const value = h('dd');
  dl.append(h('dt', {}, label), value);
  return value;
}

export class TaskView {
  constructor(app, id) {
    this.app = app;
    this.id = Number(id);
    this.title = `Task ${this.id}`;
    this.page = 1;
    this.filter = 0; // index in FILTERS
    this.selected = null; // frame id
    this.shownThumbs = null;
    this.heading = h('h1', { id: 'task-title' }, `Task ${this.id}`);
    this.status = badge(0, TASK_STATUS, 'ts');
    this.notice = h('p', { class: 'notice', role: 'status' });
    this.error = h('p', { class: 'error', role: 'alert' });
    this.progress = progressBar(`Progress of task ${this.id}`);

    const counts = h('dl', { class: 'facts' });
    this.f = {
      done: field(counts, 'Done'), rendering: field(counts, 'Rendering'), waiting: field(counts, 'Waiting'),
      failed: field(counts, 'Failed'), stopped: field(counts, 'Stopped'), left: field(counts, 'Time left'),
    };
    const details = h('dl', { class: 'facts' });
    Object.assign(this.f, {
      scene: field(details, 'Scene'), project: field(details, 'Project'), software: field(details, 'Software'),
      range: field(details, 'Frames'), submitted: field(details, 'Submitted'), started: field(details, 'Started'),
      completed: field(details, 'Completed'), time: field(details, 'Render time'), labels: field(details, 'Labels'),
      chunks: field(details, 'Chunks'), pool: field(details, 'Pool'), level: field(details, 'Priority'),
      limit: field(details, 'Node limit'), chunkTimeout: field(details, 'Chunk time-out'),
      overTime: field(details, 'Over-time stop'),
    });

    const act = (label, op, path, extra = {}) => h('button', {
      type: 'button', 'data-op': op, class: extra.danger ? 'danger' : '',
      onclick: () => this.act(label, path, extra),
    }, label);
    this.buttons = [
      act('Stop', 'stop', API.stop),
      act('Start', 'start', API.start),
      act('Full speed', 'fullSpeed', API.fullSpeed),
      act('Re-render failed frames', 'recommit', API.recommitFrames, { recommit: true }),
      act('Abort', 'abort', API.abort, { danger: true, confirm: 'Abort this task? Its waiting frames will not render.' }),
      act('Delete', 'delete', API.delete, { danger: true, confirm: 'Delete this task?', leave: true }),
    ];
    this.inputs = {};
    const setting = (key, label, hint, min, max, path, body) => {
      const input = h('input', { id: `set-${key}`, type: 'number', min, max, step: '1', required: true,
        'aria-describedby': `hint-${key}` });
      input.addEventListener('input', () => { input.dataset.dirty = '1'; });
      this.inputs[key] = input;
      return h('form', { class: 'setting', onsubmit: (event) => {
        event.preventDefault();
        this.save(label, path, body(Number(input.value)), input);
      } }, h('label', { for: `set-${key}` }, label), input, h('button', { type: 'submit' }, 'Set'),
      h('span', { class: 'hint', id: `hint-${key}` }, hint));
    };

    this.grid = h('ol', { class: 'frames', 'aria-label': 'Frames of this task, coloured by state' });
    this.grid.addEventListener('keydown', (event) => this.moveFocus(event));
    this.filterButtons = FILTERS.map(([name, , colours], index) => h('button', {
      type: 'button', class: 'chip', 'aria-pressed': String(index === this.filter), 'data-filter': name,
      onclick: () => this.choose(index),
    }, (colours || []).map((code) => h('span', { class: `swatch fs${code}`, 'aria-hidden': 'true' })),
    h('span', {}, name), ' ', h('span', { class: 'count' }, '')));
    this.legend = h('div', { class: 'chips legend', role: 'group', 'aria-label': 'Show chunks by state' }, this.filterButtons);
    this.filterEmpty = h('p', { class: 'hint', hidden: true });
    this.previews = new Previews(this.id);
    this.gallery = new Gallery(this.id);
    this.framePager = h('nav', { class: 'pager', 'aria-label': 'Frame pages', hidden: true });
    this.detail = h('section', { class: 'frame-detail card', 'aria-labelledby': 'frame-title', hidden: true });

    this.root = h('section', { class: 'task', 'aria-labelledby': 'task-title' },
      h('p', { class: 'back' }, h('a', { href: '#/tasks' }, '← All tasks')),
      h('div', { class: 'title-row' }, this.heading, this.status),
      this.error, this.notice,
      h('div', { class: 'cards' },
        h('section', { class: 'card', 'aria-label': 'Progress' }, h('h2', {}, 'Progress'), this.progress, counts),
        h('section', { class: 'card', 'aria-label': 'Details' }, h('h2', {}, 'Details'), details),
        h('section', { class: 'card controls', 'aria-labelledby': 'controls-title' },
          h('h2', { id: 'controls-title' }, 'Controls'),
          h('div', { class: 'buttons' }, this.buttons),
          setting('level', 'Priority', '0–100; higher renders first', 0, 100, API.priority,
            (v) => ({ taskId: this.id, taskUserLevel: v })),
          setting('limit', 'Node limit', '0 = as many nodes as are free', 0, 100000, API.limit,
            (v) => ({ taskId: this.id, taskLimit: v })),
          setting('overTime', 'Over-time stop (minutes)', '0 = off; stops the task when a frame runs longer', 0,
            43200, API.overTime, (v) => ({ taskIds: [this.id], overTime: v * 60 })))),
      h('section', { class: 'card', 'aria-labelledby': 'frames-title' },
        h('h2', { id: 'frames-title' }, 'Frames'), this.legend, this.grid, this.filterEmpty, this.framePager),
      this.detail, this.previews.root, this.gallery.root);
  }

  problem(text) {
    setText(this.error, text);
  }

  choose(index) {
    this.filter = index;
    this.page = 1;
    this.filterButtons.forEach((button, i) => button.setAttribute('aria-pressed', String(i === index)));
    this.app.tick();
  }

  async act(label, path, extra) {
    if (extra.confirm && !window.confirm(extra.confirm)) return;
    const body = extra.recommit ? { taskId: this.id, selectAll: 1, status: [5, 11] } : { taskIds: [this.id] };
    await this.run(label, path, body);
    if (extra.leave && !this.error.textContent) location.hash = '#/tasks';
  }

  async save(label, path, body, input) {
    if (await this.run(`${label} set`, path, body)) delete input.dataset.dirty;
  }

  async run(label, path, body) {
    setText(this.error, '');
    try {
      await call(path, body);
      setText(this.notice, `${label}: done.`);
      this.app.tick();
      return true;
    } catch (error) {
      setText(this.notice, '');
      setText(this.error, error.message);
      return false;
    }
  }

  async refresh() {
    let info;
    let frames;
    try {
      [info, frames] = await Promise.all([
        call(API.taskInfo, { taskIds: [this.id] }),
        call(API.frames, { taskId: this.id, pageNum: this.page, pageSize: FRAME_PAGE,
          ...(FILTERS[this.filter][1].length ? { status: FILTERS[this.filter][1] } : {}) }),
      ]);
    } catch (error) {
      if (error.code === 937 || error.code === 600) {
        this.root.replaceChildren(h('p', { class: 'back' }, h('a', { href: '#/tasks' }, '← All tasks')),
          h('h1', {}, `Task ${Number.isFinite(this.id) ? this.id : ''} not found`), h('p', {}, error.message));
        this.app.view = null; // nothing left to refresh
      }
      throw error;
    }
    this.showTask(info.items[0]);
    this.showFrames(frames);
    await Promise.all([this.showDetail(frames.items.find((frame) => frame.id === this.selected)),
      this.showOutputs(info.items[0])]);
  }

  // The outputs listing is read again when frames got done (at most every OUTPUTS_MS while the task renders: a
  // big task's listing is big) or the task changed state; once it ended, every few seconds until the farm has
  // made its previews.
  async showOutputs(task) {
    if (!task.submitDate) return;
    const rendering = [0, 5, 8].includes(task.taskStatus);
    const making = FINISHED.includes(task.taskStatus) && !(this.made ?? false);
    const key = `${task.taskStatus}:${task.doneFrames}:${task.completedDate}${making ? `:${Math.floor(Date.now() / 3000)}` : ''}`;
    const due = !rendering || !this.outputsAt || Date.now() - this.outputsAt >= OUTPUTS_MS;
    if (key !== this.gallery.key && due) this.outputsAt = Date.now();
    const listing = await this.gallery.refresh(due ? key : this.gallery.key, !rendering);
    if (!listing) return;
    this.made = listing.previews.movie.ready && listing.previews.sheet.ready;
    this.previews.show(listing, task);
  }

  showTask(task) {
    this.task = task;
    setText(this.heading, `Task ${task.id}${task.sceneName ? ` · ${task.sceneName}` : ''}`);
    document.title = `${this.heading.textContent} · ${TASK_STATUS[task.taskStatus] ?? ''} · rayfarm`;
    updateBadge(this.status, task.taskStatus, TASK_STATUS, 'ts');
    updateProgress(this.progress, task.progress);
    const f = this.f;
    setText(f.done, `${task.doneFrames} of ${task.totalFrames}`);
    setText(f.rendering, task.executingFrames);
    setText(f.waiting, task.waitingCount);
    setText(f.failed, task.failedFrames);
    setText(f.stopped, task.abortFrames);
    setText(f.left, timeLeft(task) || '–');
    setAttr(f.left, 'title', task.secondsPerFrame ? `${duration(task.secondsPerFrame)} a frame so far` : null);
    setText(f.scene, task.sceneName || '–');
    setText(f.project, task.projectName || '–');
    setText(f.software, task.software || '–');
    setText(f.range, framesText(task.framesRange));
    setText(f.submitted, dateTime(task.submitDate));
    setText(f.started, dateTime(task.startTime));
    setText(f.completed, dateTime(task.completedDate));
    setText(f.time, duration(task.renderDuration));
    setText(f.labels, task.labels?.length ? task.labels.join(', ') : '–');
    setText(f.chunks, task.framesPerChunk ? `${task.framesPerChunk} frame${task.framesPerChunk === 1 ? '' : 's'} each` : '–');
    const pool = task.pool ?? (task.pools ? task.pools.join(', ') || 'any node' : null); // when the farm says
    setText(f.pool, pool ?? '');
    f.pool.hidden = f.pool.previousSibling.hidden = pool === null;
    setText(f.chunkTimeout, task.jobStopTime ? duration(task.jobStopTime) : 'none');
    setText(f.level, task.taskUserLevel);
    setText(f.limit, task.taskLimit ? `${task.taskLimit} nodes` : 'none');
    setText(f.overTime, task.overTimeStop ? duration(task.overTimeStop) : 'off');
    const rules = this.app.me.rules;
    for (const button of this.buttons) {
      const op = button.dataset.op;
      button.disabled = !rules[op].includes(task.taskStatus) || (op === 'recommit' && task.failedFrames === 0);
    }
    const current = { level: task.taskUserLevel, limit: task.taskLimit || 0, overTime: Math.round((task.overTimeStop || 0) / 60) };
    for (const [key, input] of Object.entries(this.inputs)) {
      input.disabled = !rules.settings.includes(task.taskStatus);
      if (!input.dataset.dirty && document.activeElement !== input) input.value = String(current[key]);
    }
  }

  showFrames(page) {
    syncChildren(this.grid, page.items, (frame) => frame.id, (frame) => h('li', {}, h('button', {
      type: 'button', class: 'frame', 'data-frame-id': frame.id, onclick: () => this.select(frame.id),
    })), (li, frame) => {
      const button = li.firstChild;
      const state = FRAME_STATUS[frame.frameStatus] ?? `status ${frame.frameStatus}`;
      button.className = `frame fs${frame.frameStatus}`;
      setText(button, frame.frameIndex);
      setAttr(button, 'aria-label', `Frame ${frame.frameIndex}: ${state}${frame.frameStatus === 2 ? ` ${Math.round(frame.progress)}%` : ''}`);
      setAttr(button, 'title', `Frame ${frame.frameIndex}: ${state}${frame.nodeName ? ` on ${frame.nodeName}` : ''}`);
      setAttr(button, 'aria-pressed', String(frame.id === this.selected));
      setAttr(button, 'tabindex', frame.id === (this.selected ?? page.items[0]?.id) ? '0' : '-1');
    });
    const counts = page.chunkCounts || {};
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    FILTERS.forEach(([, codes], index) => {
      const n = codes.length ? codes.reduce((sum, code) => sum + (counts[code] || 0), 0) : total;
      setText(this.filterButtons[index].querySelector('.count'), n);
    });
    this.filterEmpty.hidden = page.items.length > 0;
    setText(this.filterEmpty, `No ${FILTERS[this.filter][0].toLowerCase()} chunks.`);
    const pages = page.pageCount;
    this.framePager.hidden = pages <= 1;
    if (pages > 1) {
      this.framePager.replaceChildren(
        h('button', { type: 'button', disabled: this.page <= 1, onclick: () => { this.page -= 1; this.app.tick(); } }, '← Previous'),
        h('span', {}, `Chunks ${(this.page - 1) * FRAME_PAGE + 1}–${Math.min(page.total, this.page * FRAME_PAGE)} of ${page.total}`),
        h('button', { type: 'button', disabled: this.page >= pages, onclick: () => { this.page += 1; this.app.tick(); } }, 'Next →'));
    }
  }

  moveFocus(event) {
    const buttons = [...this.grid.querySelectorAll('button.frame')];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    const columns = getComputedStyle(this.grid).gridTemplateColumns.split(' ').length || 1;
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns };
    let to = at;
    if (event.key in moves) to = at + moves[event.key];
    else if (event.key === 'Home') to = 0;
    else if (event.key === 'End') to = buttons.length - 1;
    else return;
    event.preventDefault();
    const target = buttons[Math.max(0, Math.min(buttons.length - 1, to))];
    buttons[at].tabIndex = -1;
    target.tabIndex = 0;
    target.focus();
  }

  select(frameId) {
    this.selected = frameId;
    this.shownThumbs = null;
    this.logFor = null;
    for (const button of this.grid.querySelectorAll('button.frame')) {
      button.setAttribute('aria-pressed', String(Number(button.dataset.frameId) === frameId));
    }
    this.app.tick();
  }

  async showDetail(frame) {
    if (!frame) {
      this.detail.hidden = true;
      return;
    }
    if (this.detail.dataset.frame !== String(frame.id)) this.buildDetail(frame);
    const d = this.d;
    setText(d.title, `Frame ${frame.frameIndex}`);
    setText(d.state, FRAME_STATUS[frame.frameStatus] ?? frame.frameStatus);
    setText(d.node, frame.nodeName || '–');
    setText(d.started, dateTime(frame.startTime));
    setText(d.ended, dateTime(frame.endTime));
    setText(d.time, frame.frameStatus === 2 ? `${Math.round(frame.progress)}% so far` : duration(frame.frameExecuteTime));
    setText(d.attempts, frame.attempts);
    setText(d.usage, frame.averageCpu === null ? '–' : `${percent(frame.averageCpu)} CPU, ${bytes(frame.averageMemory)}`);
    setText(d.errorText, frame.errorMessage || '–');
    d.rerender.disabled = !RERENDERABLE.includes(frame.frameStatus) || !this.app.me.rules.recommit.includes(this.task.taskStatus);
    this.detail.hidden = false;
    const key = `${frame.frameStatus}`;
    if (frame.frameStatus === 4 && this.shownThumbs !== key) {
      this.shownThumbs = key;
      const paths = await call(API.thumbnails, { id: frame.id });
      d.thumbs.replaceChildren(...(paths.length ? paths.map((path) => h('img', {
        src: `/web/thumbnails${path}`, alt: `Thumbnail of frame ${frame.frameIndex}`, class: 'thumb',
      })) : [h('p', { class: 'hint' }, 'No thumbnail: the outputs of this frame are not images the farm can preview.')]));
    } else if (frame.frameStatus !== 4 && this.shownThumbs !== key) {
      this.shownThumbs = key;
      d.thumbs.replaceChildren(h('p', { class: 'hint' }, 'Thumbnails appear when the frame is done.'));
    }
    if (this.logFor !== key || frame.frameStatus === 2) {
      this.logFor = key;
      const log = await call(API.log, { taskId: this.id, frameId: frame.id, tail: 200 });
      const atEnd = d.log.scrollTop + d.log.clientHeight >= d.log.scrollHeight - 4;
      setText(d.log, log.lines.length ? log.lines.join('\n') : '(no log lines yet)');
      setText(d.logInfo, log.totalLines > log.lines.length ? `last ${log.lines.length} of ${log.totalLines} lines` : `${log.totalLines} lines`);
      if (atEnd) d.log.scrollTop = d.log.scrollHeight;
    }
  }

  buildDetail(frame) {
    this.detail.dataset.frame = String(frame.id);
    const facts = h('dl', { class: 'facts' });
    this.d = {
      title: h('h2', { id: 'frame-title' }),
      state: field(facts, 'State'), node: field(facts, 'Node'), started: field(facts, 'Started'),
      ended: field(facts, 'Ended'), time: field(facts, 'Render time'), attempts: field(facts, 'Attempts'),
      usage: field(facts, 'Average use'), errorText: field(facts, 'Error'),
      thumbs: h('div', { class: 'thumbs' }),
      log: h('pre', { class: 'log', tabindex: '0', 'aria-label': `Render log of frame ${frame.frameIndex}` }),
      logInfo: h('span', { class: 'hint' }),
      rerender: h('button', { type: 'button', onclick: () => this.run(`Frame ${frame.frameIndex} re-render`,
        API.recommitFrames, { taskId: this.id, ids: [frame.id], status: RERENDERABLE }) }, 'Re-render this frame'),
    };
    const d = this.d;
    this.detail.replaceChildren(h('div', { class: 'title-row' }, d.title, d.rerender), h('div', { class: 'detail-grid' },
      h('div', {}, facts, h('h3', {}, 'Thumbnail'), d.thumbs),
      h('div', {}, h('h3', {}, 'Log ', d.logInfo), d.log)));
  }
}
