// A task's previews: its contact sheet (every frame as a thumbnail with its number) and its preview movie, an
// H.264 MP4 played by a <video> from the farm's URL (the session cookie authorises it). The farm makes both
// when the task ends; "Make" asks for one now (the frames done so far, while the task renders).

import { h, setText } from './ui.js';

const FINISHED = [25, 30]; // done, done with failures: the farm makes the previews by itself

export class Previews {
  constructor(taskId) {
    this.taskId = taskId;
    this.version = { movie: null, sheet: null };
    this.sheetImage = h('img', { class: 'sheet', alt: `Contact sheet of task ${taskId}: every frame with its number` });
    this.sheetLink = h('a', { href: `/web/tasks/${taskId}/contact-sheet.jpg`, target: '_blank', rel: 'noopener' },
      this.sheetImage);
    this.sheetNote = h('p', { class: 'hint' });
    this.sheetButton = h('button', { type: 'button', onclick: () => this.load('sheet') }, 'Make the contact sheet');
    this.video = h('video', { class: 'movie', controls: true, preload: 'metadata', playsinline: true,
      'aria-label': `Preview movie of task ${taskId}` });
    this.movieNote = h('p', { class: 'hint', 'aria-live': 'polite' });
    this.movieButton = h('button', { type: 'button', onclick: () => this.load('movie') }, 'Make the preview movie');
    this.video.addEventListener('loadeddata', () => setText(this.movieNote, this.note('movie')));
    this.video.addEventListener('error', () => {
      if (this.video.getAttribute('src')) setText(this.movieNote, 'The preview movie could not be made or played; see the farm\'s log.');
    });
    this.sheetImage.addEventListener('load', () => setText(this.sheetNote, this.note('sheet')));
    this.root = h('section', { class: 'card previews', 'aria-labelledby': 'previews-title' },
      h('h2', { id: 'previews-title' }, 'Preview'),
      h('div', { class: 'preview-grid' },
        h('figure', {}, h('figcaption', {}, 'Preview movie'), this.video, this.movieNote, this.movieButton),
        h('figure', {}, h('figcaption', {}, 'Contact sheet'), this.sheetLink, this.sheetNote, this.sheetButton)));
    this.root.hidden = true;
  }

  note(kind) {
    const state = this.state?.[kind];
    if (!state) return '';
    const frames = `${state.frames} frame${state.frames === 1 ? '' : 's'}`;
    return state.current || this.asked?.[kind] ? `Of ${frames}.` : `Made before the last frames were rendered; make it again to see all ${frames}.`;
  }

  // The listing's preview state: show what is made; offer to make what is not (or is older than the frames).
  show(listing, task) {
    this.state = listing.previews;
    const frames = this.state.movie.frames;
    this.root.hidden = frames === 0;
    if (!frames) return;
    const first = listing.items.find((item) => item.image && item.thumbnail);
    if (first && !this.video.getAttribute('poster')) this.video.poster = `/web/thumbnails${first.thumbnail}`; // before it plays
    const finished = FINISHED.includes(task.taskStatus);
    for (const kind of ['movie', 'sheet']) {
      const state = this.state[kind];
      const button = kind === 'movie' ? this.movieButton : this.sheetButton;
      const note = kind === 'movie' ? this.movieNote : this.sheetNote;
      if (state.ready) this.use(kind, `${state.size}`);
      button.hidden = state.current;
      setText(button, state.ready ? `Make it again (${frames} frames)` : `Make it now (${frames} frames so far)`);
      if (!state.ready) setText(note, finished ? 'The farm is making it…' : 'Made when the task ends.');
      else if (!this.asked?.[kind]) setText(note, this.note(kind));
    }
  }

  // Point the element at the preview's URL; a new version (its size changed) is loaded again.
  use(kind, version) {
    if (this.version[kind] === version) return;
    this.version[kind] = version;
    const url = `/web/tasks/${this.taskId}/${kind === 'movie' ? 'preview.mp4' : 'contact-sheet.jpg'}?v=${encodeURIComponent(version)}`;
    if (kind === 'movie') this.video.src = url;
    else this.sheetImage.src = url;
  }

  // Ask the farm for a preview now: its URL makes it when it is missing or stale (this can take a while).
  load(kind) {
    this.asked = { ...this.asked, [kind]: true };
    setText(kind === 'movie' ? this.movieNote : this.sheetNote, `Making the ${kind === 'movie' ? 'preview movie' : 'contact sheet'}…`);
    (kind === 'movie' ? this.movieButton : this.sheetButton).hidden = true;
    this.use(kind, `now-${Date.now()}`);
  }
}
