// The rayfarm dashboard: sign-in, a hash router (#/tasks, #/task/ID, #/workers), farm totals and polling.
// Every call goes to the farm's own API (the same routes as the signed Renderbus API) under /web/api,
// authenticated by the session cookie the server signed at sign-in.

import { API, ApiError, HEADERS, call, get, hooks } from './api.js';
import { TaskView } from './task.js';
import { TasksView } from './tasks.js';
import { FRAME_STATUS, TASK_STATUS, h, setText } from './ui.js';
import { WorkersView } from './workers.js';

const POLL_MS = 1000; // a few small JSON answers a second per open page

function summaryLine(label, parts) {
  const shown = parts.filter(([, n]) => n > 0).map(([name, n]) => `${n} ${name}`);
  return h('span', { class: 'total' }, h('strong', {}, `${label}: `), shown.length ? shown.join(' · ') : 'none');
}

class App {
  constructor() {
    this.main = document.getElementById('main');
    this.header = document.getElementById('top');
    this.totals = document.getElementById('totals');
    this.offline = document.getElementById('offline');
    this.me = null;
    this.view = null;
    this.timer = null;
    document.getElementById('signout').addEventListener('click', () => this.signOut('/web/signout'));
    document.getElementById('signout-everywhere').addEventListener('click', () => this.signOut('/web/signout-everywhere'));
    document.getElementById('skip').addEventListener('click', (event) => {
      event.preventDefault();
      this.main.focus();
    });
    window.addEventListener('hashchange', () => this.route());
    document.addEventListener('visibilitychange', () => { if (!document.hidden) this.tick(); });
  }

  async start() {
    try {
      this.me = await get('/web/me');
    } catch (error) {
      this.signedOut('');
      if (error.code !== 602) setText(document.getElementById('signin-error'), error.message);
      return;
    }
    this.signedIn();
  }

  signedIn() {
    this.header.hidden = false;
    this.totals.hidden = false;
    setText(document.getElementById('who'), `${this.me.userName}${this.me.isAdmin ? ' (admin)' : ''}`);
    this.route();
  }

  signedOut(message) {
    const wasSignedIn = Boolean(this.me);
    clearTimeout(this.timer);
    this.timer = null;
    this.view = null;
    this.me = null;
    this.header.hidden = true;
    this.totals.hidden = true;
    this.offline.hidden = true;
    this.showSignIn(wasSignedIn ? message : '');
  }

  showSignIn(message) {
    if (this.main.querySelector('#signin')) return;
    const error = h('p', { class: 'error', role: 'alert', id: 'signin-error' }, message || '');
    const form = h('form', { id: 'signin', class: 'signin card', 'aria-labelledby': 'signin-title' },
      h('h1', { id: 'signin-title' }, 'Sign in to rayfarm'),
      h('p', {}, 'Use the access id and access key that ', h('code', {}, 'rayfarm up'), ' printed (or ',
        h('code', {}, 'rayfarm user create'), '). The key is checked by the farm and never kept in this browser.'),
      h('label', { for: 'access-id' }, 'Access id'),
      h('input', { id: 'access-id', name: 'accessId', autocomplete: 'off', spellcheck: 'false', required: true }),
      h('label', { for: 'access-key' }, 'Access key'),
      h('input', { id: 'access-key', name: 'accessKey', type: 'password', autocomplete: 'off', required: true }),
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
      error);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const accessId = form.accessId.value.trim();
      const accessKey = form.accessKey.value.trim();
      setText(error, '');
      try {
        const response = await fetch('/web/signin', {
          method: 'POST', headers: HEADERS, body: JSON.stringify({ accessId, accessKey }), credentials: 'same-origin',
        });
        const payload = await response.json();
        if (payload.code !== 200) throw new ApiError(payload.code, payload.message);
        form.reset();
        this.me = await get('/web/me');
        if (!location.hash.startsWith('#/')) location.hash = '#/tasks';
        this.main.replaceChildren();
        this.signedIn();
      } catch (failure) {
        setText(error, failure.message);
        form.accessKey.focus();
      }
    });
    this.main.replaceChildren(form);
    form.accessId.focus();
  }

  async signOut(path) {
    await fetch(path, { method: 'POST', headers: HEADERS, body: '{}', credentials: 'same-origin' });
    this.signedOut('');
  }

  route() {
    if (!this.me) return;
    const [name, arg] = location.hash.replace(/^#\/?/, '').split('/');
    const views = { tasks: TasksView, task: TaskView, workers: WorkersView };
    const View = views[name] || TasksView;
    const section = View === WorkersView ? 'workers' : 'tasks';
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    this.view = new View(this, arg);
    this.main.replaceChildren(this.view.root);
    document.title = `${this.view.title} · rayfarm`;
    this.tick();
  }

  // Refresh the view and the totals now, then again every POLL_MS while the page is visible. One refresh
  // at a time: a tick asked for during one runs right after it.
  async tick() {
    if (this.busy) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    const view = this.view;
    if (!view || !this.me) return;
    this.busy = true;
    try {
      if (!document.hidden) await Promise.all([view.refresh(), this.refreshTotals()]);
      this.offline.hidden = true;
    } catch (error) {
      if (error instanceof ApiError) {
        if (error.code !== 602) view.problem?.(error.message);
      } else {
        this.offline.hidden = false; // the request itself failed: the server is down or unreachable
      }
    } finally {
      this.busy = false;
    }
    if (this.again) {
      this.again = false;
      this.tick();
    } else if (this.view === view) {
      this.timer = setTimeout(() => this.tick(), POLL_MS);
    }
  }

  async refreshTotals() {
    const summary = await call(API.summary);
    const t = summary.tasks;
    const f = summary.frames;
    const w = summary.workers;
    const n = (counts, ...codes) => codes.reduce((sum, code) => sum + (counts[code] || 0), 0);
    this.totals.replaceChildren(
      h('span', { class: 'total-scope' }, summary.user.isAdmin ? 'Whole farm' : 'Your tasks'),
      summaryLine('Tasks', [[TASK_STATUS[5].toLowerCase(), n(t, 5)], ['waiting', n(t, 0, 8)], ['paused', n(t, 40)],
        ['stopped', n(t, 10, 20, 23)], ['done', n(t, 25, 30)], ['failed', n(t, 45)]]),
      summaryLine('Frames', [[FRAME_STATUS[2].toLowerCase(), n(f, 2)], ['waiting', n(f, 1, 6, 8)],
        ['done', n(f, 4)], ['failed', n(f, 5, 11)], ['stopped', n(f, 3)]]),
      summaryLine('Nodes', [['busy', w.busy], ['idle', w.idle], ['lost', w.lost], ['offline', w.offline || 0],
        ['disabled', w.disabled], ['draining', w.draining]]));
  }
}

const app = new App();
hooks.signedOut = (message) => app.signedOut(message);
app.start();
