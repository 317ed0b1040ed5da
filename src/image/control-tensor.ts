/** A control picture as ControlNet input (pure; reading picture files is ./control-picture.ts, in Node). */
import type { RgbImage } from '../pipeline/vae.ts';
import type { Tensor32 } from '../pipeline/tensor.ts';
import { resizeLanczos } from './lanczos.ts';

/**
 * The ControlNet input for a picture: [1, 3, height, width] in [0, 1], the picture stretched to
 * width x height with Lanczos-3 computed as Pillow does (diffusers resizes with PIL's LANCZOS;
 * sharp's Lanczos differs by up to several levels). Pure.
 */
export function controlTensor(picture: RgbImage, width: number, height: number): Tensor32 {
  const pixels = resizeLanczos(picture, width, height).data;
  const plane = width * height;
  const data = new Float32Array(plane * 3);
  for (let pixel = 0; pixel < plane; pixel++) {
    // float32 division like numpy's `array.astype(np.float32) / 255.0`
    for (let channel = 0; channel < 3; channel++) data[channel * plane + pixel] = pixels[pixel * 3 + channel]! / 255;
  }
  return { data, dims: [1, 3, height, width] };
}
