/**
 * The studio's previews and renders on a worker pool (`latentblend studio --queue`): the same
 * requests, results, progress and cancel as ./runners.ts, but the images and transitions are
 * computed by `latentblend worker`s sharing Redis and the studio's work folder. Sessions stay
 * apart as before: every file goes into the session's own folder, and each studio job is its own
 * run on the queue, cancelled on its own.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadTransition } from '../io/store.ts';
import { filmSpecToYaml, transitionsOf, type FilmSpec } from '../film/spec.ts';
import type { Reporter } from '../film/progress.ts';
import { writeFileAtomically } from '../io/files.ts';
import { encodePng } from '../io/png.ts';
import { LatentBlendError } from '../errors.ts';
import { modelIdentity, type QueueConnection } from '../queue/connection.ts';
import { submitImages } from '../queue/submit.ts';
import { renderFilmOnPool } from '../queue/render-on-pool.ts';
import type { JobContext, JobRunner } from './jobs.ts';
import type { PreviewsRequest, RenderRequest } from './requests.ts';
import { checkRenderRequest, studioSpec, type CurrentModel } from './runners.ts';
import { filesDir, filmDir, filmFiles, filmUrls, newId, writeStudioFilmRecord, type StudioFilmRecord } from './storage.ts';

/** Previews on the pool: one image job per seed, so the seeds spread over the workers. */
export function poolPreviewsJob(connection: QueueConnection, currentModel: CurrentModel, sessionDir: string, request: PreviewsRequest, seeds: readonly number[]): JobRunner {
  return async (context) => {
    const model = currentModel();
    const dir = filesDir(sessionDir);
    mkdirSync(dir, { recursive: true });
    const names = seeds.map(() => `${newId()}.png`);
    const images: ({ seed: number; url: string } | undefined)[] = seeds.map(() => undefined);
    const steps = request.steps ?? model.pipeline.defaults.steps;
    const total = seeds.length * steps;
    await submitImages({
      connection,
      model: modelIdentity(model.source),
      signal: context.signal,
      request: {
        prompt: request.prompt,
        ...(request.negativePrompt !== undefined ? { negativePrompt: request.negativePrompt } : {}),
        ...(request.steps !== undefined ? { steps: request.steps } : {}),
        ...(request.guidanceScale !== undefined ? { guidanceScale: request.guidanceScale } : {}),
        ...(request.width !== undefined ? { width: request.width } : {}),
        ...(request.height !== undefined ? { height: request.height } : {}),
      },
      images: seeds.map((seed, index) => ({ seed, out: join(dir, names[index]!) })),
      onNotice: (line) => context.warn(line),
      onProgress: (done) => context.progress({ done: Math.round(done * steps), total, label: `${seeds.length} image${seeds.length === 1 ? '' : 's'} on the worker pool` }),
      onImage: (index) => {
        images[index] = { seed: seeds[index]!, url: `/api/files/${names[index]}` };
        context.partial({ prompt: request.prompt, images: images.filter((image) => image !== undefined) });
      },
    });
    context.progress({ done: total, total, label: `${seeds.length} image${seeds.length === 1 ? '' : 's'}`, etaSeconds: 0 });
    return { prompt: request.prompt, images: images.filter((image) => image !== undefined) };
  };
}

/**
 * The film of one transition of `spec` (keyframes `index` and `index + 1`), with the settings of
 * that transition. Refused with branch-1 crossfeed, where a transition depends on those before it.
 */
function oneTransition(spec: FilmSpec, index: number): FilmSpec {
  const crossfeed = spec.branch1Crossfeed;
  if (crossfeed !== undefined && crossfeed.power > 0 && crossfeed.range > 0) {
    throw new LatentBlendError('With branch-1 crossfeed a transition depends on the ones before it: render the whole film on the worker pool.');
  }
  const from = spec.keyframes[index]!;
  const { negativePrompt: _negative, duration: _duration, ...to } = spec.keyframes[index + 1]!;
  return { ...spec, keyframes: [from, to] };
}

