/**
 * The GPU benchmark's measurements (bench/gpu.sh runs this after writing the weights):
 *
 *   node --import tsx bench/gpu.ts --device cuda --size 512 --out results.json NAME=DIR [NAME=DIR …]
 *
 * For each model folder: start-up (pipeline load), UNet milliseconds per step (batch 1), VAE
 * decode milliseconds (one image, and per image in a batch of 4), a 10-frame transition with
 * batch size 1 and 4, and the accuracy of the time-budget stop (a transition given half the
 * 10-frame time: wall time against the budget). Medians of `--repeats` runs. Prints one table
 * and writes the JSON. Float32 against float16 is two folders (NAME-fp32, NAME-fp16).
 */
import { writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { KeyframeNoise } from '../src/pipeline/keyframe-noise.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { loadLpipsMetric } from '../src/engine/metric.ts';
import { DEVICES, type Device } from '../src/runtime/onnx.ts';
import { availableDevices, nodePlatform } from '../src/node/platform.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface GpuBenchOptions {
  device: Device;
  /** Image width and height in pixels. */
  size: number;
  repeats: number;
  /** Frames of the transitions (maxBranches). */
  frames: number;
}

export interface GpuBenchResult {
  model: string;
  device: Device;
  size: number;
  steps: number;
  unetInputType: string;
  loadSeconds: number;
  unetMsPerStep: number;
  decodeMs: number;
  decodeMsPerImageBatch4: number;
  transition: { batchSize: number; wallSeconds: number; unetCalls: number; unetEvaluations: number; decodeSeconds: number }[];
  budget: { budgetSeconds: number; wallSeconds: number; overshoot: number; frames: number };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

/** Measures one model folder (see the module comment). */
export async function benchGpuModel(name: string, dir: string, options: GpuBenchOptions, log: (line: string) => void = () => {}): Promise<GpuBenchResult> {
  const loadStarted = performance.now();
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir, device: options.device });
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  log(`${name}: loaded in ${loadSeconds.toFixed(1)} s`);
  const metric = await loadLpipsMetric(nodePlatform, join(ROOT, 'fixtures', 'lpips', 'tiny-lpips.onnx'), 'cpu');
  try {
    const size = pipeline.roundedSize(options.size);
    const shape = pipeline.latentShape(size, size);
    const steps = pipeline.defaults.steps;
    const { conditioning } = await pipeline.adapter.encodePrompt('a lighthouse on a cliff at dawn', { width: size, height: size });
    const length = shape[0] * shape[1] * shape[2];
    const latents = [1, 2, 3, 4].map((seed) => new KeyframeNoise(seed).start(length));
    const timestep = pipeline.scheduler(steps).timesteps[0]!;
    const unetOnce = () => pipeline.unet.predict({ data: latents[0]!, dims: [1, ...shape] }, timestep, conditioning);
    // Warm-up: the first calls allocate the provider's memory and pick kernels.
    for (let k = 0; k < 2; k++) {
      await unetOnce();
      await pipeline.vae.decodeRaw(latents[0]!, shape);
      await pipeline.vae.decodeRawBatch(latents, shape);
    }
    const unet: number[] = [];
    const decode: number[] = [];
    const decode4: number[] = [];
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      unet.push(await timed(unetOnce));
      decode.push(await timed(() => pipeline.vae.decodeRaw(latents[0]!, shape)));
      decode4.push((await timed(() => pipeline.vae.decodeRawBatch(latents, shape))) / latents.length);
    }
    log(`${name}: UNet ${median(unet).toFixed(1)} ms/step, decode ${median(decode).toFixed(1)} ms`);

    const engine = new BlendingEngine(pipeline, metric);
    const keyframes = { keyframeA: { prompt: 'a lighthouse at dawn', seed: 1 }, keyframeB: { prompt: 'a forest in winter', seed: 2 } };
    const common = { ...keyframes, width: size, height: size };
    await engine.runTransition({ ...common, maxBranches: 3 }); // warm-up
    const transition: GpuBenchResult['transition'] = [];
    for (const batchSize of [1, 4]) {
      const decodeBefore = pipeline.vae.decoder.stats.seconds;
      const started = performance.now();
      const result = await engine.runTransition({ ...common, maxBranches: options.frames, batchSize });
      const wallSeconds = (performance.now() - started) / 1000;
      const decodeSeconds = pipeline.vae.decoder.stats.seconds - decodeBefore;
      transition.push({ batchSize, wallSeconds, unetCalls: result.stats.unetCalls, unetEvaluations: result.stats.unetEvaluations, decodeSeconds });
      log(`${name}: ${options.frames}-frame transition, batch ${batchSize}: ${wallSeconds.toFixed(2)} s`);
    }
    // The time-budget stop: half of what the full transition took at batch 1.
    const budgetSeconds = transition[0]!.wallSeconds / 2;
    const started = performance.now();
    const stopped = await engine.runTransition({ ...common, timeBudget: budgetSeconds });
    const wallSeconds = (performance.now() - started) / 1000;
    return {
      model: name,
      device: options.device,
      size,
      steps,
      unetInputType: pipeline.unet.model.inputTypes.get('sample') ?? '?',
      loadSeconds,
      unetMsPerStep: median(unet),
      decodeMs: median(decode),
      decodeMsPerImageBatch4: median(decode4),
      transition,
      budget: { budgetSeconds, wallSeconds, overshoot: wallSeconds / budgetSeconds - 1, frames: stopped.frames.length },
    };
  } finally {
    await metric.release?.();
    for (const model of pipeline.models) await model.session.release();
  }
}

