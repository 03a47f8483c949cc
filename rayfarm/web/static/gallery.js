// A task's outputs: a gallery of its frames (thumbnails), a full-size viewer (←/→ for the previous/next frame,
// Escape closes), a download link for each file and one for all of them as a zip. Files come from the farm's
// /web/tasks/ID/ URLs, which the session cookie authorises.

import { API, call } from './api.js';
import { bytes, h, setText } from './ui.js';

export function fileUrl(taskId, name, download = false) {
  return `/web/tasks/${taskId}/outputs/${encodeURIComponent(name)}${download ? '?download=1' : ''}`;
}

function frameLabel(item) {
  return item.frame === null ? item.name : `Frame ${item.frame}`;
}

// Browsers show these inline; other images (EXR, TIFF...) are downloads only.
const VIEWABLE = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/bmp']);

export class Gallery {
  constructor(taskId) {
    this.taskId = taskId;
    this.items = [];
    this.shown = [];
    this.key = null;
    this.summary = h('span', { class: 'hint' });
    this.zip = h('a', { class: 'button', href: `/web/tasks/${taskId}/outputs.zip`, download: '' }, 'Download all (.zip)');
    this.grid = h('ul', { class: 'gallery', 'aria-label': 'Rendered frames' });
    this.others = h('ul', { class: 'files', 'aria-label': 'Other output files' });
    this.empty = h('p', { class: 'hint' }, 'No output yet: frames appear here as they are rendered.');
    this.viewer = new Viewer(this);
    this.root = h('section', { class: 'card outputs', 'aria-labelledby': 'outputs-title' },
      h('div', { class: 'title-row' }, h('h2', { id: 'outputs-title' }, 'Outputs'), this.summary, this.zip),
      this.empty, this.grid, this.others, this.viewer.root);
  }

  // Load the listing again when the task's frames changed (the key), else keep what is shown. ``ended``: the
  // task renders no more (no file is coming).
  async refresh(key, ended) {
    setText(this.empty, ended ? 'This task wrote no output files.' : 'No output yet: frames appear here as they are rendered.');
    if (key === this.key) return this.listing;
    const listing = await call(API.outputs, { taskId: this.taskId });
    this.key = key;
    this.show(listing);
    return listing;
  }

  show(listing) {
    this.listing = listing;
    // the same files as shown: nothing to rebuild (the images, the focus and the viewer stay as they are)
    const signature = JSON.stringify(listing.items.map((i) => [i.name, i.size, i.lastModify, i.thumbnail]));
    if (signature === this.signature) return;
    this.signature = signature;
    this.items = listing.items;
    this.shown = this.items.filter((item) => item.image && (item.thumbnail || VIEWABLE.has(item.contentType)));
    const others = this.items.filter((item) => !this.shown.includes(item));
    setText(this.summary, listing.total ? `${listing.total} file${listing.total === 1 ? '' : 's'}, ${bytes(listing.totalBytes)}` : '');
    this.zip.hidden = !listing.total;
    this.empty.hidden = listing.total > 0;
    this.grid.replaceChildren(...this.shown.map((item, index) => h('li', {},
      h('button', { type: 'button', class: 'shot', 'data-name': item.name, onclick: () => this.viewer.open(index),
        'aria-label': `${frameLabel(item)}: open ${item.name}` },
      h('img', { src: item.thumbnail ? `/web/thumbnails${item.thumbnail}` : fileUrl(this.taskId, item.name),
        alt: '', loading: 'lazy' })),
      h('span', { class: 'shot-label' }, frameLabel(item), ' ',
        h('a', { href: fileUrl(this.taskId, item.name, true), download: item.name,
          'aria-label': `Download ${item.name}` }, '↓')))));
    this.others.replaceChildren(...others.map((item) => h('li', {},
      h('a', { href: fileUrl(this.taskId, item.name, true), download: item.name }, item.name),
      h('span', { class: 'hint' }, ` ${bytes(item.size)}`))));
    this.viewer.refreshed();
  }
}