/** A render on the pool: the film's jobs spread over the workers; the film is encoded here. */
export function poolRenderJob(connection: QueueConnection, currentModel: CurrentModel, sessionDir: string, request: RenderRequest, filmId: string): JobRunner {
  return async (context: JobContext) => {
    const model = currentModel();
    checkRenderRequest(model, request);
    const full = studioSpec(model, request.spec);
    const spec = request.transitionIndex !== undefined ? oneTransition(full, request.transitionIndex) : full;
    const dir = filmDir(sessionDir, filmId);
    mkdirSync(dir, { recursive: true });
    const framesDir = filesDir(sessionDir);
    mkdirSync(framesDir, { recursive: true });
    await writeFileAtomically(join(dir, 'spec.yaml'), filmSpecToYaml(full), true);
    const record: StudioFilmRecord = {
      id: filmId,
      createdAt: Date.now(),
      state: 'rendering',
      format: request.format,
      jobId: context.id,
      model: model.source,
      spec: request.rawSpec,
      ...(request.transitionIndex !== undefined ? { transitionIndex: request.transitionIndex } : {}),
    };
    await writeStudioFilmRecord(dir, record);
    const count = transitionsOf(spec).length;
    const offset = request.transitionIndex ?? 0;
    const fullCount = transitionsOf(full).length;
    // Frames stream as each transition finishes (workers send progress, not pictures).
    let frameCount = 0;
    let frameWrites: Promise<void> = Promise.resolve();
    const streamTransition = (relativeDir: string, index: number) => {
      frameWrites = frameWrites
        .then(async () => {
          const { transition } = await loadTransition(join(dir, relativeDir));
          for (const [position, branch] of transition.tree.branches.entries()) {
            if (index > 0 && branch.fract === 0) continue;
            const frame = frameCount++;
            const name = `${context.id}-frame-${frame}.png`;
            await writeFileAtomically(join(framesDir, name), await encodePng(transition.images[position]!), true);
            const filmIndex = offset + index;
            context.emit('frame', { index: frame, transition: filmIndex, fract: branch.fract, filmFract: (filmIndex + branch.fract) / fullCount, injectionStep: branch.injectionStep, url: `/api/files/${name}` });
          }
        })
        .catch((error: unknown) => context.warn(`Live frames could not be written: ${(error as Error).message}`));
    };
    let encodingTotal = 1;
    const reporter: Reporter = {
      listener: () => {},
      engineListener: () => {},
      startBar: (label, barTotal) => {
        if (label === 'encoding') encodingTotal = Math.max(1, barTotal);
      },
      updateBar: (value, _total, detail) => {
        if (detail !== undefined) context.progress({ done: value, total: 100 + 10, label: `on the worker pool: ${detail}` });
        else context.progress({ done: 100 + Math.round((10 * value) / encodingTotal), total: 110, label: `encoding the film: frame ${value} of ${encodingTotal}` });
      },
      stopBar: () => {},
      warn: (message) => context.warn(message),
      info: () => {},
    };
    const files = filmFiles(dir, request.format);
    try {
      const result = await renderFilmOnPool({
        connection,
        spec,
        model: modelIdentity(model.source),
        ...(spec.preset !== undefined ? { preset: spec.preset } : {}),
        workDir: dir,
        out: files.film,
        force: true,
        reporter,
        signal: context.signal,
        ...(model.ffmpegPath !== undefined ? { ffmpegPath: model.ffmpegPath } : {}),
        onFinished: (job) => {
          if (job.kind !== 'transition') return;
          const index = Number(/\.t(\d+)$/.exec(job.jobId)?.[1] ?? 0);
          if (index < count) streamTransition(job.dir, index);
        },
      });
      await frameWrites;
      await writeStudioFilmRecord(dir, { ...record, state: 'done', finishedAt: Date.now(), frames: result.framesComputed, filmFrames: result.filmFrames });
      context.progress({ done: 110, total: 110, label: `${result.filmFrames} film frames`, etaSeconds: 0 });
      return {
        filmId,
        ...filmUrls(filmId, request.format),
        format: request.format,
        frames: result.framesComputed,
        filmFrames: result.filmFrames,
        transitions: result.transitions,
        transitionsReused: result.transitionsReused,
        unetCalls: result.unetCalls,
        workDir: dir,
        workers: result.workers,
        ...(request.transitionIndex !== undefined ? { transitionIndex: request.transitionIndex } : {}),
      };
    } catch (error) {
      await frameWrites;
      const state = context.signal.aborted ? 'cancelled' : 'failed';
      await writeStudioFilmRecord(dir, { ...record, state, finishedAt: Date.now() }).catch(() => {});
      throw error;
    }
  };
}
