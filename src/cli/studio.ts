/** `latentblend studio`: the web studio, a local server with the front end and its HTTP API. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { startStudio } from '../studio/server.ts';
import { checkAccessToken, isLoopbackBind, normaliseAllowedHost } from '../studio/access.ts';
import { createReporter } from './progress.ts';
import { integerIn } from './parse.ts';
import { DEFAULT_MODEL, resolveModelForCli } from './model-source.ts';
import { DEVICES, type Device } from '../runtime/onnx.ts';
import { writeStaticStudio } from './studio-static.ts';
import { parseQueueUrl } from '../queue/connection.ts';
import { LatentBlendError } from '../errors.ts';

interface StudioFlags {
  model: string;
  port: number;
  host: string;
  workDir: string;
  device: string;
  lpips?: string;
  ffmpeg?: string;
  staticDir?: string;
  modelsDir?: string;
  allowedHost: string[];
  token?: string;
  quiet: boolean;
  static?: string;
  force?: boolean;
  queue?: string;
  poolJobs?: number;
  previewVae?: string;
}

/** A commander parser from a checking function that throws LatentBlendError. */
function checked<T>(check: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return check(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message.replace(/^Invalid --[a-z-]+:? /, ''));
    }
  };
}

/** Default work folder of the studio, relative to the current folder. */
export const DEFAULT_STUDIO_WORK_DIR = 'latentblend-studio';

