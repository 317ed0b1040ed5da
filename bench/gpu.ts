/**
 * The GPU benchmark's measurements (bench/gpu.sh runs this after writing the weights):
 *
 *   node --import tsx bench/gpu.ts --device webgpu --size 512 --out results.json NAME=DIR [NAME=DIR …]
 *   node --import tsx bench/gpu.ts --device webgpu --probe     (a tensor to the device and back)
 *   node --import tsx bench/gpu.ts --list-devices
 *
 * For each model folder: start-up (pipeline load), UNet milliseconds per step (batch 1), VAE
 * decode milliseconds (one image, and per image in a batch of 4); on webgpu, what keeping the
 * UNet's inputs and output on the device would save (IO binding, measured on a second UNet session
 * whose output stays on the GPU); a 10-frame transition with batch size 1 and 4, and the accuracy
 * of the time-budget stop (a transition given half the 10-frame time: wall time against the
 * budget). Medians of `--repeats` runs. Prints one table and writes the JSON. Float32 against
 * float16 is two folders (NAME-fp32, NAME-fp16).
 *
 * Unattended runs: the JSON is rewritten (whole, through a temporary file) after each stage, with
 * `complete: false` until the last, and a stage that fails is recorded in `errors` and ends that
 * model's measurements, so a crash or a time limit still leaves every figure measured before it.
 *
 * bench/gpu-pack.sh bundles this file with esbuild into one .mjs for machines without Node's
 * packages; ROOT (for fixtures/) is then the folder above the bundle's.
 */
import { writeFileSync, existsSync, realpathSync, renameSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { KeyframeNoise } from '../src/pipeline/keyframe-noise.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { loadLpipsMetric } from '../src/engine/metric.ts';
import { DEVICES, floatTensor, intTensor, type Device, type FeedTensor } from '../src/runtime/onnx.ts';
import { sessionOptionsFor } from '../src/runtime/session-options.ts';
import { availableDevices, nodePlatform } from '../src/node/platform.ts';
import type { Conditioning } from '../src/adapters/adapter.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface GpuBenchOptions {
  device: Device;
  /** Image width and height in pixels. */
  size: number;
  repeats: number;
  /** Frames of the transitions (maxBranches). */
  frames: number;
  /** Measure IO binding (webgpu only; elsewhere recorded as skipped). */
  ioBinding: boolean;
}

/** What keeping the UNet's tensors on the device saves, per UNet call (batch 1). */
export interface IoBindingResult {
  /** Median ms of one call with inputs and output in host memory, as the pipeline runs it. */
  hostMs: number;
  /**
   * Ms per call with the inputs already on the device and the output left there: `repeats` calls
   * back to back, then one download of the last output (the only point where the host waits for
   * the GPU), divided by `repeats`.
   */
  deviceMs: number;
  /** hostMs − deviceMs, and that as a share of hostMs. */
  savedMs: number;
  savedShare: number;
  /**
   * Median ms to upload all inputs (Identity sessions with gpu-buffer output), counting one read-back
   * of the sample to wait for the GPU; and median ms to download the output.
   */
  uploadMs: number;
  downloadMs: number;
  /** Bytes of the inputs (host → device) and of the output (device → host) per call. */
  bytesIn: number;
  bytesOut: number;
  /** Largest difference between the host session's output and the device session's, downloaded. */
  maxAbsDiff: number;
}

