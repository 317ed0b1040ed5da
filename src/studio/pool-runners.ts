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
import { transitionsOf } from '../film/spec.ts';
import type { Reporter } from '../film/progress.ts';
import { writeFileAtomically } from '../io/files.ts';
import { encodePng } from '../io/png.ts';
import { modelIdentity, type QueueConnection } from '../queue/connection.ts';
import { submitImages } from '../queue/submit.ts';
import { renderFilmOnPool } from '../queue/render-on-pool.ts';
import type { JobContext, JobRunner } from './jobs.ts';
import type { PreviewsRequest, RenderRequest } from './requests.ts';
import { prepareFilmRender, type CurrentModel } from './runners.ts';
import { filesDir, filmFiles, filmUrls, newId, writeStudioFilmRecord, type StudioFilmRecord } from './storage.ts';

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
 * A render on the pool: the film's jobs spread over the workers; the film is encoded here. With
 * `resumed`, that film is resumed in its folder (its finished transitions are kept).
 */
export function poolRenderJob(connection: QueueConnection, currentModel: CurrentModel, sessionDir: string, request: RenderRequest, filmId: string, resumed?: StudioFilmRecord): JobRunner {
  return async (context: JobContext) => {
    const model = currentModel();
    // Finished transitions of the session's other films are copied by the workers, not computed.
    const { spec, dir, others, framesDir, record } = await prepareFilmRender(model, sessionDir, request, filmId, context.id, resumed);
    const only = request.transitionIndex;
    const fullCount = transitionsOf(spec).length;
    const first = only ?? 0;
    // Frames stream as each transition finishes (workers send progress, not pictures).
    let frameCount = 0;
    let frameWrites: Promise<void> = Promise.resolve();
    const streamTransition = (relativeDir: string, index: number) => {
      frameWrites = frameWrites
        .then(async () => {
          const { transition } = await loadTransition(join(dir, relativeDir));
          for (const [position, branch] of transition.tree.branches.entries()) {
            if (index > first && branch.fract === 0) continue;
            const frame = frameCount++;
            const name = `${context.id}-frame-${frame}.png`;
            await writeFileAtomically(join(framesDir, name), await encodePng(transition.images[position]!), true);
            context.emit('frame', { index: frame, transition: index, fract: branch.fract, filmFract: (index + branch.fract) / fullCount, injectionStep: branch.injectionStep, url: `/api/files/${name}` });
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
        ...(others.length > 0 ? { reuseFrom: others } : {}),
        ...(only !== undefined ? { only } : {}),
        out: files.film,
        force: true,
        reporter,
        signal: context.signal,
        ...(model.ffmpegPath !== undefined ? { ffmpegPath: model.ffmpegPath } : {}),
        ...(model.ffmpegSpawner !== undefined ? { ffmpegSpawner: model.ffmpegSpawner } : {}),
        onFinished: (job) => {
          if (job.kind !== 'transition') return;
          // Film index; with branch-1 crossfeed the transitions before `only` are computed, not shown.
          const index = Number(/\.t(\d+)$/.exec(job.jobId)?.[1] ?? 0);
          if (only === undefined || index === only) streamTransition(job.dir, index);
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
