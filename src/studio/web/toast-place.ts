/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Where the messages (toasts) go: at the bottom of the window, or at the top below the sticky
 * header when at the bottom they would cover what matters now — the focused control, the film
 * player (its controls are at its bottom), the Cancel button of a render. On a phone they take
 * at most a quarter of the screen (CSS: max-height 25vh) and at most two are kept.
 */

const AVOID = ['video.player', '#render-cancel:not([hidden])', '.progress:not([hidden]) .progress-bar'];
const MARGIN = 12;

function overlap(a: DOMRect | { top: number; bottom: number; left: number; right: number }, b: DOMRect): number {
  const width = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const height = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  return width > 0 && height > 0 ? width * height : 0;
}

/** Most toasts kept at once (fewer on a narrow screen). */
export function maxToasts(): number {
  return window.matchMedia('(max-width: 640px)').matches ? 2 : 4;
}

/** Keeps `stack` (the fixed container of the toasts) off the things to avoid. */
export function setupToastPlacement(stack: HTMLElement): () => void {
  let scheduled = false;
  const place = () => {
    scheduled = false;
    if (stack.querySelector('.toast') === null) return;
    const height = stack.getBoundingClientRect().height;
    const box = stack.getBoundingClientRect();
    const headerHeight = Number.parseFloat(getComputedStyle(document.documentElement).getPropertyValue('--header-height')) || 0;
    const header = document.querySelector<HTMLElement>('.topbar');
    const headerShown = header !== null && getComputedStyle(header).position === 'sticky' ? headerHeight : 0;
    const bottom = { top: window.innerHeight - MARGIN - height, bottom: window.innerHeight - MARGIN, left: box.left, right: box.right };
    const top = { top: headerShown + MARGIN, bottom: headerShown + MARGIN + height, left: box.left, right: box.right };
    const avoid: DOMRect[] = [];
    const focused = document.activeElement;
    if (focused instanceof HTMLElement && focused !== document.body && !stack.contains(focused)) avoid.push(focused.getBoundingClientRect());
    for (const selector of AVOID) for (const element of document.querySelectorAll<HTMLElement>(selector)) avoid.push(element.getBoundingClientRect());
    const cost = (rect: typeof top) => avoid.reduce((sum, other) => sum + overlap(rect, other), 0);
    const atTop = cost(bottom) > 0 && cost(top) < cost(bottom);
    stack.classList.toggle('at-top', atTop);
    stack.style.top = atTop ? `${top.top}px` : '';
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(place);
  };
  window.addEventListener('scroll', schedule, { passive: true });
  window.addEventListener('resize', schedule);
  document.addEventListener('focusin', schedule);
  new MutationObserver(schedule).observe(stack, { childList: true, subtree: true });
  return schedule;
}
