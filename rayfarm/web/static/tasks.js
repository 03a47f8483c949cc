// The task list: state filters with counts, search by scene or id, server-side pages, live progress bars.

import { API, call, get } from './api.js';
import {
  TASK_STATUS, badge, dateTime, h, progressBar, setAttr, setText, syncChildren, timeLeft, updateBadge, updateProgress,
} from './ui.js';

const FILTERS = [
  ['All', []], ['Rendering', [5]], ['Waiting', [0, 8]], ['Paused', [40]], ['Stopped', [10, 20, 23]],
  ['Done', [25]], ['Done with failures', [30]], ['Failed', [45]], ['Abandoned', [35]],
];
const PAGE_SIZES = [25, 50, 100, 200];
const state = { filter: 0, keyword: '', page: 1, size: 50 }; // kept while the page is open

export class TasksView {
  constructor(app) {
    this.app = app;
    this.title = 'Tasks';
    this.filterButtons = FILTERS.map(([name], index) => h('button', {
      type: 'button', class: 'chip', 'aria-pressed': String(index === state.filter), 'data-filter': name,
      onclick: () => this.choose(index),
    }, h('span', {}, name), ' ', h('span', { class: 'count' }, '')));
    const search = h('input', {
      id: 'task-search', type: 'search', value: state.keyword, placeholder: 'shot010 or 42', autocomplete: 'off',
    });
    let pending;
    search.addEventListener('input', () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        state.keyword = search.value.trim();
        state.page = 1;
        this.app.tick();
      }, 250);
    });
    this.rows = h('tbody');
    this.empty = h('p', { class: 'empty', hidden: true });
    this.message = h('p', { class: 'error', role: 'alert' });
    this.pageText = h('span', { class: 'page-text', 'aria-live': 'polite' });
    this.previous = h('button', { type: 'button', onclick: () => this.turn(-1) }, '← Previous');
    this.next = h('button', { type: 'button', onclick: () => this.turn(1) }, 'Next →');
    const size = h('select', { id: 'page-size' }, PAGE_SIZES.map((n) => h('option', { value: n }, `${n} per page`)));
    size.value = String(state.size);
    size.addEventListener('change', () => {
      state.size = Number(size.value);
      state.page = 1;
      this.app.tick();
    });
    this.root = h('section', { class: 'tasks', 'aria-labelledby': 'tasks-title' },
      h('h1', { id: 'tasks-title' }, 'Tasks'),
      h('div', { class: 'toolbar' },
        h('div', { class: 'chips', role: 'group', 'aria-label': 'Show tasks by state' }, this.filterButtons),
        h('form', { role: 'search', class: 'search', onsubmit: (e) => e.preventDefault() },
          h('label', { for: 'task-search' }, 'Search scene or task id'), search)),
      this.message,
      h('table', { class: 'grid-table' },
        h('caption', { class: 'visually-hidden' }, 'Your tasks, newest first'),
        h('thead', {}, h('tr', {}, ['Task', 'Scene', 'State', 'Progress', 'Frames', 'Priority', 'Submitted']
          .map((name) => h('th', { scope: 'col' }, name)))),
        this.rows),
      this.empty,
      h('nav', { class: 'pager', 'aria-label': 'Task pages' }, this.previous, this.pageText, this.next,
        h('label', { for: 'page-size', class: 'visually-hidden' }, 'Tasks per page'), size));
  }

  choose(index) {
    state.filter = index;
    state.page = 1;
    this.filterButtons.forEach((button, i) => button.setAttribute('aria-pressed', String(i === index)));
    this.app.tick();
  }

  turn(step) {
    state.page = Math.max(1, state.page + step);
    this.app.tick();
  }

  problem(text) {
    setText(this.message, text);
  }

  async refresh() {
    const body = { pageNum: state.page, pageSize: state.size };
    if (FILTERS[state.filter][1].length) body.statusList = FILTERS[state.filter][1];
    if (state.keyword) body.searchKeyword = state.keyword;
    const [list, counts] = await Promise.all([call(API.taskList, body), get('/web/counts')]);
    if (list.pageCount && state.page > list.pageCount) {
      state.page = list.pageCount;
      return this.refresh();
    }
    setText(this.message, '');
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    FILTERS.forEach(([, codes], index) => {
      const n = codes.length ? codes.reduce((sum, code) => sum + (counts[code] || 0), 0) : total;
      setText(this.filterButtons[index].querySelector('.count'), n);
    });
    syncChildren(this.rows, list.items, (task) => task.id, (task) => this.makeRow(task), (tr, task) => this.updateRow(tr, task));
    this.empty.hidden = list.items.length > 0;
    setText(this.empty, state.keyword || state.filter ? 'No task matches; change the filter or the search.'
      : 'No tasks yet. Submit one with the Renderbus SDK or `rayfarm submit`.');
    const pages = Math.max(1, list.pageCount);
    setText(this.pageText, `Page ${list.pageNum} of ${pages} · ${list.total} task${list.total === 1 ? '' : 's'}`);
    this.previous.disabled = state.page <= 1;
    this.next.disabled = state.page >= pages;
  }

  makeRow(task) {
    const link = `#/task/${task.id}`;
    return h('tr', { 'data-task-id': task.id },
      h('td', {}, h('a', { href: link, class: 'task-id' }, String(task.id))),
      h('td', {}, h('a', { href: link, class: 'scene' }, '')),
      h('td', {}, badge(task.taskStatus, TASK_STATUS, 'ts')),
      h('td', {}, progressBar(`Progress of task ${task.id}`), h('span', { class: 'eta' })),
      h('td', { class: 'frames-cell' }),
      h('td', { class: 'num' }),
      h('td', {}));
  }

  updateRow(tr, task) {
    const cells = tr.children;
    setText(cells[1].firstChild, task.sceneName || '(no scene)');
    setAttr(cells[1].firstChild, 'title', task.projectName ? `Project ${task.projectName}` : null);
    updateBadge(cells[2].firstChild, task.taskStatus, TASK_STATUS, 'ts');
    updateProgress(cells[3].firstChild, task.progress);
    setText(cells[3].lastChild, timeLeft(task));
    const extra = [task.executingFrames && `${task.executingFrames} rendering`, task.failedFrames && `${task.failedFrames} failed`];
    setText(cells[4], `${task.doneFrames} / ${task.totalFrames} done${extra.filter(Boolean).map((x) => ` · ${x}`).join('')}`);
    setText(cells[5], task.taskUserLevel);
    setText(cells[6], dateTime(task.submitDate));
  }
}
