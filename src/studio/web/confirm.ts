/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * A modal question with two answers, on the page's own <dialog> (keyboard and screen readers
 * handle it as a dialog; Escape answers "no"). Focus starts on the safe answer and returns to
 * where it was.
 */
import { h } from './dom.ts';

export interface ConfirmOptions {
  readonly title: string;
  readonly message: string;
  /** Label of the button that goes ahead ("Replace", "Delete"). */
  readonly confirm: string;
  /** Label of the button that keeps things as they are. Default "Cancel". */
  readonly cancel?: string;
  /** Marks the confirming button as destructive. */
  readonly danger?: boolean;
}

/** Resolves true when the user confirms, false when they cancel or press Escape. */
export function askConfirm(options: ConfirmOptions): Promise<boolean> {
  const previous = document.activeElement instanceof HTMLElement ? document.activeElement : undefined;
  return new Promise((answer) => {
    const yes = h('button', { type: 'button', class: options.danger === true ? 'danger' : 'primary', value: 'yes' }, options.confirm);
    const no = h('button', { type: 'button', class: 'subtle', value: 'no' }, options.cancel ?? 'Cancel');
    const dialog = h(
      'dialog',
      { class: 'confirm-dialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-message' },
      h('h2', { id: 'confirm-title' }, options.title),
      h('p', { id: 'confirm-message' }, options.message),
      h('div', { class: 'actions end' }, no, yes),
    );
    let settled = false;
    const settle = (value: boolean) => {
      if (settled) return;
      settled = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      previous?.focus({ preventScroll: true });
      answer(value);
    };
    yes.addEventListener('click', () => settle(true));
    no.addEventListener('click', () => settle(false));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      settle(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}