export function studioCommand(signal: AbortSignal): Command {
  return new Command('studio')
    .description('Start the web studio: previews, a keyframe timeline and film renders in the browser (a local server).')
    .option('-m, --model <path|repo>', 'model folder in Optimum ONNX layout, or a Hugging Face Hub repo id', DEFAULT_MODEL)
    .option('-p, --port <int>', 'port to listen on (0 = any free port)', integerIn(0, 65535), 7860)
    .option('--host <address>', 'address to listen on; anything but a loopback address exposes the studio to your network', '127.0.0.1')
    .option('--allowed-host <name>', 'also answer requests addressed to this host name (a reverse proxy in front; repeatable)', (value: string, previous: string[]) => [...previous, checked(normaliseAllowedHost)(value)], [] as string[])
    .addOption(
      new Option('--token <token>', 'access token required on every request (default: none on 127.0.0.1, a new random one on any other address)')
        .env('LATENTBLEND_STUDIO_TOKEN')
        .argParser(checked(checkAccessToken)),
    )
    .option('--work-dir <dir>', 'where previews and films are kept (each film is a work folder of `latentblend movie`)', DEFAULT_STUDIO_WORK_DIR)
    .addOption(new Option('-d, --device <name>', 'execution provider').choices(DEVICES).default('cpu'))
    .option('--lpips <file.onnx>', 'LPIPS model for perceptual distances')
    .option('--ffmpeg <path>', 'use this ffmpeg instead of the bundled one')
    .option('--models-dir <dir>', 'models loaded from the page (Model card) must be folders inside this one (or Hub ids); default: any folder')
    .option('--queue <redis://HOST:PORT>', 'send previews and renders to a pool of `latentblend worker`s sharing this Redis and the work folder')
    .option('--pool-jobs <int>', 'with --queue: previews and renders run at once (default: as many as the pool has live workers)', integerIn(1, 1024))
    .option('--preview-vae <dir>', 'decode previews with this tiny autoencoder (TAESD/TAESDXL as ONNX, docs/preview-vae.md); films always use the model\'s own VAE')
    .addOption(new Option('--static-dir <dir>', 'serve the front end from this folder').hideHelp())
    .option('--static <dir>', 'write the studio as a static site (no server) that runs the model in the visitor\'s browser (WebGPU, else WebAssembly); --model: a Hub repo id or a folder to copy in')
    .option('-f, --force', 'with --static: replace a folder that is not empty', false)
    .option('-q, --quiet', 'print only the URL and warnings', false)
    .addHelpText(
      'after',
      `
Examples:
  latentblend studio
  latentblend studio --model fixtures/models/tiny-sdxl-turbo/onnx --port 0
  latentblend studio --models-dir ~/models
  latentblend studio --host 0.0.0.0          # prints http://<host>:7860/?token=… to open remotely

On a remote GPU machine, keep the default 127.0.0.1 and tunnel (ssh -L 9000:localhost:7860 gpu-box,
then open http://localhost:9000/), or put a TLS reverse proxy in front (--allowed-host its name).
On any other address the studio needs its access token (generated, or --token /
LATENTBLEND_STUDIO_TOKEN); open the printed URL once, the browser then keeps a cookie.

Another model can be loaded from the page (a folder or a Hub id); it is then used for the later
previews and renders of every open page. With --models-dir, only folders inside it are accepted.

Open the printed URL in a browser. Stop with Ctrl-C. Every film rendered in the studio is a work
folder under <work-dir>/sessions/…/films/<id>/ that the CLI resumes and refines:
  latentblend refine <that folder>/transitions/00-… --branches 10`,
    )
    .action(async (flags: StudioFlags) => {
      const pool = flags.queue !== undefined ? parseQueueUrl(flags.queue) : undefined;
      if (flags.poolJobs !== undefined && pool === undefined) throw new LatentBlendError('--pool-jobs needs --queue (it sets how many jobs run at once on the worker pool).');
      const reporter = createReporter({ quiet: flags.quiet });
      if (flags.static !== undefined) {
        await writeStaticStudio({ ...flags, static: flags.static }, reporter);
        return;
      }
      const modelDir = await resolveModelForCli(flags.model, reporter, signal);
      signal.throwIfAborted();
      reporter.info(`loading ${flags.model} on ${flags.device}…`);
      const studio = await startStudio({
        modelDir,
        // A folder is recorded absolute, so that the CLI finds it from anywhere; a Hub id as given.
        modelSource: existsSync(flags.model) ? resolve(flags.model) : flags.model,
        device: flags.device as Device,
        host: flags.host,
        port: flags.port,
        workDir: resolve(flags.workDir),
        ...(flags.staticDir !== undefined ? { staticDir: resolve(flags.staticDir) } : {}),
        ...(flags.lpips !== undefined ? { lpips: flags.lpips } : {}),
        ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}),
        ...(flags.modelsDir !== undefined ? { modelsDir: resolve(flags.modelsDir) } : {}),
        ...(flags.allowedHost.length > 0 ? { allowedHosts: flags.allowedHost } : {}),
        ...(flags.token !== undefined ? { token: flags.token } : {}),
        onLog: (line) => process.stderr.write(`${line}\n`),
        ...(pool !== undefined ? { pool } : {}),
        ...(flags.poolJobs !== undefined ? { poolJobs: flags.poolJobs } : {}),
        ...(flags.previewVae !== undefined ? { previewVae: resolve(flags.previewVae) } : {}),
      });
      if (!isLoopbackBind(flags.host)) {
        reporter.warn(`listening on ${flags.host}: anyone who can reach this address and has the token can use the studio and its GPU; prefer a TLS reverse proxy or an SSH tunnel.`);
      }
      // One server serves every session: a stray error (a bug in a callback, a client gone at the
      // wrong moment) is logged, and the server goes on serving the others.
      const keepServing = (error: unknown) => process.stderr.write(`studio: unexpected error, still serving: ${(error as Error)?.stack ?? String(error)}\n`);
      process.on('uncaughtException', keepServing);
      process.on('unhandledRejection', keepServing);
      process.stdout.write(`latentblend studio: ${studio.url}\n`);
      // A wildcard address is no place to browse to: name this machine instead, as Jupyter does.
      if (flags.host === '0.0.0.0' || flags.host === '::') {
        const url = new URL(studio.url);
        for (const name of [hostname(), '127.0.0.1']) {
          url.hostname = name;
          process.stdout.write(`    or ${url.toString()}\n`);
        }
      }
      reporter.info(`work folder: ${resolve(flags.workDir)} (Ctrl-C to stop)`);
      await new Promise<void>((stopped) => {
        if (signal.aborted) stopped();
        else signal.addEventListener('abort', () => stopped(), { once: true });
      });
      await studio.close();
      process.off('uncaughtException', keepServing);
      process.off('unhandledRejection', keepServing);
    });
}
