// Automatic read marks: a message counts as read once it is visible in the message pane while
// the window is active (the page is visible and has focus). The tracker reports the highest
// visible seq; the client turns that into a `read` frame (or POST /read when offline).

/** windowActive reports whether the user can be looking at the page now. */
export function windowActive() {
  return document.visibilityState === 'visible' && document.hasFocus();
}

export class ReadTracker {
  /** onRead(seq) is called with the highest visible seq whenever the user may have seen it. */
  constructor(root, onRead) {
    this.onRead = onRead;
    this.visible = new Set();
    this.observed = new WeakSet();
    this.io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const seq = Number(e.target.dataset.seq);
        if (!seq) continue;
        const rootH = e.rootBounds?.height || root.clientHeight || 1;
        // Mostly visible, or a tall message filling a good part of the pane.
        const seen = e.isIntersecting && (e.intersectionRatio >= 0.5 || e.intersectionRect.height >= rootH * 0.4);
        if (seen) this.visible.add(seq);
        else this.visible.delete(seq);
      }
      this.check();
    }, { root, threshold: [0, 0.25, 0.5, 0.75, 1] });
    this.onActivity = () => this.check();
    window.addEventListener('focus', this.onActivity);
    document.addEventListener('visibilitychange', this.onActivity);
  }

  /** observe starts watching message elements that carry a data-seq. */
  observe(elements) {
    for (const el of elements) {
      if (!el.dataset.seq || this.observed.has(el)) continue;
      this.observed.add(el);
      this.io.observe(el);
    }
  }

  /** reset forgets everything (another chat was opened). */
  reset() {
    this.io.disconnect();
    this.visible.clear();
    this.observed = new WeakSet();
  }

  check() {
    if (!windowActive() || !this.visible.size) return;
    this.onRead(Math.max(...this.visible));
  }

  destroy() {
    this.reset();
    window.removeEventListener('focus', this.onActivity);
    document.removeEventListener('visibilitychange', this.onActivity);
  }
}
