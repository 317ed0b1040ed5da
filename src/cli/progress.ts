/** Renders library events on the terminal: progress bars on stderr, warnings, a quiet mode. */
import cliProgress from 'cli-progress';
import type { Reporter } from '../film/progress.ts';

export type { Reporter };


/**
 * A reporter writing to stderr (stdout stays free for `--json`). Bars are drawn only on a TTY;
 * elsewhere only warnings and info lines appear.
 */
export function createReporter(options: { quiet: boolean }): Reporter {
  const stream = process.stderr;
  let bar: cliProgress.SingleBar | undefined;
  let done = 0;
  let stepBar = false;
  const write = (line: string) => {
    if (bar !== undefined && stream.isTTY) stream.write('\n');
    stream.write(`${line}\n`);
  };
  return {
    listener(event) {
      if (event.type === 'warning') write(`warning: ${event.message}`);
      else if (event.type === 'step' && bar !== undefined && stepBar) bar.update(++done);
    },
    engineListener(event) {
      if (event.type === 'warning') write(`warning: ${event.message}`);
      else if (event.type === 'budget-stop') {
        write(`time budget of ${event.budgetSeconds} s reached after ${event.elapsedSeconds.toFixed(1)} s; ${event.branchesSkipped} planned branches skipped`);
      } else if (event.type === 'progress' && bar !== undefined) {
        bar.setTotal(event.unetEvaluationsTotal);
        bar.update(event.unetEvaluationsDone, { detail: `branch ${event.branchesDone}/${event.branchesTotal}` });
      }
    },
    updateBar(value, total, detail) {
      if (bar === undefined) return;
      if (total !== undefined) bar.setTotal(total);
      bar.update(value, detail !== undefined ? { detail } : {});
    },
    startBar(label, total, barOptions = {}) {
      done = 0;
      stepBar = barOptions.countSteps ?? label === 'denoising';
      if (options.quiet || !stream.isTTY) return;
      bar = new cliProgress.SingleBar(
        { format: `${label.padEnd(12)} [{bar}] {value}/{total} {detail} | {eta_formatted} left`, stream, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { detail: '' });
    },
    stopBar() {
      bar?.stop();
      bar = undefined;
    },
    warn: (message) => write(`warning: ${message}`),
    info: (message) => {
      if (!options.quiet) write(message);
    },
  };
}