export interface GpuBenchResult {
  model: string;
  device: Device;
  size: number;
  /** False until every stage has run (a partial result of an unattended run). */
  complete: boolean;
  /** Stages that failed or were skipped, with why; the first failure ends the model's stages. */
  errors: { stage: string; message: string }[];
  steps?: number;
  unetInputType?: string;
  loadSeconds?: number;
  unetMsPerStep?: number;
  decodeMs?: number;
  decodeMsPerImageBatch4?: number;
  ioBinding?: IoBindingResult;
  transition?: { batchSize: number; wallSeconds: number; unetCalls: number; unetEvaluations: number; decodeSeconds: number }[];
  budget?: { budgetSeconds: number; wallSeconds: number; overshoot: number; frames: number };
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

function messageOf(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.slice(0, 500);
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, float16: 2, int64: 8, int32: 4 };

function tensorBytes(tensor: ort.Tensor): number {
  return tensor.dims.reduce((product, dim) => product * dim, 1) * (BYTES_PER_ELEMENT[tensor.type] ?? 4);
}

/**
 * Sessions of the one-node Identity graphs (fixtures/identity/, tools/fixtures/make_identity.py)
 * that move tensors between host and device: `up` leaves its output on the GPU, `down` brings it
 * back. Reading a gpu-buffer tensor's data directly (getData) aborts onnxruntime-node 1.30's process,
 * so downloads go through `down`.
 */
export interface DeviceMover {
  upload(tensor: ort.Tensor): Promise<ort.Tensor>;
  download(tensor: ort.Tensor): Promise<ort.Tensor>;
  release(): Promise<void>;
}

export async function deviceMover(device: Device): Promise<DeviceMover> {
  const sessions = new Map<string, { up: ort.InferenceSession; down: ort.InferenceSession }>();
  const pair = async (type: string) => {
    let found = sessions.get(type);
    if (found === undefined) {
      const path = join(ROOT, 'fixtures', 'identity', `identity-${type}.onnx`);
      if (!existsSync(path)) throw new Error(`no Identity graph for ${type} tensors (${path})`);
      found = {
        // Errors only, as the library's sessions (session-options.ts): WebGPU's warnings are noise.
        up: await ort.InferenceSession.create(path, { executionProviders: [device], preferredOutputLocation: 'gpu-buffer', logSeverityLevel: 3 }),
        down: await ort.InferenceSession.create(path, { executionProviders: [device], logSeverityLevel: 3 }),
      };
      sessions.set(type, found);
    }
    return found;
  };
  return {
    upload: async (tensor) => (await (await pair(tensor.type)).up.run({ x: tensor })).y!,
    download: async (tensor) => (await (await pair(tensor.type)).down.run({ x: tensor })).y!,
    release: async () => {
      for (const { up, down } of sessions.values()) await Promise.all([up.release(), down.release()]);
    },
  };
}

/** A float tensor of `values`, uploaded and brought back on `device`; throws unless it returns unchanged. */
export async function probeDevice(device: Device): Promise<string> {
  const mover = await deviceMover(device);
  try {
    const values = Float32Array.from({ length: 64 }, (_, k) => k / 8 - 3);
    const onDevice = await mover.upload(new ort.Tensor('float32', values, [1, 4, 4, 4]));
    const location = onDevice.location;
    const back = await mover.download(onDevice);
    onDevice.dispose();
    const data = back.data as Float32Array;
    const wrong = values.findIndex((value, k) => data[k] !== value);
    if (location !== 'gpu-buffer') throw new Error(`the upload left the tensor in ${location}, not in a GPU buffer`);
    if (back.location !== 'cpu' || wrong !== -1) throw new Error(`the round trip changed the tensor (location ${back.location}, first wrong value at ${wrong})`);
    return `${device}: a float32 tensor went to a GPU buffer and back unchanged`;
  } finally {
    await mover.release();
  }
}

/** The UNet's feeds for one batch-1 call, as Unet.predict builds them (float16 where the model is). */
function unetFeeds(
  inputTypes: ReadonlyMap<string, string>,
  inputRanks: ReadonlyMap<string, number>,
  sample: Float32Array,
  shape: readonly number[],
  timestep: number,
  conditioning: Conditioning,
): Record<string, ort.Tensor> {
  const feeds: Record<string, FeedTensor> = { sample: floatTensor(inputTypes.get('sample') as 'float32', sample, [1, ...shape]) };
  const timestepType = inputTypes.get('timestep') as 'float32';
  feeds.timestep = (inputRanks.get('timestep') ?? 1) === 0 ? intTensor(timestepType, [timestep], []) : intTensor(timestepType, [timestep], [1]);
  for (const [name, type] of inputTypes) {
    if (name === 'sample' || name === 'timestep') continue;
    const tensor = conditioning.get(name);
    if (tensor === undefined) throw new Error(`the UNet input ${name} is not in the conditioning`);
    feeds[name] = floatTensor(type as 'float32', tensor.data, tensor.dims);
  }
  return Object.fromEntries(Object.entries(feeds).map(([name, feed]) => [name, new ort.Tensor(feed.type, feed.data as Float32Array, feed.dims)]));
}

function maxAbsDiff(a: ort.Tensor, b: ort.Tensor): number {
  const read = (tensor: ort.Tensor): ArrayLike<number> =>
    tensor.type === 'float16' ? Float32Array.from(tensor.data as Uint16Array, halfToFloat) : (tensor.data as Float32Array);
  const [x, y] = [read(a), read(b)];
  let worst = x.length === y.length ? 0 : Infinity;
  for (let k = 0; k < Math.min(x.length, y.length); k++) worst = Math.max(worst, Math.abs(x[k]! - y[k]!));
  return worst;
}

function halfToFloat(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/**
 * IO binding measured for one batch-1 UNet call on `sample` (latent `shape` [C, H, W]): the
 * pipeline's UNet session with host tensors against a second session on the same file whose output
 * stays on the GPU, fed inputs uploaded once beforehand (see IoBindingResult for what each figure
 * counts). `device` must support gpu-buffer tensors (webgpu).
 */
export async function measureIoBinding(
  pipeline: DiffusionPipeline,
  device: Device,
  call: { sample: Float32Array; shape: readonly number[]; timestep: number; conditioning: Conditioning },
  repeats: number,
): Promise<IoBindingResult> {
  const feeds = unetFeeds(pipeline.unet.model.inputTypes, pipeline.unet.model.inputRanks, call.sample, call.shape, call.timestep, call.conditioning);
  const host = pipeline.unet.model.session;
  const bound = await ort.InferenceSession.create(pipeline.unet.model.path, { ...sessionOptionsFor('UNet', device), preferredOutputLocation: 'gpu-buffer' });
  const mover = await deviceMover(device);
  const onDevice: Record<string, ort.Tensor> = {};
  try {
    const uploadMs: number[] = [];
    for (let repeat = 0; repeat < repeats + 1; repeat++) {
      const started = performance.now();
      for (const [name, tensor] of Object.entries(feeds)) {
        if (onDevice[name]?.location === 'gpu-buffer') onDevice[name]!.dispose();
        // Types without an Identity graph (e.g. int64 timesteps of other exports) stay on the host.
        onDevice[name] = tensor.type === 'float32' || tensor.type === 'float16' ? await mover.upload(tensor) : tensor;
      }
      // The last upload's output is read back once so that the upload has finished on the GPU.
      await mover.download(onDevice.sample!);
      if (repeat > 0) uploadMs.push(performance.now() - started);
    }
    const outputName = bound.outputNames[0]!;
    // Warm-up of both sessions (first calls pick kernels and allocate).
    const hostOutput = (await host.run(feeds))[outputName]!;
    const warm = (await bound.run(onDevice))[outputName]!;
    const deviceOutput = await mover.download(warm);
    warm.dispose();
    const hostMs: number[] = [];
    for (let repeat = 0; repeat < repeats; repeat++) hostMs.push(await timed(() => host.run(feeds)));
    const started = performance.now();
    let last: ort.Tensor | undefined;
    for (let repeat = 0; repeat < repeats; repeat++) {
      last?.dispose();
      last = (await bound.run(onDevice))[outputName]!;
    }
    await mover.download(last!);
    const deviceMs = (performance.now() - started) / repeats;
    const downloadMs: number[] = [];
    for (let repeat = 0; repeat < repeats; repeat++) downloadMs.push(await timed(() => mover.download(last!)));
    last!.dispose();
    const hostMedian = median(hostMs);
    return {
      hostMs: hostMedian,
      deviceMs,
      savedMs: hostMedian - deviceMs,
      savedShare: (hostMedian - deviceMs) / hostMedian,
      uploadMs: median(uploadMs),
      downloadMs: median(downloadMs),
      bytesIn: Object.values(feeds).reduce((sum, tensor) => sum + tensorBytes(tensor), 0),
      bytesOut: tensorBytes(hostOutput),
      maxAbsDiff: maxAbsDiff(hostOutput, deviceOutput),
    };
  } finally {
    for (const tensor of Object.values(onDevice)) if (tensor.location === 'gpu-buffer') tensor.dispose();
    await mover.release();
    await bound.release();
  }
}

/**
 * Measures one model folder (see the module comment). `progress` receives the result after each
 * stage (for writing partial results); a failing stage is recorded in `errors` and ends the model.
 */
export async function benchGpuModel(
  name: string,
  dir: string,
  options: GpuBenchOptions,
  log: (line: string) => void = () => {},
  progress: (result: GpuBenchResult) => void = () => {},
): Promise<GpuBenchResult> {
  const result: GpuBenchResult = { model: name, device: options.device, size: options.size, complete: false, errors: [] };
  let stage = 'load';
  const loadStarted = performance.now();
  let pipeline: DiffusionPipeline;
  try {
    pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir, device: options.device });
  } catch (error) {
    result.errors.push({ stage, message: messageOf(error) });
    log(`${name}: ${stage} failed: ${messageOf(error)}`);
    progress(result);
    return result;
  }
  result.loadSeconds = (performance.now() - loadStarted) / 1000;
  result.unetInputType = pipeline.unet.model.inputTypes.get('sample') ?? '?';
  log(`${name}: loaded in ${result.loadSeconds.toFixed(1)} s`);
  progress(result);
  const metric = await loadLpipsMetric(nodePlatform, join(ROOT, 'fixtures', 'lpips', 'tiny-lpips.onnx'), 'cpu');
  try {
    stage = 'prompt';
    const size = pipeline.roundedSize(options.size);
    result.size = size;
    const shape = pipeline.latentShape(size, size);
    const steps = pipeline.defaults.steps;
    result.steps = steps;
    const { conditioning } = await pipeline.adapter.encodePrompt('a lighthouse on a cliff at dawn', { width: size, height: size });
    const length = shape[0] * shape[1] * shape[2];
    const latents = [1, 2, 3, 4].map((seed) => new KeyframeNoise(seed).start(length));
    const timestep = pipeline.scheduler(steps).timesteps[0]!;

    stage = 'unet and decode';
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
    result.unetMsPerStep = median(unet);
    result.decodeMs = median(decode);
    result.decodeMsPerImageBatch4 = median(decode4);
    log(`${name}: UNet ${result.unetMsPerStep.toFixed(1)} ms/step, decode ${result.decodeMs.toFixed(1)} ms`);
    progress(result);

    stage = 'io binding';
    if (!options.ioBinding) result.errors.push({ stage, message: 'skipped (--no-io-binding)' });
    else if (options.device !== 'webgpu') result.errors.push({ stage, message: `skipped: measured on webgpu only (device ${options.device})` });
    else {
      result.ioBinding = await measureIoBinding(pipeline, options.device, { sample: latents[0]!, shape, timestep, conditioning }, options.repeats);
      const io = result.ioBinding;
      log(
        `${name}: IO binding: ${io.hostMs.toFixed(1)} ms with host tensors, ${io.deviceMs.toFixed(1)} ms on the device ` +
          `(saves ${io.savedMs.toFixed(1)} ms, ${(io.savedShare * 100).toFixed(1)}%; ${io.bytesIn} B in, ${io.bytesOut} B out per call)`,
      );
      progress(result);
    }

    stage = 'transitions';
    const engine = new BlendingEngine(pipeline, metric);
    const keyframes = { keyframeA: { prompt: 'a lighthouse at dawn', seed: 1 }, keyframeB: { prompt: 'a forest in winter', seed: 2 } };
    const common = { ...keyframes, width: size, height: size };
    await engine.runTransition({ ...common, maxBranches: 3 }); // warm-up
    result.transition = [];
    for (const batchSize of [1, 4]) {
      const decodeBefore = pipeline.vae.decoder.stats.seconds;
      const started = performance.now();
      const run = await engine.runTransition({ ...common, maxBranches: options.frames, batchSize });
      const wallSeconds = (performance.now() - started) / 1000;
      const decodeSeconds = pipeline.vae.decoder.stats.seconds - decodeBefore;
      result.transition.push({ batchSize, wallSeconds, unetCalls: run.stats.unetCalls, unetEvaluations: run.stats.unetEvaluations, decodeSeconds });
      log(`${name}: ${options.frames}-frame transition, batch ${batchSize}: ${wallSeconds.toFixed(2)} s`);
      progress(result);
    }

    stage = 'time budget';
    // The time-budget stop: half of what the full transition took at batch 1.
    const budgetSeconds = result.transition[0]!.wallSeconds / 2;
    const started = performance.now();
    const stopped = await engine.runTransition({ ...common, timeBudget: budgetSeconds });
    const wallSeconds = (performance.now() - started) / 1000;
    result.budget = { budgetSeconds, wallSeconds, overshoot: wallSeconds / budgetSeconds - 1, frames: stopped.frames.length };
    result.complete = true;
  } catch (error) {
    result.errors.push({ stage, message: messageOf(error) });
    log(`${name}: ${stage} failed: ${messageOf(error)}`);
  } finally {
    await metric.release?.();
    for (const model of pipeline.models) await model.session.release();
  }
  progress(result);
  return result;
}

