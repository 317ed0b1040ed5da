/**
 * `npm run bench -- --full`: start-up, per-call speed, decode share and event-loop blocking on a
 * random-weight model with the full SD-Turbo architecture (865 M-parameter UNet), built on demand
 * by the fixture tool into .cache/bench-models/sd-turbo (about 5 GB, not in git).
 *
 * Each round measures, one after the other (interleaved, so machine noise hits all alike):
 * - before: what the project did until issue #12 — every session (VAE encoder included) created
 *   on the main thread at graph optimisation level `all`, one after the other;
 * - main: the pipeline as it loads now on the main thread (levels per role, no VAE encoder);
 * - worker: the same with every session in its own worker thread, created concurrently.
 * For each: seconds to create the sessions, to the end of the first UNet call (prompt encoding
 * included), milliseconds per UNet call, the longest event-loop delay during creation and
 * during a UNet call. Also: VAE decode alone and per image in a batch of 4, the cost of spawning
 * ffmpeg from a small process and from one holding the model, and (once) a 10-frame transition's
 * decode share and time outside ONNX Runtime. Ratios are computed from medians of the same run.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { KeyframeNoise } from '../src/pipeline/keyframe-noise.ts';
import { Unet } from '../src/pipeline/unet.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { loadLpipsMetric } from '../src/engine/metric.ts';
import { locateFfmpeg } from '../src/io/ffmpeg.ts';
import { intTensor, loadOnnxModel, runModel, type InferenceThread, type OnnxModel } from '../src/runtime/onnx.ts';
import { inspectModelFolder } from '../src/model/folder.ts';
import { measureBlocking } from './event-loop.ts';
import { nodePlatform, nodeFiles } from '../src/node/platform.ts';

export interface VariantFigures {
  createSeconds: number;
  toFirstUnetSeconds: number;
  unetMs: number;
  createMaxDelayMs: number;
  unetMaxDelayMs: number;
}

export interface FullArchResult {
  size: number;
  rounds: number;
  before: VariantFigures;
  main: VariantFigures;
  worker: VariantFigures;
  /** Per-part creation seconds (medians): level `all` before, role levels now. */
  parts: Record<string, { before: number; now: number }>;
  decodeMs: number;
  decodeMsPerImageBatch4: number;
  spawnMsSmall: number;
  spawnMsLoaded: number;
  transition?: { frames: number; wallSeconds: number; decodeShare: number; outsideOnnxShare: number; unetEvaluations: number; decodes: number };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Milliseconds to spawn ffmpeg -version and see it exit. */
function spawnMs(path: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(path, ['-hide_banner', '-version'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(performance.now() - started));
  });
}

const PROMPT = 'a lighthouse on a cliff at dawn';

/** Builds the full-size SD-Turbo folder with the fixture tool unless it is there. */
export async function ensureFullArchModel(root: string, log: (line: string) => void): Promise<string> {
  const dir = join(root, '.cache', 'bench-models', 'sd-turbo');
  if (existsSync(join(dir, 'unet', 'model.onnx_data'))) return dir;
  const venv = process.env.FIXTURES_VENV ?? join(root, 'tools', 'fixtures', '.venv');
  const python = join(venv, 'bin', 'python');
  if (!existsSync(python)) throw new Error(`the full-size model is built by the fixture tool: no venv at ${venv} (bash tools/fixtures/run.sh makes it, or set FIXTURES_VENV)`);
  log(`building ${dir} (graphs, then 5 GB of random weights; a few minutes)…`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('nice', ['-n', '10', python, join(root, 'tools', 'fixtures', 'make_full_arch.py'), 'sd-turbo', dir, '--weights'], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`make_full_arch.py exited with ${code}`))));
  });
  return dir;
}

interface Round {
  before: VariantFigures;
  main: VariantFigures;
  worker: VariantFigures;
  partsBefore: Record<string, number>;
  partsNow: Record<string, number>;
  decodeMs: number;
  decode4Ms: number;
  spawnLoadedMs: number;
}