// The full-size viewer: a modal <dialog> showing the frame itself, fitted to the window (1:1 shows its real
// pixels); ←/→ (and the buttons) step through the frames, Escape closes it and its thumbnail gets the focus back.
class Viewer {
  constructor(gallery) {
    this.gallery = gallery;
    this.index = 0;
    this.image = h('img', { class: 'full', alt: '' });
    this.image.addEventListener('load', () => this.describe());
    this.actual = h('button', { type: 'button', 'aria-pressed': 'false', onclick: () => this.toggleSize(),
      title: 'Show the frame at its real size (1 image pixel = 1 screen pixel), or fitted to the window' }, '1:1');
    this.caption = h('p', { class: 'caption', id: 'viewer-caption' });
    this.download = h('a', { class: 'button' }, 'Download');
    this.previous = h('button', { type: 'button', onclick: () => this.step(-1), 'aria-label': 'Previous frame' }, '←');
    this.next = h('button', { type: 'button', onclick: () => this.step(1), 'aria-label': 'Next frame' }, '→');
    this.root = h('dialog', { class: 'viewer', 'aria-labelledby': 'viewer-caption' },
      h('div', { class: 'viewer-bar' }, this.previous, this.caption, this.next, this.actual, this.download,
        h('button', { type: 'button', class: 'close', onclick: () => this.root.close(), 'aria-label': 'Close' }, '✕')),
      h('div', { class: 'viewer-frame' }, this.image));
    this.root.addEventListener('keydown', (event) => {
      const moves = { ArrowLeft: -1, ArrowRight: 1, PageUp: -1, PageDown: 1 };
      if (event.key in moves) {
        event.preventDefault();
        this.step(moves[event.key]);
      } else if (event.key === 'Home' || event.key === 'End') {
        event.preventDefault();
        this.show(event.key === 'Home' ? 0 : this.gallery.shown.length - 1);
      }
    });
    this.root.addEventListener('close', () => {
      const name = this.gallery.shown[this.index]?.name;
      this.gallery.grid.querySelector(`button.shot[data-name="${CSS.escape(name ?? '')}"]`)?.focus();
    });
    // a click on the backdrop (outside the picture and its bar) closes it too
    this.root.addEventListener('click', (event) => { if (event.target === this.root) this.root.close(); });
  }

  open(index) {
    this.show(index);
    if (!this.root.open) this.root.showModal();
    this.next.focus();
  }

  step(by) {
    const count = this.gallery.shown.length;
    if (count) this.show((this.index + by + count) % count);
  }

  show(index) {
    const item = this.gallery.shown[index];
    if (!item) return;
    this.index = index;
    const taskId = this.gallery.taskId;
    this.image.src = fileUrl(taskId, item.name);
    this.image.alt = `${frameLabel(item)} of task ${taskId}`;
    this.describe();
    this.download.href = fileUrl(taskId, item.name, true);
    this.download.setAttribute('download', item.name);
  }

  describe() {
    const item = this.gallery.shown[this.index];
    if (!item) return;
    const loaded = this.image.complete && this.image.naturalWidth && this.image.src.endsWith(encodeURIComponent(item.name));
    const size = loaded ? ` · ${this.image.naturalWidth}×${this.image.naturalHeight}` : '';
    setText(this.caption, `${frameLabel(item)} · ${item.name}${size} · ${bytes(item.size)} · ${this.index + 1} of ${this.gallery.shown.length}`);
  }

  toggleSize() {
    const actual = this.image.classList.toggle('actual');
    this.actual.setAttribute('aria-pressed', String(actual));
  }

  // The listing changed while the viewer is open: stay on the same file (it may have been rendered again).
  refreshed() {
    if (!this.root.open) return;
    const name = this.image.src ? decodeURIComponent(this.image.src.split('/').pop().split('?')[0]) : null;
    const at = this.gallery.shown.findIndex((item) => item.name === name);
    this.show(at >= 0 ? at : Math.min(this.index, this.gallery.shown.length - 1));
  }
}