export interface GpuBenchArgs {
  options: GpuBenchOptions;
  models: [string, string][];
  out: string | undefined;
  /** Only print the devices this onnxruntime-node can use. */
  listDevices: boolean;
  /** Only check that a tensor reaches the device and comes back (fails fast when the GPU is unusable). */
  probe: boolean;
}

/** Parses `--device D --size N --repeats N --frames N [--no-io-binding] --out FILE NAME=DIR …`; throws on bad input. */
export function parseGpuBenchArgs(argv: readonly string[]): GpuBenchArgs {
  const options: GpuBenchOptions = { device: 'cuda', size: 512, repeats: 5, frames: 10, ioBinding: true };
  const models: [string, string][] = [];
  let out: string | undefined;
  let listDevices = false;
  let probe = false;
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
    else if (arg === '--no-io-binding') options.ioBinding = false;
    else if (arg === '--out') out = value();
    else if (arg === '--list-devices') listDevices = true;
    else if (arg === '--probe') probe = true;
    else if (arg.includes('=')) {
      const [name, dir] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
      if (!existsSync(join(dir, 'model_index.json'))) throw new Error(`${dir}: not a model folder (no model_index.json)`);
      models.push([name, dir]);
    } else {
      throw new Error(
        `unknown argument ${arg}; usage: bench/gpu.ts [--device D] [--size N] [--repeats N] [--frames N] [--no-io-binding] [--out FILE] NAME=DIR … | --probe | --list-devices`,
      );
    }
  }
  if (models.length === 0 && !listDevices && !probe) throw new Error('give at least one NAME=DIR model folder');
  return { options, models, out, listDevices, probe };
}

