/**
 * A keyframe's trajectory in the shared work folder, written by a keyframe job and read by the
 * transition jobs that need it:
 *
 *   <work>/keyframes/<name>/keyframe.json   model facts, steps, latent shape, image size
 *   <work>/keyframes/<name>/latents.bin     the latent after every step, float32 LE
 *   <work>/keyframes/<name>/image.rgb       the decoded final image, 8-bit RGB
 *
 * Written beside its place and renamed into it, so a reader never sees half a keyframe (also on a
 * shared file system, where rename is atomic within a folder).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { KeyframeTrajectory } from '../engine/engine.ts';
import { checkSameModel, type ModelStamp } from '../io/store.ts';
import { parseOptions } from '../options/validate.ts';
import { LatentBlendError } from '../errors.ts';

const manifestSchema = z.object({
  format: z.literal('latentblend-keyframe'),
  version: z.literal(1),
  model: z.object({ source: z.string(), family: z.string(), preset: z.string(), schedulerClass: z.string(), latentShape: z.array(z.number().int().positive()).length(3) }),
  steps: z.number().int().min(1),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});

/** The folder of keyframe `name` in a work folder. */
export function keyframeDir(workDir: string, name: string): string {
  return join(workDir, 'keyframes', name);
}

/** Whether keyframe `name` is complete in the work folder. */
export function hasKeyframe(workDir: string, name: string): boolean {
  return existsSync(join(keyframeDir(workDir, name), 'keyframe.json'));
}

/** Saves a keyframe atomically; an existing one (computed by another worker meanwhile) is kept. */
export function saveKeyframe(workDir: string, name: string, keyframe: KeyframeTrajectory, model: ModelStamp): void {
  const dir = keyframeDir(workDir, name);
  const length = model.latentShape.reduce((product, value) => product * value, 1);
  const steps = keyframe.latents.length;
  const latents = new Float32Array(steps * length);
  for (const [step, latent] of keyframe.latents.entries()) {
    if (latent == null || latent.length !== length) throw new Error(`keyframe ${name} has no latents at step ${step}`);
    latents.set(latent, step * length);
  }
  const manifest: z.infer<typeof manifestSchema> = {
    format: 'latentblend-keyframe',
    version: 1,
    model: { ...model, latentShape: [...model.latentShape] },
    steps,
    width: keyframe.image.width,
    height: keyframe.image.height,
  };
  mkdirSync(join(workDir, 'keyframes'), { recursive: true });
  const temporary = join(workDir, 'keyframes', `.${name}.${randomBytes(4).toString('hex')}.partial`);
  try {
    mkdirSync(temporary);
    writeFileSync(join(temporary, 'latents.bin'), new Uint8Array(latents.buffer));
    writeFileSync(join(temporary, 'image.rgb'), keyframe.image.data);
    writeFileSync(join(temporary, 'keyframe.json'), `${JSON.stringify(manifest, null, 1)}\n`);
    if (existsSync(dir)) rmSync(temporary, { recursive: true, force: true });
    else renameSync(temporary, dir);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    // Another worker finished the same keyframe first: theirs is as good.
    if (hasKeyframe(workDir, name)) return;
    throw error;
  }
}

/** Loads keyframe `name`, checking that it was made with the model `model` describes. */
export function loadKeyframe(workDir: string, name: string, model: ModelStamp): KeyframeTrajectory {
  const dir = keyframeDir(workDir, name);
  const manifestPath = join(dir, 'keyframe.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (error) {
    throw new LatentBlendError(`Cannot read keyframe ${manifestPath}: ${(error as Error).message}`);
  }
  const manifest = parseOptions(manifestSchema, raw, `keyframe file ${manifestPath}`);
  checkSameModel(manifest.model, model);
  const length = manifest.model.latentShape.reduce((product, value) => product * value, 1);
  const bytes = readFileSync(join(dir, 'latents.bin'));
  const image = readFileSync(join(dir, 'image.rgb'));
  if (bytes.byteLength !== manifest.steps * length * 4 || image.byteLength !== manifest.width * manifest.height * 3) {
    throw new LatentBlendError(`Keyframe ${dir} is damaged: latents.bin or image.rgb has the wrong size.`);
  }
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const latents = Array.from({ length: manifest.steps }, (_, step) => all.slice(step * length, (step + 1) * length));
  return { latents, image: { width: manifest.width, height: manifest.height, data: new Uint8Array(image) } };
}
