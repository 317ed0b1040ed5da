/**
 * `latentblend studio --static DIR`: the studio as a static site that runs the model in the
 * visitor's browser (onnxruntime-web: WebGPU, else WebAssembly) — no server. The folder holds the
 * same front end as the server mode with the in-page API (src/studio/web/local-app.ts), its
 * service worker, onnxruntime-web's WebAssembly files, `latentblend-site.json` naming the model
 * (a Hub repo id, fetched from the Hub by the browser, or a local folder copied in with a
 * `files.json` listing), and a README.md with the front matter of a static Hugging Face Space.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LatentBlendError } from '../errors.ts';
import { bundleBrowserCode } from '../node/browser-bundle.ts';
import { studioWebDir } from './web-bundle.ts';

/** Options of {@link writeStaticSite}. */
export interface StaticSiteOptions {
  /** The folder to write (created; must be empty or absent unless `force`). */
  readonly outDir: string;
  /** A local model folder (copied into the site) or a Hub repo id `owner/name[/subfolder][@revision]`. */
  readonly model: string;
  /** An LPIPS .onnx file to copy in (else the browser uses the rms-pixel metric). */
  readonly lpips?: string;
  readonly force?: boolean;
}

/**
 * Browser stand-ins for the Node modules that the film spec and figure modules import for
 * functions the page never calls (reading a spec file, hashing a transition key, rasterising).
 */
const STUBS: Readonly<Record<string, string>> = {
  'node:crypto': "export function createHash() { throw new Error('node:crypto is not available in the browser'); }",
  'node:fs': "export function readFileSync() { throw new Error('files cannot be read by path in the browser'); }",
  'node:path': [
    'export function extname(path) { const match = /\\.[^./\\\\]*$/.exec(path); return match === null ? "" : match[0]; }',
    'export function dirname(path) { const at = path.lastIndexOf("/"); return at <= 0 ? (at === 0 ? "/" : ".") : path.slice(0, at); }',
    'export function resolve(...paths) { return paths.join("/"); }',
  ].join('\n'),
  sharp: "export default function sharp() { throw new Error('sharp is not available in the browser'); }",
};

/** onnxruntime-web's files that its bundled entry loads at run time. */
export const ORT_FILES: readonly string[] = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

function listFiles(dir: string, prefix = ''): { path: string; size: number }[] {
  const out: { path: string; size: number }[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    const stats = statSync(full);
    if (stats.isDirectory()) out.push(...listFiles(full, `${prefix}${name}/`));
    else if (stats.isFile()) out.push({ path: `${prefix}${name}`, size: stats.size });
  }
  return out;
}

/** Writes `files.json` (the Hub tree API's format) for a folder of the site. */
function writeListing(dir: string): void {
  const entries = listFiles(dir)
    .filter((entry) => entry.path !== 'files.json')
    .map((entry) => ({ type: 'file', path: entry.path, size: entry.size }));
  writeFileSync(join(dir, 'files.json'), `${JSON.stringify(entries, null, 1)}\n`);
}

/**
 * An entry of the static studio: the TypeScript source when running from a checkout, the
 * compiled module beside this one in an installed package (whose src/ holds only the web files).
 */
function webEntry(name: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const source = join(here, 'web', `${name}.ts`);
  return existsSync(source) ? source : join(here, 'web', `${name}.js`);
}

/** The two bundles of the static studio: the page and its service worker. */
export async function bundleStaticStudio(): Promise<{ app: string; worker: string }> {
  const app = await bundleBrowserCode(webEntry('local-app'), { minify: true, stubs: STUBS });
  const worker = await bundleBrowserCode(webEntry('local-sw'), { minify: true, format: 'iife' });
  const problems = [...app.nodeImports, ...worker.nodeImports];
  if (problems.length > 0) throw new Error(`The static studio imports Node-only modules: ${problems.join(', ')}`);
  return { app: app.js, worker: worker.js };
}

/** Writes the static studio; returns the files written, relative to `outDir`. */
export async function writeStaticSite(options: StaticSiteOptions): Promise<string[]> {
  const outDir = resolve(options.outDir);
  if (existsSync(outDir) && (!statSync(outDir).isDirectory() || readdirSync(outDir).length > 0) && options.force !== true) {
    throw new LatentBlendError(`--static: ${outDir} exists and is not an empty folder; choose another or pass --force.`);
  }
  const localModel = existsSync(options.model) && statSync(options.model).isDirectory();
  if (!localModel && !/^[\w.-]+\/[\w.-]+(\/[^@]+)?(@.+)?$/.test(options.model)) {
    throw new LatentBlendError(`--model: ${options.model} is neither a model folder nor a Hub repo id (owner/name[/subfolder][@revision]).`);
  }
  if (options.lpips !== undefined && !(existsSync(options.lpips) && statSync(options.lpips).isFile())) {
    throw new LatentBlendError(`--lpips: ${options.lpips} is not a file; expected an LPIPS .onnx file.`);
  }
  const bundles = await bundleStaticStudio();
  if (options.force === true && existsSync(outDir)) rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const web = studioWebDir();
  // The server's page links /app.js and /app.css; a static site may live under a sub-path.
  const html = readFileSync(join(web, 'index.html'), 'utf8').replaceAll('"/app.css"', '"./app.css"').replaceAll('"/app.js"', '"./app.js"');
  writeFileSync(join(outDir, 'index.html'), html);
  writeFileSync(join(outDir, 'app.css'), readFileSync(join(web, 'app.css')));
  writeFileSync(join(outDir, 'app.js'), bundles.app);
  writeFileSync(join(outDir, 'sw.js'), bundles.worker);
  const ortDist = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-web')), '..', 'dist');
  const ortDir = existsSync(join(ortDist, ORT_FILES[0]!)) ? ortDist : dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
  mkdirSync(join(outDir, 'ort'), { recursive: true });
  for (const name of ORT_FILES) cpSync(join(ortDir, name), join(outDir, 'ort', name));
  let model = options.model;
  if (localModel) {
    const name = basename(resolve(options.model)) === 'onnx' ? basename(dirname(resolve(options.model))) : basename(resolve(options.model));
    const target = join(outDir, 'models', name);
    cpSync(options.model, target, { recursive: true, dereference: true });
    writeListing(target);
    model = `models/${name}`;
  }
  let lpips: string | undefined;
  if (options.lpips !== undefined) {
    mkdirSync(join(outDir, 'lpips'), { recursive: true });
    cpSync(options.lpips, join(outDir, 'lpips', 'lpips.onnx'));
    writeListing(join(outDir, 'lpips'));
    lpips = 'lpips/lpips.onnx';
  }
  writeFileSync(join(outDir, 'latentblend-site.json'), `${JSON.stringify({ model, ...(lpips !== undefined ? { lpips } : {}) }, null, 2)}\n`);
  writeFileSync(
    join(outDir, 'README.md'),
    `---\ntitle: latentblend studio\nsdk: static\napp_file: index.html\npinned: false\n---\n\nlatentblend's studio running in the visitor's browser (WebGPU, else WebAssembly). Model: ${model}.\nMade with \`latentblend studio --static\`.\n`,
  );
  return listFiles(outDir).map((entry) => relative(outDir, join(outDir, entry.path)));
}