const fixed = (value: number | undefined, digits: number): string => (value === undefined ? '-' : value.toFixed(digits));

/** One table row per model, absolute figures ('-' where a stage did not run). */
export function gpuTable(results: readonly GpuBenchResult[]): Record<string, string | number>[] {
  return results.map((result) => {
    const one = result.transition?.find((entry) => entry.batchSize === 1);
    const four = result.transition?.find((entry) => entry.batchSize === 4);
    return {
      model: result.model,
      type: result.unetInputType ?? '-',
      size: result.size,
      'load s': fixed(result.loadSeconds, 1),
      'unet ms/step': fixed(result.unetMsPerStep, 1),
      'unet ms on device': fixed(result.ioBinding?.deviceMs, 1),
      'io saved': result.ioBinding === undefined ? '-' : `${(result.ioBinding.savedShare * 100).toFixed(1)}%`,
      'decode ms': fixed(result.decodeMs, 1),
      'decode ms/img b4': fixed(result.decodeMsPerImageBatch4, 1),
      'transition b1 s': fixed(one?.wallSeconds, 2),
      'transition b4 s': fixed(four?.wallSeconds, 2),
      'budget s': fixed(result.budget?.budgetSeconds, 2),
      'budget wall s': fixed(result.budget?.wallSeconds, 2),
      overshoot: result.budget === undefined ? '-' : `${(result.budget.overshoot * 100).toFixed(1)}%`,
    };
  });
}

