/** `latentblend worker`: one worker of the pool that renders films queued on Redis. */
import { Command, Option } from 'commander';
import { hostname } from 'node:os';
import { DEVICES } from '../runtime/onnx.ts';
import { PRESETS } from '../model/preset.ts';
import { parseQueueUrl, describeQueue } from '../queue/connection.ts';
import { integerIn } from './parse.ts';
import { createReporter } from './progress.ts';
import { DEFAULT_MODEL } from './model-source.ts';
import { loadForFilm } from './transition.ts';

interface WorkerFlags {
  queue: string;
  model: string;
  device: string;
  preset?: 'turbo' | 'standard';
  lpips?: string;
  concurrency: number;
  name?: string;
  lockDuration?: number;
  stalledInterval?: number;
  quiet: boolean;
}

export function workerCommand(signal: AbortSignal): Command {
  return new Command('worker')
    .description('Render queued films (`movie --queue`, `studio --queue`) as one worker of a pool sharing a Redis queue and a work folder.')
    .requiredOption('--queue <redis://HOST:PORT>', 'the Redis server of the pool (redis://[user:password@]HOST[:PORT][/DB], rediss:// for TLS)')
    .option('-m, --model <path|repo>', 'model folder or Hub repo id; jobs for another model are refused', DEFAULT_MODEL)
    .addOption(new Option('-d, --device <name>', 'execution provider').choices(DEVICES).default('cpu'))
    .addOption(new Option('--preset <name>', "defaults to use; by default read from the model's scheduler config").choices(PRESETS))
    .option('--lpips <file.onnx>', 'LPIPS model for perceptual distances (use the same on every worker)')
    .option('--concurrency <int>', 'jobs at once on this worker (they share one loaded model)', integerIn(1, 64), 1)
    .option('--name <text>', 'name shown in progress and results (default: host:pid)')
    .addOption(new Option('--lock-duration <ms>', "how long a job stays locked without the worker's heartbeat (BullMQ lockDuration)").argParser(integerIn(200, 3_600_000)).hideHelp())
    .addOption(new Option('--stalled-interval <ms>', "how often jobs of dead workers are looked for (BullMQ stalledInterval)").argParser(integerIn(100, 3_600_000)).hideHelp())
    .option('-q, --quiet', 'only errors and refusals', false)
    .addHelpText(
      'after',
      `
Examples:
  latentblend worker --queue redis://10.0.0.5:6379 --model stabilityai/sdxl-turbo --device cuda
  latentblend movie film.yaml --out /shared/film.mp4 --queue redis://10.0.0.5:6379

Every machine must see the work folder at the same path (NFS, SMB, a mounted bucket) and name
the model the same way (the same Hub id, or the same folder on the shared file system).
Stop with Ctrl-C: the worker finishes nothing more; its active job goes back to the queue.`,
    )
    .action(async (flags: WorkerFlags) => {
      const connection = parseQueueUrl(flags.queue);
      const name = flags.name ?? `${hostname()}:${process.pid}`;
      const reporter = createReporter({ quiet: flags.quiet });
      const { pipeline, metric, engine } = await loadForFilm(
        {
          model: flags.model,
          device: flags.device,
          ...(flags.preset !== undefined ? { preset: flags.preset } : {}),
          ...(flags.lpips !== undefined ? { lpips: flags.lpips } : {}),
        },
        reporter,
        signal,
      );
      signal.throwIfAborted();
      const { startPoolWorker } = await import('../queue/worker.ts');
      const worker = startPoolWorker({
        connection,
        model: flags.model,
        ...(flags.preset !== undefined ? { preset: flags.preset } : {}),
        pipeline,
        engine,
        metric,
        name,
        concurrency: flags.concurrency,
        ...(flags.lockDuration !== undefined ? { lockDurationMs: flags.lockDuration } : {}),
        ...(flags.stalledInterval !== undefined ? { stalledIntervalMs: flags.stalledInterval } : {}),
        log: (line) => {
          // Refusals and failures always show; the rest unless --quiet.
          if (!flags.quiet || /^(refused|failed)/.test(line)) process.stderr.write(`worker ${name}: ${line}\n`);
        },
      });
      await worker.ready;
      process.stderr.write(`worker ${name}: ready on ${describeQueue(connection)} with ${flags.model} (${flags.device}, ${metric.name})\n`);
      await new Promise<void>((stopped) => {
        if (signal.aborted) stopped();
        else signal.addEventListener('abort', () => stopped(), { once: true });
      });
      // Ctrl-C: abort the active job (it goes back to the queue for another worker) and leave.
      await worker.close(true);
      await metric.release?.();
    });
}
