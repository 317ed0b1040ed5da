/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/** A job's progress as a labelled bar: queue place, what is being computed, done/total, ETA. */
import { jobErrorMessage, type Job } from './api.ts';
import { formatSeconds, h, ordinal } from './dom.ts';

export class ProgressView {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly bar: HTMLElement;
  private readonly fill: HTMLElement;
  private readonly detail: HTMLElement;
  private readonly warnings: HTMLUListElement;

  /** `name` labels the bar for screen readers ("Render progress"). */
  constructor(name: string) {
    this.fill = h('div', { class: 'progress-fill' });
    this.bar = h('div', { class: 'progress-bar', role: 'progressbar', 'aria-label': name, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 }, this.fill);
    this.status = h('p', { class: 'progress-status', role: 'status', 'aria-live': 'polite' });
    this.detail = h('p', { class: 'progress-detail' });
    this.warnings = h('ul', { class: 'progress-warnings', 'aria-label': 'Notes' });
    this.root = h('div', { class: 'progress', hidden: true }, this.status, this.bar, this.detail, this.warnings);
  }

  show(job: Job): void {
    this.root.hidden = false;
    this.root.dataset.state = job.state;
    const { done, total, label, etaSeconds } = job.progress ?? { done: 0, total: 0, label: '' };
    const share = total > 0 ? Math.max(0, Math.min(1, done / total)) : job.state === 'done' ? 1 : 0;
    this.fill.style.width = `${(share * 100).toFixed(1)}%`;
    this.bar.setAttribute('aria-valuenow', String(Math.round(share * 100)));
    this.bar.classList.toggle('indeterminate', job.state === 'queued' || (job.state === 'running' && total === 0));
    let status: string;
    switch (job.state) {
      case 'queued':
        status = queuedStatus(job);
        break;
      case 'running':
        status = label !== '' ? capitalise(label) : 'Working…';
        break;
      case 'done':
        status = label !== '' ? `Done: ${label}` : 'Done';
        break;
      case 'cancelled':
        status = 'Cancelled';
        break;
      default:
        status = `Failed: ${jobErrorMessage(job)}`;
    }
    this.status.textContent = status;
    const parts: string[] = [];
    if (total > 0 && job.state !== 'queued' && job.state !== 'done') parts.push(`${Math.floor(share * 100)}%`);
    if (job.state === 'running' && etaSeconds !== undefined && Number.isFinite(etaSeconds)) {
      parts.push(etaSeconds < 1 ? 'almost done' : `about ${formatSeconds(etaSeconds)} left`);
    }
    if (job.state === 'queued' && job.waitSeconds !== undefined && Number.isFinite(job.waitSeconds)) {
      parts.push(job.waitSeconds < 1 ? 'starts in a moment' : `starts in about ${formatSeconds(job.waitSeconds)}`);
    }
    this.detail.textContent = parts.join(' · ');
    this.bar.setAttribute('aria-valuetext', [status, ...parts].join(', '));
    const notes = Array.isArray(job.warnings) ? job.warnings : [];
    if (notes.length !== this.warnings.children.length) this.warnings.replaceChildren(...notes.map((note) => h('li', {}, note)));
    this.warnings.hidden = notes.length === 0;
  }

  hide(): void {
    this.root.hidden = true;
  }
}

const KIND_NAMES: Record<string, string> = { previews: 'previews', render: 'a render', model: 'loading a model' };

/** "Waiting: 2nd in the queue, after a render (running, about 40 s left) and previews". */
export function queuedStatus(job: Job): string {
  const place = job.position > 0 ? `${ordinal(job.position)} in the queue` : 'in the queue';
  const ahead = job.ahead ?? [];
  if (ahead.length === 0) return job.position > 1 ? `Waiting: ${place} (another job runs first)` : 'Waiting to start…';
  const names = ahead.map((entry) => {
    const name = KIND_NAMES[entry.kind] ?? entry.kind;
    if (entry.state !== 'running') return name;
    return entry.etaSeconds !== undefined && Number.isFinite(entry.etaSeconds) ? `${name} (running, about ${formatSeconds(entry.etaSeconds)} left)` : `${name} (running)`;
  });
  const list =
    names.length === 1 ? names[0]! : names.length > 3 ? `${names[0]!}, ${names[1]!} and ${names.length - 2} more jobs` : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;
  return `Waiting: ${place}, after ${list}`;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
