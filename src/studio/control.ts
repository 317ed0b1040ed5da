/**
 * ControlNet in the studio (issue #13): a film's control pictures are uploaded pictures
 * (./pictures.ts) named by id, like picture keyframes; the ControlNet is named as a model is in
 * POST /api/model (a folder, inside --models-dir when the studio has one, or a Hub repo id). The
 * page offers it only when the model in use has the UNet that takes ControlNet residuals
 * (`unet_controlnet/`). The Canny map of an uploaded picture (src/image/canny.ts) is made on
 * request, to show what the ControlNet will get with `canny: true`.
 */
import { existsSync, realpathSync } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import { canny } from '../image/canny.ts';
import { readPicture } from '../io/picture.ts';
import { encodePng } from '../io/png.ts';
import { RESIDUAL_UNET_FOLDER } from '../pipeline/controlnet.ts';
import { LatentBlendError } from '../errors.ts';
import { HttpError } from './http.ts';
import { locateModelSource } from './model-switch.ts';
import { picturePath, storePicture, type StoredPicture } from './pictures.ts';
import type { RenderRequest } from './requests.ts';

/** Whether the model folder has the UNet export that takes ControlNet residuals. */
export function hasControlNetUnet(modelDir: string): boolean {
  return existsSync(join(modelDir, RESIDUAL_UNET_FOLDER, 'model.onnx'));
}

/** Keys of a film spec that name a model-like folder or Hub id (`ipAdapter` where the film spec has it). */
const MODEL_KEYS = ['controlnet', 'ipAdapter'] as const;

/**
 * The render request with its ControlNet (and IP-Adapter) located as POST /api/model locates a
 * model: a folder (inside `modelsDir` when given, also through symbolic links) or a Hub id.
 * Control pictures are pictures of the session (./pictures.ts resolveRenderPictures).
 */
export function resolveRenderControl(request: RenderRequest, modelsDir: string | undefined): RenderRequest {
  const spec: Record<string, unknown> = { ...(request.spec as unknown as Record<string, unknown>) };
  let changed = false;
  for (const key of MODEL_KEYS) {
    const given = request.rawSpec[key];
    if (typeof spec[key] !== 'string' || typeof given !== 'string') continue;
    try {
      const location = locateModelSource(given, modelsDir !== undefined ? { modelsDir } : {});
      if (location.kind === 'hub') spec[key] = location.id;
      else {
        if (modelsDir !== undefined && existsSync(location.path)) {
          const rel = relative(modelsDir, realpathSync(location.path));
          if (rel.startsWith('..') || isAbsolute(rel)) throw new LatentBlendError(`${location.path} leads outside the models folder ${modelsDir}`);
        }
        spec[key] = location.path;
      }
      changed = true;
    } catch (error) {
      if (error instanceof LatentBlendError) throw new LatentBlendError(`Invalid film spec (key spec):\n  ${key}: ${error.message.replace(/^Invalid model request:\n\s*source: /, '')}`);
      throw error;
    }
  }
  return changed ? { ...request, spec: spec as unknown as RenderRequest['spec'] } : request;
}

/** POST /api/pictures/:id/canny: the Canny edge map of an uploaded picture, stored as a picture of its own. */
export async function cannyPicture(sessionDir: string, id: string): Promise<StoredPicture> {
  let path: string;
  try {
    path = picturePath(sessionDir, id, 'picture');
  } catch {
    throw new HttpError(404, 'not_found', `No picture ${id} in this session; upload it again.`);
  }
  const edges = canny(await readPicture(path));
  return storePicture(sessionDir, Buffer.from(await encodePng(edges)), `the Canny map of ${id}`);
}