async function unetCallFigures(unet: Unet, shape: [number, number, number], timestep: number, conditioning: Parameters<Unet['predict']>[2], calls: number): Promise<{ ms: number; maxDelayMs: number }> {
  const latents = new KeyframeNoise(7).start(shape[0] * shape[1] * shape[2]);
  const times: number[] = [];
  const delays: number[] = [];
  for (let k = 0; k < calls; k++) {
    const figure = await measureBlocking(() => unet.predict({ data: latents, dims: [1, ...shape] }, timestep, conditioning));
    times.push(figure.wallMs);
    delays.push(figure.maxDelayMs);
  }
  return { ms: median(times), maxDelayMs: median(delays) };
}

/** Today's pipeline (main or worker) from a cold load to the first UNet call, then per-call figures. */
async function measureNow(dir: string, size: number, thread: InferenceThread, calls: number, extra?: (pipeline: DiffusionPipeline) => Promise<void>): Promise<{ figures: VariantFigures; parts: Record<string, number> }> {
  const parts: Record<string, number> = {};
  const started = performance.now();
  let pipeline!: DiffusionPipeline;
  const create = await measureBlocking(async () => {
    pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir, inferenceThread: thread }, (event) => {
      if (event.type === 'load') parts[event.part] = event.seconds;
    });
  });
  try {
    const shape = pipeline.latentShape(size, size);
    const { conditioning } = await pipeline.adapter.encodePrompt(PROMPT, { width: size, height: size });
    const timestep = pipeline.scheduler(pipeline.defaults.steps).timesteps[0]!;
    await pipeline.unet.predict({ data: new KeyframeNoise(1).start(shape[0] * shape[1] * shape[2]), dims: [1, ...shape] }, timestep, conditioning);
    const toFirstUnetSeconds = (performance.now() - started) / 1000;
    const call = await unetCallFigures(pipeline.unet, shape, timestep, conditioning, calls);
    await extra?.(pipeline);
    return {
      figures: { createSeconds: create.wallMs / 1000, toFirstUnetSeconds, unetMs: call.ms, createMaxDelayMs: create.maxDelayMs, unetMaxDelayMs: call.maxDelayMs },
      parts,
    };
  } finally {
    for (const model of pipeline.models) await model.session.release();
  }
}

/** The loading of the project before issue #12: every part at level `all`, VAE encoder too, on the main thread. */
async function measureBefore(dir: string, size: number, calls: number): Promise<{ figures: VariantFigures; parts: Record<string, number> }> {
  const folder = inspectModelFolder(nodeFiles, dir);
  const parts: Record<string, number> = {};
  const models: OnnxModel[] = [];
  const started = performance.now();
  try {
    const create = await measureBlocking(async () => {
      const list: [string, string][] = [
        ...folder.textEncoders.map((path, index): [string, string] => [index === 0 ? 'text encoder' : 'text encoder 2', path]),
        ['UNet', folder.unet],
        ['VAE decoder', folder.vaeDecoder],
        ...(folder.vaeEncoder !== undefined ? [['VAE encoder', folder.vaeEncoder] as [string, string]] : []),
      ];
      for (const [part, path] of list) {
        const partStarted = performance.now();
        models.push(await loadOnnxModel(nodePlatform.runtime, path, part, 'cpu', { sessionOptions: { executionProviders: ['cpu'], graphOptimizationLevel: 'all' } }));
        parts[part] = (performance.now() - partStarted) / 1000;
      }
    });
    const unet = new Unet(models.find((model) => model.role === 'UNet')!);
    // One text-encoder call stands for the prompt encoding (the same work as the pipeline's).
    const textEncoder = models.find((model) => model.role === 'text encoder')!;
    const hidden = await runModel(textEncoder, { input_ids: intTensor(textEncoder.inputTypes.get('input_ids')!, new Array<number>(77).fill(1), [1, 77]) });
    const lastHidden = hidden.last_hidden_state!;
    const conditioning = new Map([['encoder_hidden_states', { data: lastHidden.data as Float32Array, dims: [...lastHidden.dims] }]]);
    const shape: [number, number, number] = [4, size / 8, size / 8];
    const timestep = 999;
    await unet.predict({ data: new KeyframeNoise(1).start(4 * (size / 8) ** 2), dims: [1, ...shape] }, timestep, conditioning);
    const toFirstUnetSeconds = (performance.now() - started) / 1000;
    const call = await unetCallFigures(unet, shape, timestep, conditioning, calls);
    return {
      figures: { createSeconds: create.wallMs / 1000, toFirstUnetSeconds, unetMs: call.ms, createMaxDelayMs: create.maxDelayMs, unetMaxDelayMs: call.maxDelayMs },
      parts,
    };
  } finally {
    for (const model of models) await model.session.release();
  }
}

