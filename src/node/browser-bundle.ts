/**
 * Bundles browser code (the engine on onnxruntime-web, the studio's "run in this browser" mode)
 * with esbuild, and reports any Node-only import that slipped in: Node built-ins, and the
 * packages that need them (onnxruntime-node, sharp). Used by `studio --static` and by the test
 * that keeps the engine free of Node.
 */
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

/** Packages that only work in Node. */
export const NODE_ONLY_PACKAGES = ['onnxruntime-node', 'sharp', '@ffmpeg-installer/ffmpeg', 'bullmq', 'ioredis'] as const;

/** The browser entry of the library (src/browser/index.ts). */
export function browserEntry(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'browser', 'index.ts');
}

/** The result of {@link bundleBrowserCode}. */
export interface BrowserBundle {
  /** One ES module. */
  readonly js: string;
  /** Node-only imports found, as "importer → module" (empty for a clean bundle). */
  readonly nodeImports: readonly string[];
  /** Source files in the bundle, relative to the working folder. */
  readonly inputs: readonly string[];
}

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

function isNodeOnly(path: string): boolean {
  if (path.startsWith('node:') || BUILTINS.has(path) || BUILTINS.has(path.split('/')[0]!)) return true;
  return NODE_ONLY_PACKAGES.some((name) => path === name || path.startsWith(`${name}/`));
}

/**
 * Bundles `entry` (or several entries; then `js` is the first one's output) for browsers (ES module, esbuild's browser platform). Node-only imports are
 * left out of the bundle (marked external) and listed in `nodeImports`, so a caller can fail
 * with every offender named instead of esbuild's first resolution error.
 */
export async function bundleBrowserCode(
  entry: string | readonly string[] = browserEntry(),
  options: {
    minify?: boolean;
    /** 'esm' (default) or 'iife' (a classic script, e.g. a service worker). */
    format?: 'esm' | 'iife';
    /**
     * Modules replaced by the given source (e.g. a Node built-in that a module imports for a
     * function the browser code never calls); they are not reported in `nodeImports`.
     */
    stubs?: Readonly<Record<string, string>>;
  } = {},
): Promise<BrowserBundle> {
  const stubs = options.stubs ?? {};
  const entries = typeof entry === 'string' ? [entry] : [...entry];
  const nodeImports: string[] = [];
  const result = await esbuild.build({
    entryPoints: entries,
    bundle: true,
    // Several entries need an output folder name; nothing is written.
    ...(entries.length > 1 ? { outdir: 'bundle' } : {}),
    write: false,
    format: options.format ?? 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: options.minify ?? false,
    metafile: true,
    logLevel: 'silent',
    plugins: [
      {
        name: 'node-only-imports',
        setup(build) {
          build.onResolve({ filter: /.*/ }, (args) => {
            if (args.kind !== 'entry-point' && stubs[args.path] !== undefined) return { path: args.path, namespace: 'stub' };
            if (args.kind === 'entry-point' || !isNodeOnly(args.path)) return undefined;
            nodeImports.push(`${relative(process.cwd(), args.importer)} → ${args.path}`);
            return { path: args.path, external: true };
          });
          build.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({ contents: stubs[args.path]!, loader: 'js' }));
        },
      },
    ],
  });
  const js = result.outputFiles[0]?.text ?? '';
  return { js, nodeImports, inputs: Object.keys(result.metafile.inputs) };
}
