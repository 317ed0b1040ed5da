/**
 * `npm run bench`: speed of the ONNX backend on every tiny fixture (and on any model folders
 * given as arguments). Prints a table and writes bench/results/backend.json. With `--full`, also
 * the full-size SD-Turbo architecture (bench/full-arch.ts; BENCH_FULL_SIZE, BENCH_FULL_ROUNDS,
 * BENCH_FULL_TRANSITION=0 to skip its 10-frame transition), written to full-arch.json.
 *
 * Per model: median milliseconds per UNet call, per text encoding (one prompt through all text
 * encoders), per VAE decode, and the share of a full `generate` call's wall time spent outside
 * ONNX Runtime (our own overhead: scheduler maths, tensor copies, tokenization).
 */
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { KeyframeNoise } from '../src/pipeline/keyframe-noise.ts';
import { benchTransitions } from './transition.ts';
import { nodePlatform } from '../src/node/platform.ts';
import { benchSmoothness, DEFAULT_SMOOTHNESS_MODELS, writeSmoothnessResults } from './smoothness.ts';
import { benchFullArch, ensureFullArchModel, fullArchTable } from './full-arch.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const REPEATS = Number(process.env.BENCH_REPEATS ?? 7);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function timeIt(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

interface BackendResult {
  model: string;
  family: string;
  preset: string;
  width: number;
  height: number;
  steps: number;
  guidanceScale: number;
  unetMsMedian: number;
  textEncodingMsMedian: number;
  vaeDecodeMsMedian: number;
  generateMsMedian: number;
  outsideOnnxShare: number;
}

async function benchModel(name: string, dir: string): Promise<BackendResult> {
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir });
  const { width, height, steps, guidanceScale } = pipeline.defaults;
  const shape = pipeline.latentShape(width, height);
  const prompt = 'a lighthouse on a cliff at dawn, oil painting';
  const encodeOptions = { width, height };
  const { conditioning } = await pipeline.adapter.encodePrompt(prompt, encodeOptions);
  const scheduler = pipeline.scheduler(steps);
  const latents = new KeyframeNoise(1).start(shape[0] * shape[1] * shape[2]);

  // Warm-up: the first calls allocate ONNX Runtime's arenas.
  await pipeline.generate({ prompt, seed: 1 });

  const unet: number[] = [];
  const text: number[] = [];
  const decode: number[] = [];
  const generate: number[] = [];
  const outside: number[] = [];
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    unet.push(await timeIt(() => pipeline.unet.predict({ data: latents, dims: [1, ...shape] }, scheduler.timesteps[0]!, conditioning)));
    text.push(await timeIt(() => pipeline.adapter.encodePrompt(prompt, encodeOptions)));
    decode.push(await timeIt(() => pipeline.vae.decode(latents, shape)));
    const insideBefore = pipeline.models.reduce((sum, model) => sum + model.stats.seconds, 0);
    const wall = await timeIt(() => pipeline.generate({ prompt, seed: repeat }));
    const inside = (pipeline.models.reduce((sum, model) => sum + model.stats.seconds, 0) - insideBefore) * 1000;
    generate.push(wall);
    outside.push(Math.max(0, wall - inside) / wall);
  }
  for (const model of pipeline.models) await model.session.release();
  return {
    model: name,
    family: pipeline.defaults.family,
    preset: pipeline.defaults.preset,
    width,
    height,
    steps,
    guidanceScale,
    unetMsMedian: median(unet),
    textEncodingMsMedian: median(text),
    vaeDecodeMsMedian: median(decode),
    generateMsMedian: median(generate),
    outsideOnnxShare: median(outside),
  };
}

async function main(): Promise<void> {
  const targets: [string, string][] = [];
  const fixtureRoot = join(ROOT, 'fixtures', 'models');
  for (const name of existsSync(fixtureRoot) ? readdirSync(fixtureRoot).sort() : []) {
    const dir = join(fixtureRoot, name, 'onnx');
    if (existsSync(join(dir, 'model_index.json'))) targets.push([name, dir]);
  }
  const args = process.argv.slice(2);
  // --full: also the full-size SD-Turbo architecture (built on demand, see full-arch.ts).
  const full = args.includes('--full');
  for (const extra of args.filter((arg) => arg !== '--full')) targets.push([extra, extra]);

  const results: BackendResult[] = [];
  for (const [name, dir] of targets) {
    process.stderr.write(`bench: ${name}…\n`);
    results.push(await benchModel(name, dir));
  }
  const table = results.map((result) => ({
    model: result.model,
    size: `${result.width}x${result.height}`,
    steps: result.steps,
    'unet ms': result.unetMsMedian.toFixed(2),
    'text ms': result.textEncodingMsMedian.toFixed(2),
    'decode ms': result.vaeDecodeMsMedian.toFixed(2),
    'generate ms': result.generateMsMedian.toFixed(1),
    'outside ORT': `${(result.outsideOnnxShare * 100).toFixed(1)}%`,
  }));
  console.table(table);
  process.stderr.write('bench: transitions…\n');
  const transitions = await benchTransitions(
    ROOT,
    targets.filter(([name]) => name.startsWith('tiny-')).map(([name]) => name),
  );
  console.table(
    transitions.map((result) => ({
      model: result.model,
      frames: result.maxBranches,
      batch: result.batchSize,
      'wall s': result.wallSeconds.toFixed(3),
      'unet evals': result.unetEvaluations,
      'unet calls': result.unetCalls,
      decodes: result.decodes,
      'metric evals': result.metricEvaluations,
      'outside ORT': `${(result.outsideOnnxShare * 100).toFixed(1)}%`,
    })),
  );
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  if (full) {
    const log = (line: string): void => void process.stderr.write(`bench: full-size: ${line}\n`);
    const dir = await ensureFullArchModel(ROOT, log);
    const result = await benchFullArch(
      dir,
      {
        size: Number(process.env.BENCH_FULL_SIZE ?? 256),
        rounds: Number(process.env.BENCH_FULL_ROUNDS ?? 3),
        calls: 3,
        transition: process.env.BENCH_FULL_TRANSITION !== '0',
        lpips: join(ROOT, 'fixtures', 'lpips', 'tiny-lpips.onnx'),
      },
      log,
    );
    console.table(fullArchTable(result));
    writeFileSync(join(out, 'full-arch.json'), `${JSON.stringify({ kind: 'full-arch', date: new Date().toISOString(), machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version }, result }, null, 2)}\n`);
    console.log('written bench/results/full-arch.json');
  }
  const report = {
    kind: 'backend',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, platform: `${process.platform}/${process.arch}` },
    repeats: REPEATS,
    results,
  };
  writeFileSync(join(out, 'transition.json'), `${JSON.stringify({ ...report, kind: 'transition', results: transitions }, null, 2)}\n`);
  writeFileSync(join(out, 'backend.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`written bench/results/backend.json and bench/results/transition.json`);
  process.stderr.write('bench: smoothness…\n');
  const tiny = targets.map(([name]) => name).filter((name) => DEFAULT_SMOOTHNESS_MODELS.includes(name));
  writeSmoothnessResults(ROOT, await benchSmoothness(ROOT, tiny));
}

await main();