/** Parses `--device D --size N --repeats N --frames N --out FILE NAME=DIR …`; throws on bad input. */
export function parseGpuBenchArgs(argv: readonly string[]): { options: GpuBenchOptions; models: [string, string][]; out: string | undefined } {
  const options: GpuBenchOptions = { device: 'cuda', size: 512, repeats: 5, frames: 10 };
  const models: [string, string][] = [];
  let out: string | undefined;
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k]!;
    const value = (): string => {
      const next = argv[++k];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    const positive = (text: string): number => {
      const number = Number(text);
      if (!Number.isInteger(number) || number < 1) throw new Error(`${arg}: expected a positive integer, got ${text}`);
      return number;
    };
    if (arg === '--device') {
      const device = value();
      if (!(DEVICES as readonly string[]).includes(device)) throw new Error(`--device: expected one of ${DEVICES.join(', ')}, got ${device}`);
      options.device = device as Device;
    } else if (arg === '--size') options.size = positive(value());
    else if (arg === '--repeats') options.repeats = positive(value());
    else if (arg === '--frames') options.frames = Math.max(3, positive(value()));
    else if (arg === '--out') out = value();
    else if (arg.includes('=')) {
      const [name, dir] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
      if (!existsSync(join(dir, 'model_index.json'))) throw new Error(`${dir}: not a model folder (no model_index.json)`);
      models.push([name, dir]);
    } else throw new Error(`unknown argument ${arg}; usage: bench/gpu.ts [--device D] [--size N] [--repeats N] [--frames N] [--out FILE] NAME=DIR …`);
  }
  if (models.length === 0) throw new Error('give at least one NAME=DIR model folder');
  return { options, models, out };
}

/** One table row per model, absolute figures. */
export function gpuTable(results: readonly GpuBenchResult[]): Record<string, string | number>[] {
  return results.map((result) => {
    const one = result.transition.find((entry) => entry.batchSize === 1);
    const four = result.transition.find((entry) => entry.batchSize === 4);
    return {
      model: result.model,
      type: result.unetInputType,
      size: result.size,
      'load s': result.loadSeconds.toFixed(1),
      'unet ms/step': result.unetMsPerStep.toFixed(1),
      'decode ms': result.decodeMs.toFixed(1),
      'decode ms/img b4': result.decodeMsPerImageBatch4.toFixed(1),
      'transition b1 s': one?.wallSeconds.toFixed(2) ?? '-',
      'transition b4 s': four?.wallSeconds.toFixed(2) ?? '-',
      'budget s': result.budget.budgetSeconds.toFixed(2),
      'budget wall s': result.budget.wallSeconds.toFixed(2),
      overshoot: `${(result.budget.overshoot * 100).toFixed(1)}%`,
    };
  });
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseGpuBenchArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench/gpu.ts: ${(error as Error).message}\n`);
    return 1;
  }
  const { options, models, out } = parsed;
  const available = availableDevices();
  if (!available.includes(options.device)) {
    process.stderr.write(`bench/gpu.ts: device ${options.device} is not available in this onnxruntime-node installation (available: ${available.join(', ')}).\n`);
    return 2;
  }
  const results: GpuBenchResult[] = [];
  for (const [name, dir] of models) {
    results.push(await benchGpuModel(name, dir, options, (line) => process.stderr.write(`bench: ${line}\n`)));
  }
  console.table(gpuTable(results));
  const report = {
    kind: 'gpu',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, platform: `${process.platform}/${process.arch}` },
    options,
    results,
  };
  if (out !== undefined) writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main();
