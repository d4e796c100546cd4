// Files in messages: uploads from the composer (button, drag and drop, paste) with progress,
// cancel and retry, checked against the server's limits before anything is sent; a message's
// files shown as thumbnails (a click opens the full image in a lightbox) or as cards (type,
// name, size; a click downloads).
//
// Files come from /api/v1/files/... on this origin. The server serves them with a sandboxing
// CSP, nosniff and, for anything but PNG, JPEG, GIF and WebP, as an attachment, so an uploaded
// HTML page or SVG never runs as this app. The client adds to that: only those four types are
// ever put in an <img>, and nothing of a file is ever read as markup here.

import { api, ApiError, describe, refresh } from './api.js';
import { h, icon, reconcile } from './dom.js';
import { openDialog } from './dialogs.js';

/** INLINE are the image types shown as images; everything else is a card. */
const INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const THUMB_BOX = 240;

let limits = null;
/** fileLimits resolves to the server's limits (GET /files/limits), asked once. */
export function fileLimits() {
  if (!limits) {
    limits = api.fileLimits().catch(() => {
      limits = null;
      return null;
    });
  }
  return limits;
}

/**
 * formatSize says a byte count the way file managers do: 12 KB, 3.4 MB (binary units, so that
 * the 25 MiB limit reads "25 MB").
 */
export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u += 1;
  } while (v >= 1024 && u < units.length - 1);
  return `${v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** limitsText is one sentence of the limits, shown before an upload. */
export function limitsText(l) {
  if (!l) return 'Attach files';
  return `Up to ${formatSize(l.max_file_bytes)} per file, ${l.max_files_per_message} files per message`;
}

/** kindOf is a short label of a content type (PDF, ZIP, TXT...). */
function kindOf(f) {
  const ext = (f.name.match(/\.([A-Za-z0-9]{1,5})$/) || [])[1];
  if (ext) return ext.toUpperCase();
  return (f.content_type.split(';')[0].split('/')[1] || 'file').slice(0, 5).toUpperCase();
}

/**
 * uploadFile posts one file into a chat with XMLHttpRequest (fetch has no upload progress).
 * onProgress gets 0..1. Returns {promise, abort}; the promise resolves to the stored file and
 * rejects with an ApiError (status 0 when aborted or offline). A 401 refreshes the session
 * and tries once more.
 */
export function uploadFile(chatId, file, onProgress) {
  let xhr = null;
  let aborted = false;
  const once = () => new Promise((resolve, reject) => {
    xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/chats/${chatId}/files`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
    };
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch { /* not JSON */ }
      if (xhr.status === 201 && data?.file) resolve(data.file);
      else reject(new ApiError(xhr.status, data || { detail: xhr.statusText }));
    };
    xhr.onerror = () => reject(new ApiError(0, { detail: 'Cannot reach the server. Check your connection.' }));
    xhr.onabort = () => reject(new ApiError(0, { code: 'aborted', detail: 'Cancelled.' }));
    const form = new FormData();
    form.append('file', file, file.name || 'pasted');
    xhr.send(form);
  });
  const promise = (async () => {
    const started = Date.now();
    try {
      return await once();
    } catch (err) {
      if (aborted || !(err instanceof ApiError) || err.status !== 401 || !(await refresh(started))) throw err;
      onProgress(0);
      return once();
    }
  })();
  return {
    promise,
    abort() {
      aborted = true;
      xhr?.abort();
    },
  };
}

let seq = 0;

/**
 * UploadTray holds the uploads of one chat's draft: each is uploading (with progress and
 * Cancel), done (the stored file, sent with the next message) or failed (its reason, with
 * Retry when trying again can help, and Remove). onChange is called on every change.
 */
export class UploadTray {
  constructor(chatId, onChange) {
    this.chatId = chatId;
    this.items = [];
    this.onChange = onChange;
  }

