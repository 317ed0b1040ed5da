/**
 * transformers' CLIPImageProcessor (the IP-Adapter image encoder's input), from its
 * preprocessor_config.json: RGB, shortest edge resized with Pillow's bicubic, centre crop,
 * rescale, normalise with the CLIP mean and std, NCHW float32. Pure.
 */
import type { RgbImage } from '../pipeline/vae.ts';
import type { Tensor32 } from '../pipeline/tensor.ts';
import { resizePillow, type PillowFilter } from './lanczos.ts';
import { LatentBlendError } from '../errors.ts';

export interface ClipImageConfig {
  readonly shortestEdge: number;
  readonly cropHeight: number;
  readonly cropWidth: number;
  readonly doResize: boolean;
  readonly doCenterCrop: boolean;
  readonly rescaleFactor: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  readonly filter: PillowFilter;
}

/** Pillow's resample codes that we implement. */
const RESAMPLE: Readonly<Record<number, PillowFilter>> = { 1: 'lanczos', 3: 'bicubic' };

/** Reads the fields of a CLIPImageProcessor config we need; errors name `path` and the field. */
export function clipImageConfig(raw: Readonly<Record<string, unknown>>, path: string): ClipImageConfig {
  const fail = (what: string): never => {
    throw new LatentBlendError(`${path}: ${what}`, 'model_folder');
  };
  const size = raw.size as Record<string, unknown> | undefined;
  const crop = raw.crop_size as Record<string, unknown> | undefined;
  const shortestEdge = typeof size?.shortest_edge === 'number' ? size.shortest_edge : fail('expected size.shortest_edge (a CLIPImageProcessor config)');
  const cropHeight = typeof crop?.height === 'number' ? crop.height : fail('expected crop_size.height');
  const cropWidth = typeof crop?.width === 'number' ? crop.width : fail('expected crop_size.width');
  const triple = (value: unknown, name: string): [number, number, number] =>
    Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number') ? (value as [number, number, number]) : fail(`expected ${name} as three numbers`);
  const resample = typeof raw.resample === 'number' ? raw.resample : 3;
  const filter = RESAMPLE[resample] ?? fail(`resample ${resample} is not supported (3 = bicubic, 1 = Lanczos)`);
  return {
    shortestEdge,
    cropHeight,
    cropWidth,
    doResize: raw.do_resize !== false,
    doCenterCrop: raw.do_center_crop !== false,
    rescaleFactor: typeof raw.rescale_factor === 'number' ? raw.rescale_factor : 1 / 255,
    mean: triple(raw.image_mean, 'image_mean'),
    std: triple(raw.image_std, 'image_std'),
    filter,
  };
}

/** transformers' get_resize_output_image_size(default_to_square=False): the shortest edge becomes `size`. */
export function shortestEdgeSize(width: number, height: number, size: number): { width: number; height: number } {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? { width: size, height: newLong } : { width: newLong, height: size };
}

/** pixel_values [1, 3, cropHeight, cropWidth] for a picture, as CLIPImageProcessor gives them. */
export function clipPixelValues(picture: RgbImage, config: ClipImageConfig): Tensor32 {
  let image = picture;
  if (config.doResize) {
    const target = shortestEdgeSize(image.width, image.height, config.shortestEdge);
    image = resizePillow(image, target.width, target.height, config.filter);
  }
  let top = 0;
  let left = 0;
  let height = image.height;
  let width = image.width;
  if (config.doCenterCrop) {
    if (config.cropHeight > image.height || config.cropWidth > image.width) {
      throw new LatentBlendError(`image prompt: ${image.width}x${image.height} after resizing is smaller than the crop ${config.cropWidth}x${config.cropHeight}.`);
    }
    top = Math.floor((image.height - config.cropHeight) / 2);
    left = Math.floor((image.width - config.cropWidth) / 2);
    height = config.cropHeight;
    width = config.cropWidth;
  }
  const plane = width * height;
  const data = new Float32Array(plane * 3);
  const mean = config.mean.map(Math.fround);
  const std = config.std.map(Math.fround);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const source = ((top + y) * image.width + left + x) * 3;
      for (let c = 0; c < 3; c++) {
        // float64 rescale then float32, then float32 normalisation (as transformers' numpy code)
        const rescaled = Math.fround(image.data[source + c]! * config.rescaleFactor);
        data[c * plane + y * width + x] = Math.fround(Math.fround(rescaled - mean[c]!) / std[c]!);
      }
    }
  }
  return { data, dims: [1, 3, height, width] };
}