export async function benchFullArch(dir: string, options: { size: number; rounds: number; calls: number; transition: boolean; lpips: string }, log: (line: string) => void): Promise<FullArchResult> {
  const ffmpeg = locateFfmpeg().path;
  const spawnSmall: number[] = [];
  for (let k = 0; k < 3; k++) spawnSmall.push(await spawnMs(ffmpeg));
  const rounds: Round[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const before = await measureBefore(dir, options.size, options.calls);
    log(`round ${round + 1}: before ${JSON.stringify(before.figures)}`);
    let decodeMs = 0;
    let decode4Ms = 0;
    let spawnLoadedMs = 0;
    const main = await measureNow(dir, options.size, 'main', options.calls, async (pipeline) => {
      const shape = pipeline.latentShape(options.size, options.size);
      const latents = [1, 2, 3, 4].map((seed) => new KeyframeNoise(seed).start(shape[0] * shape[1] * shape[2]));
      await pipeline.vae.decodeRaw(latents[0]!, shape);
      let started = performance.now();
      await pipeline.vae.decodeRaw(latents[1]!, shape);
      decodeMs = performance.now() - started;
      started = performance.now();
      await pipeline.vae.decodeRawBatch(latents, shape);
      decode4Ms = (performance.now() - started) / latents.length;
      spawnLoadedMs = await spawnMs(ffmpeg);
    });
    log(`round ${round + 1}: main ${JSON.stringify(main.figures)} decode ${decodeMs.toFixed(0)} ms, batch 4 ${decode4Ms.toFixed(0)} ms/image, spawn ${spawnLoadedMs.toFixed(1)} ms`);
    const worker = await measureNow(dir, options.size, 'worker', options.calls);
    log(`round ${round + 1}: worker ${JSON.stringify(worker.figures)}`);
    rounds.push({ before: before.figures, main: main.figures, worker: worker.figures, partsBefore: before.parts, partsNow: main.parts, decodeMs, decode4Ms, spawnLoadedMs });
  }
  const variant = (pick: (round: Round) => VariantFigures): VariantFigures => {
    const keys = ['createSeconds', 'toFirstUnetSeconds', 'unetMs', 'createMaxDelayMs', 'unetMaxDelayMs'] as const;
    return Object.fromEntries(keys.map((key) => [key, median(rounds.map((round) => pick(round)[key]))])) as unknown as VariantFigures;
  };
  const parts: FullArchResult['parts'] = {};
  for (const part of Object.keys(rounds[0]!.partsBefore)) {
    parts[part] = { before: median(rounds.map((round) => round.partsBefore[part]!)), now: median(rounds.map((round) => round.partsNow[part] ?? 0)) };
  }
  const result: FullArchResult = {
    size: options.size,
    rounds: options.rounds,
    before: variant((round) => round.before),
    main: variant((round) => round.main),
    worker: variant((round) => round.worker),
    parts,
    decodeMs: median(rounds.map((round) => round.decodeMs)),
    decodeMsPerImageBatch4: median(rounds.map((round) => round.decode4Ms)),
    spawnMsSmall: median(spawnSmall),
    spawnMsLoaded: median(rounds.map((round) => round.spawnLoadedMs)),
  };
  if (options.transition) {
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir, inferenceThread: 'worker' });
    const metric = await loadLpipsMetric(nodePlatform, options.lpips, 'cpu');
    try {
      const engine = new BlendingEngine(pipeline, metric);
      const decodeBefore = pipeline.vae.decoder.stats.seconds;
      const metricBefore = metric.model.stats.seconds;
      const started = performance.now();
      const transition = await engine.runTransition({
        keyframeA: { prompt: 'a lighthouse at dawn', seed: 1 },
        keyframeB: { prompt: 'a forest in winter', seed: 2 },
        width: options.size,
        height: options.size,
        maxBranches: 10,
      });
      const wallSeconds = (performance.now() - started) / 1000;
      const inside = transition.stats.onnxSeconds + (metric.model.stats.seconds - metricBefore);
      result.transition = {
        frames: transition.frames.length,
        wallSeconds,
        decodeShare: (pipeline.vae.decoder.stats.seconds - decodeBefore) / wallSeconds,
        outsideOnnxShare: Math.max(0, wallSeconds - inside) / wallSeconds,
        unetEvaluations: transition.stats.unetEvaluations,
        decodes: transition.stats.decodes,
      };
      log(`transition: ${JSON.stringify(result.transition)}`);
    } finally {
      await metric.release?.();
      for (const model of pipeline.models) await model.session.release();
    }
  }
  return result;
}