  async add(files) {
    const l = await fileLimits();
    for (const file of files) {
      const it = { key: ++seq, file, state: 'uploading', progress: 0, error: '', retry: false, result: null, job: null };
      this.items.push(it);
      // A refused file (no Retry) goes with no message: only the others count.
      if (l && this.items.filter((x) => x.state !== 'failed' || x.retry).length > l.max_files_per_message) {
        this.fail(it, `A message may carry at most ${l.max_files_per_message} files.`, false);
      } else if (l && file.size > l.max_file_bytes) {
        this.fail(it, `Too large: ${formatSize(file.size)} (at most ${formatSize(l.max_file_bytes)}).`, false);
      } else if (file.size === 0) {
        this.fail(it, 'The file is empty.', false);
      } else {
        this.start(it);
      }
    }
    this.onChange();
  }

  fail(it, error, retry) {
    it.state = 'failed';
    it.error = error;
    it.retry = retry;
  }

  start(it) {
    it.state = 'uploading';
    it.progress = 0;
    it.error = '';
    it.job = uploadFile(this.chatId, it.file, (p) => {
      it.progress = p;
      this.onChange();
    });
    it.job.promise.then((f) => {
      if (!this.items.includes(it)) return;
      it.state = 'done';
      it.result = f;
      this.onChange();
    }, (err) => {
      if (!this.items.includes(it)) return;
      // A refusal for the file itself (too large, a quota) will not pass on a retry.
      const final = err instanceof ApiError && [413, 422].includes(err.status);
      this.fail(it, describe(err), !final);
      this.onChange();
    });
  }

  remove(it) {
    it.job?.abort();
    this.items = this.items.filter((x) => x !== it);
    this.onChange();
  }

  retry(it) {
    this.start(it);
    this.onChange();
  }

  get busy() {
    return this.items.some((it) => it.state === 'uploading');
  }

  /** done are the stored files, in the order they were added. */
  get done() {
    return this.items.filter((it) => it.state === 'done').map((it) => it.result);
  }

  /** takeDone removes the stored files (they went with a message) and returns them. */
  takeDone() {
    const files = this.done;
    this.items = this.items.filter((it) => it.state !== 'done');
    this.onChange();
    return files;
  }

  /**
   * render draws the tray into el, each upload keyed: a progress tick moves its bar alone and a
   * row is drawn again only when its state changes, so a focused button stays (a screen reader
   * hears no row again: the tray is a live region). A row that goes, or is drawn again, with the
   * focus in it hands the focus to the next row's button, else to fallback (the composer).
   */
  render(el, fallback) {
    el.hidden = this.items.length === 0;
    const focusIn = el.contains(document.activeElement) ? document.activeElement.closest('.upload') : null;
    reconcile(el, this.items.map((it) => ({
      key: String(it.key),
      create: () => this.drawRow(h('div', { 'data-testid': 'upload' }), it),
      update: (row) => this.drawRow(row, it),
    })));
    if (!focusIn || el.contains(document.activeElement)) return;
    const row = focusIn.isConnected ? focusIn : null;
    const next = row || [...el.children].find((r) => Number(r.dataset.key) > Number(focusIn.dataset.key)) || el.lastElementChild;
    const btn = next?.querySelector('button:last-of-type');
    if (btn) btn.focus();
    else fallback?.();
  }