/** Writes `text` to `path` through a temporary file beside it, so the file is never half-written. */
function writeWhole(path: string, text: string): void {
  const partial = `${path}.partial`;
  writeFileSync(partial, text);
  renameSync(partial, path);
}

async function main(): Promise<number> {
  let parsed: GpuBenchArgs;
  try {
    parsed = parseGpuBenchArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench/gpu.ts: ${(error as Error).message}\n`);
    return 1;
  }
  const { options, models, out } = parsed;
  const available = availableDevices();
  if (parsed.listDevices) {
    process.stdout.write(`${available.join(' ')}\n`);
    return 0;
  }
  if (!available.includes(options.device)) {
    process.stderr.write(`bench/gpu.ts: device ${options.device} is not available in this onnxruntime-node installation (available: ${available.join(', ')}).\n`);
    return 2;
  }
  if (parsed.probe) {
    try {
      process.stderr.write(`bench: ${await probeDevice(options.device)}\n`);
      return 0;
    } catch (error) {
      process.stderr.write(`bench/gpu.ts: --probe on ${options.device} failed: ${messageOf(error)}\n`);
      return 3;
    }
  }
  const results: GpuBenchResult[] = [];
  const report = () => ({
    kind: 'gpu',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, execPath: process.execPath, platform: `${process.platform}/${process.arch}` },
    onnxruntime: ort.env.versions.common,
    options,
    results,
  });
  for (const [name, dir] of models) {
    const index = results.length;
    await benchGpuModel(name, dir, options, (line) => process.stderr.write(`bench: ${line}\n`), (result) => {
      results[index] = result;
      if (out !== undefined) writeWhole(out, `${JSON.stringify(report(), null, 2)}\n`);
    });
  }
  console.table(gpuTable(results));
  return results.every((result) => result.complete) ? 0 : 4;
}

// Run as a script (also through a symbolic link: import.meta.url is the real path, argv[1] may not be).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) process.exitCode = await main();
