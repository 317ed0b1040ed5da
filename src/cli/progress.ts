/** Renders library events on the terminal: progress bars on stderr, warnings, a quiet mode. */
import cliProgress from 'cli-progress';
import type { PipelineEvent } from '../pipeline/pipeline.ts';

export interface Reporter {
  /** Listener to hand to the library. */
  readonly listener: (event: PipelineEvent) => void;
  /** Starts a bar for `total` units of `label`. */
  startBar(label: string, total: number): void;
  stopBar(): void;
  warn(message: string): void;
  info(message: string): void;
}

/**
 * A reporter writing to stderr (stdout stays free for `--json`). Bars are drawn only on a TTY;
 * elsewhere only warnings and info lines appear.
 */
export function createReporter(options: { quiet: boolean }): Reporter {
  const stream = process.stderr;
  let bar: cliProgress.SingleBar | undefined;
  let done = 0;
  const write = (line: string) => {
    if (bar !== undefined && stream.isTTY) stream.write('\n');
    stream.write(`${line}\n`);
  };
  return {
    listener(event) {
      if (event.type === 'warning') write(`warning: ${event.message}`);
      else if (event.type === 'step' && bar !== undefined) bar.update(++done);
    },
    startBar(label, total) {
      done = 0;
      if (options.quiet || !stream.isTTY) return;
      bar = new cliProgress.SingleBar(
        { format: `${label.padEnd(12)} [{bar}] {value}/{total} | {eta_formatted} left`, stream, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
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
