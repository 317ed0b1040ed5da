/**
 * The studio's front end, bundled in memory at start-up: no separate build step, and the
 * server serves exactly what is in the source tree. `src/studio/web/app.ts` and everything it
 * imports become one ES module (esbuild), next to `index.html` and `app.css`.
 *
 * Served at `/` (html), `/app.js` and `/app.css` (docs/studio-api.md, "Front end").
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LatentBlendError } from '../errors.ts';

export interface StudioWebBundle {
  /** index.html */
  readonly html: string;
  /** app.js: one ES module (the page loads it with `<script type="module">`). */
  readonly js: string;
  /** app.css */
  readonly css: string;
}

const FILES = ['index.html', 'app.css', 'app.ts'] as const;

/**
 * The folder with the front end's sources. From source this is `web` beside this module; from
 * the compiled package (dist/studio/) the TypeScript sources are found in src/studio/web of the
 * same checkout, since tsc copies neither index.html nor app.css.
 */
export function studioWebDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'web'), resolve(here, '..', '..', 'src', 'studio', 'web')];
  const found = candidates.find((dir) => FILES.every((name) => existsSync(join(dir, name))));
  if (found === undefined) {
    throw new LatentBlendError(
      `The studio's front end was not found: expected ${FILES.join(', ')} in ${candidates.join(' or ')}. Reinstall latentblend, or run it from a full checkout.`,
      'unavailable',
    );
  }
  return found;
}

let cached: Promise<StudioWebBundle> | undefined;

/**
 * Bundles the front end (once per process; later calls get the same result). `minify`
 * defaults to true; tests and debugging may turn it off for readable stack traces.
 */
export function bundleStudioWeb(options: { minify?: boolean; dir?: string } = {}): Promise<StudioWebBundle> {
  const useCache = options.minify === undefined && options.dir === undefined;
  if (useCache && cached !== undefined) return cached;
  const result = build(options.dir ?? studioWebDir(), options.minify ?? true);
  if (useCache) {
    cached = result;
    result.catch(() => {
      cached = undefined;
    });
  }
  return result;
}

async function build(dir: string, minify: boolean): Promise<StudioWebBundle> {
  // Loaded lazily: the CLI's other commands never pay for esbuild.
  const esbuild = await import('esbuild');
  let output;
  try {
    output = await esbuild.build({
      entryPoints: [join(dir, 'app.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
      minify,
      sourcemap: minify ? false : 'inline',
      legalComments: 'none',
      logLevel: 'silent',
      charset: 'utf8',
    });
  } catch (error) {
    const failure = error as { errors?: { text: string; location?: { file: string; line: number } | null }[] };
    const details = (failure.errors ?? []).map((entry) => `${entry.location ? `${entry.location.file}:${entry.location.line}: ` : ''}${entry.text}`).join('; ');
    throw new LatentBlendError(`The studio's front end does not build: ${details || (error as Error).message}`);
  }
  const js = output.outputFiles[0]?.text;
  if (js === undefined) throw new LatentBlendError("The studio's front end does not build: esbuild wrote no output");
  const [html, css] = await Promise.all([readFile(join(dir, 'index.html'), 'utf8'), readFile(join(dir, 'app.css'), 'utf8')]);
  return { html, js, css };
}
