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

/**
 * The render request with its control pictures (ids, top level and per keyframe, as the page
 * sent them) replaced by their files in the session, and its ControlNet located as POST
 * /api/model locates a model (a folder inside `modelsDir` when given, or a Hub id).
 */
export function resolveRenderControl(sessionDir: string, request: RenderRequest, modelsDir: string | undefined): RenderRequest {
  const { spec, rawSpec } = request;
  if (spec.controlnet === undefined) return request;
  const raw = rawSpec as { controlnet?: unknown; controlImage?: unknown; keyframes?: { controlImage?: unknown }[] };
  let controlnet: string;
  try {
    const location = locateModelSource(String(raw.controlnet), modelsDir !== undefined ? { modelsDir } : {});
    if (location.kind === 'hub') controlnet = location.id;
    else {
      controlnet = location.path;
      if (modelsDir !== undefined && existsSync(controlnet)) {
        const rel = relative(modelsDir, realpathSync(controlnet));
        if (rel.startsWith('..') || isAbsolute(rel)) throw new LatentBlendError(`${controlnet} leads outside the models folder ${modelsDir}`);
      }
    }
  } catch (error) {
    if (error instanceof LatentBlendError) throw new LatentBlendError(`Invalid film spec (key spec):\n  controlnet: ${error.message.replace(/^Invalid model request:\n\s*source: /, '')}`);
    throw error;
  }
  const keyframes = spec.keyframes.map((keyframe, index) =>
    keyframe.controlImage === undefined ? keyframe : { ...keyframe, controlImage: picturePath(sessionDir, raw.keyframes?.[index]?.controlImage, `keyframes[${index}].controlImage`) },
  );
  return {
    ...request,
    spec: {
      ...spec,
      controlnet,
      ...(spec.controlImage !== undefined ? { controlImage: picturePath(sessionDir, raw.controlImage, 'controlImage') } : {}),
      keyframes,
    },
  };
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