/** Rows for console.table: each figure before and now with the ratio, absolute values beside. */
export function fullArchTable(result: FullArchResult): Record<string, string>[] {
  const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
  const rows: Record<string, string>[] = [
    { figure: 'sessions created (s)', before: result.before.createSeconds.toFixed(2), main: result.main.createSeconds.toFixed(2), worker: result.worker.createSeconds.toFixed(2), 'before/main': ratio(result.before.createSeconds, result.main.createSeconds), 'before/worker': ratio(result.before.createSeconds, result.worker.createSeconds) },
    { figure: 'to first UNet call (s)', before: result.before.toFirstUnetSeconds.toFixed(2), main: result.main.toFirstUnetSeconds.toFixed(2), worker: result.worker.toFirstUnetSeconds.toFixed(2), 'before/main': ratio(result.before.toFirstUnetSeconds, result.main.toFirstUnetSeconds), 'before/worker': ratio(result.before.toFirstUnetSeconds, result.worker.toFirstUnetSeconds) },
    { figure: 'UNet call (ms)', before: result.before.unetMs.toFixed(0), main: result.main.unetMs.toFixed(0), worker: result.worker.unetMs.toFixed(0), 'before/main': ratio(result.before.unetMs, result.main.unetMs), 'before/worker': ratio(result.before.unetMs, result.worker.unetMs) },
    { figure: 'event loop blocked, creation (ms)', before: result.before.createMaxDelayMs.toFixed(0), main: result.main.createMaxDelayMs.toFixed(0), worker: result.worker.createMaxDelayMs.toFixed(0), 'before/main': '', 'before/worker': ratio(result.before.createMaxDelayMs, result.worker.createMaxDelayMs) },
    { figure: 'event loop blocked, UNet call (ms)', before: result.before.unetMaxDelayMs.toFixed(0), main: result.main.unetMaxDelayMs.toFixed(0), worker: result.worker.unetMaxDelayMs.toFixed(0), 'before/main': '', 'before/worker': ratio(result.before.unetMaxDelayMs, result.worker.unetMaxDelayMs) },
  ];
  for (const [part, figures] of Object.entries(result.parts)) {
    rows.push({ figure: `create ${part} (s)`, before: figures.before.toFixed(2), main: figures.now.toFixed(2), worker: '', 'before/main': figures.now > 0 ? ratio(figures.before, figures.now) : 'not loaded', 'before/worker': '' });
  }
  rows.push({ figure: 'VAE decode (ms/image)', before: '', main: result.decodeMs.toFixed(0), worker: '', 'before/main': '', 'before/worker': `batch 4: ${result.decodeMsPerImageBatch4.toFixed(0)} (${ratio(result.decodeMs, result.decodeMsPerImageBatch4)})` });
  rows.push({ figure: 'ffmpeg spawn (ms)', before: `loaded ${result.spawnMsLoaded.toFixed(1)}`, main: `small ${result.spawnMsSmall.toFixed(1)}`, worker: '', 'before/main': ratio(result.spawnMsLoaded, result.spawnMsSmall), 'before/worker': '' });
  if (result.transition !== undefined) {
    const t = result.transition;
    rows.push({ figure: `${t.frames}-frame transition (s)`, before: '', main: '', worker: t.wallSeconds.toFixed(1), 'before/main': '', 'before/worker': `decode ${(t.decodeShare * 100).toFixed(0)}%, outside ORT ${(t.outsideOnnxShare * 100).toFixed(1)}%` });
  }
  return rows;
}