  /** drawRow brings row up to date with it: its bar alone while the state is the same. */
  drawRow(row, it) {
    const sig = `${it.state}|${it.error}|${it.retry}`;
    if (row.sig === sig) {
      row.querySelector('progress')?.setAttribute('value', String(Math.round(it.progress * 100)));
      return row;
    }
    row.sig = sig;
    row.className = `upload ${it.state}`;
    row.dataset.state = it.state;
    const name = it.file.name || 'pasted file';
    const kids = [
      h('span', { class: 'up-name', text: name }),
      h('span', { class: 'up-size', text: formatSize(it.file.size) }),
    ];
    if (it.state === 'uploading') {
      kids.push(h('progress', { max: '100', value: String(Math.round(it.progress * 100)), 'aria-label': `Uploading ${name}` }),
        h('button', { type: 'button', class: 'link', text: 'Cancel', 'aria-label': `Cancel the upload of ${name}`, 'data-testid': 'upload-cancel', onclick: () => this.remove(it) }));
    } else if (it.state === 'done') {
      kids.push(h('span', { class: 'up-ok', text: 'Ready' }),
        h('button', { type: 'button', class: 'icon-btn small', 'aria-label': `Remove ${name}`, title: 'Remove', onclick: () => this.remove(it) }, icon('close')));
    } else {
      kids.push(h('span', { class: 'up-error', role: 'alert', text: it.error }));
      if (it.retry) kids.push(h('button', { type: 'button', class: 'link', text: 'Retry', 'aria-label': `Retry the upload of ${name}`, 'data-testid': 'upload-retry', onclick: () => this.retry(it) }));
      kids.push(h('button', { type: 'button', class: 'icon-btn small', 'aria-label': `Remove ${name}`, title: 'Remove', onclick: () => this.remove(it) }, icon('close')));
    }
    row.replaceChildren(...kids);
    return row;
  }
}

/** fitBox scales w × h to fit a square of side box, never up. */
function fitBox(w, h, box) {
  if (!w || !h) return [box, box];
  const k = Math.min(1, box / Math.max(w, h));
  return [Math.max(1, Math.round(w * k)), Math.max(1, Math.round(h * k))];
}

/**
 * thumbImg is an image's thumbnail. It may still be being made when the message arrives (the
 * server answers 503 then): it is asked again a few times before the image is shown as a card.
 */
function thumbImg(f, onGiveUp) {
  const [w, hh] = fitBox(f.width, f.height, THUMB_BOX);
  const img = h('img', { src: f.thumbnail_url, alt: f.name, width: String(w), height: String(hh), loading: 'lazy', decoding: 'async' });
  let tries = 0;
  img.addEventListener('error', () => {
    tries += 1;
    if (tries > 6) {
      onGiveUp();
      return;
    }
    setTimeout(() => {
      if (img.isConnected) img.src = `${f.thumbnail_url}?try=${tries}`;
    }, 500 * tries);
  });
  return img;
}

/** lightbox shows an image whole, with its name and a download link. */
export function lightbox(f) {
  const img = h('img', { class: 'lightbox-img', src: f.url, alt: f.name });
  openDialog({
    title: f.name,
    className: 'lightbox',
    testid: 'lightbox',
    content: [img, h('p', { class: 'lightbox-foot' },
      h('span', { text: `${f.width} × ${f.height} · ${formatSize(f.size)}` }),
      h('a', { href: f.url, download: f.name, class: 'link', text: 'Download' }))],
  });
}

function fileCard(f) {
  return h('a', { class: 'file-card', href: f.url, download: f.name, 'data-testid': 'file-card', title: `Download ${f.name}` },
    h('span', { class: 'file-kind', 'aria-hidden': 'true' }, icon('file'), h('span', { text: kindOf(f) })),
    h('span', { class: 'file-text' },
      h('span', { class: 'file-name', text: f.name }),
      h('span', { class: 'file-meta', text: `${formatSize(f.size)} · ${kindOf(f)}` })),
    icon('download'));
}

/** renderFiles shows a message's files: images as thumbnails, the others as cards. */
export function renderFiles(files) {
  if (!files?.length) return null;
  return h('div', { class: 'files', 'data-testid': 'message-files' }, files.map((f) => {
    if (!f.id) return h('span', { class: 'file-card pending', text: f.name }); // not stored yet
    if (INLINE.has(f.content_type) && f.thumbnail_url) {
      const btn = h('button', { type: 'button', class: 'file-thumb', 'aria-label': `Open the image ${f.name}`, 'data-testid': 'file-thumb', onclick: () => lightbox(f) });
      btn.append(thumbImg(f, () => btn.replaceWith(fileCard(f))));
      return btn;
    }
    return fileCard(f);
  }));
}
