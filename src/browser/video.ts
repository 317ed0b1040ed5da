/// <reference lib="dom" />
/**
 * Films encoded in the browser: WebCodecs through mediabunny into MP4 (H.264, else AV1) or
 * WebM (VP9, else VP8, else AV1). Which codecs a browser encodes varies (Chromium builds without
 * proprietary codecs have no H.264 encoder), so {@link chooseVideoCodec} asks the browser, and
 * the caller can fall back from MP4 to WebM. GIF needs no codec from the browser: gifenc writes
 * it in JavaScript, with one palette for the whole film (as ffmpeg's palettegen does on the
 * server) so that colours do not flicker from frame to frame.
 */
import * as gifencModule from 'gifenc';
import { BufferTarget, Mp4OutputFormat, Output, QUALITY_HIGH, VideoSample, VideoSampleSource, WebMOutputFormat, canEncodeVideo, type VideoCodec } from 'mediabunny';
import { LatentBlendError } from '../errors.ts';
import type { RgbImage } from '../pipeline/vae.ts';

// gifenc's ES build (what bundlers take) has named exports; its CommonJS build, as Node imports
// it, has them on the default export.
const { GIFEncoder, applyPalette, quantize } = ('GIFEncoder' in gifencModule ? gifencModule : (gifencModule as unknown as { default: typeof gifencModule }).default);

export type BrowserVideoFormat = 'mp4' | 'webm' | 'gif';
type WebCodecsFormat = Exclude<BrowserVideoFormat, 'gif'>;

/** Codecs tried for each WebCodecs container, best first. */
export const CODECS: Readonly<Record<WebCodecsFormat, readonly VideoCodec[]>> = {
  mp4: ['avc', 'av1', 'vp9'],
  webm: ['vp9', 'vp8', 'av1'],
};

/** The first codec of `format` this browser can encode at this size, or undefined. */
export async function chooseVideoCodec(format: WebCodecsFormat, width: number, height: number): Promise<VideoCodec | undefined> {
  for (const codec of CODECS[format]) {
    if (await canEncodeVideo(codec, { width, height })) return codec;
  }
  return undefined;
}

/** The formats this browser can encode at this size (for the page's format choice). */
export async function encodableFormats(width: number, height: number): Promise<BrowserVideoFormat[]> {
  const result: BrowserVideoFormat[] = [];
  for (const format of ['mp4', 'webm'] as const) if ((await chooseVideoCodec(format, width, height)) !== undefined) result.push(format);
  // GIF is written in JavaScript: every browser has it.
  result.push('gif');
  return result;
}

/** RGB8 → RGBA8 (WebCodecs takes no 3-byte pixels). */
function rgba(image: RgbImage): Uint8Array {
  const out = new Uint8Array(image.width * image.height * 4);
  for (let source = 0, target = 0; source < image.data.length; source += 3, target += 4) {
    out[target] = image.data[source]!;
    out[target + 1] = image.data[source + 1]!;
    out[target + 2] = image.data[source + 2]!;
    out[target + 3] = 255;
  }
  return out;
}

/** The result of {@link encodeFilm}. */
export interface EncodedFilm {
  readonly bytes: Uint8Array;
  readonly format: BrowserVideoFormat;
  /** The WebCodecs codec, or 'gif'. */
  readonly codec: VideoCodec | 'gif';
  readonly mimeType: string;
  readonly frames: number;
}

/**
 * Encodes `frames` (all the same size, even width and height) at `fps` into `format`. Throws a
 * LatentBlendError when the browser has no encoder for the format.
 */
export async function encodeFilm(
  frames: Iterable<RgbImage>,
  options: { format: BrowserVideoFormat; fps: number; width: number; height: number; onFrame?: (index: number) => void; signal?: AbortSignal },
): Promise<EncodedFilm> {
  if (options.format === 'gif') return encodeGif(frames, options);
  const codec = await chooseVideoCodec(options.format, options.width, options.height);
  if (codec === undefined) {
    throw new LatentBlendError(
      `This browser cannot encode ${options.format.toUpperCase()} video (tried ${CODECS[options.format].join(', ')} with WebCodecs); choose ${options.format === 'mp4' ? 'WebM' : 'MP4'}.`,
      'unavailable',
    );
  }
  const target = new BufferTarget();
  const output = new Output({ format: options.format === 'mp4' ? new Mp4OutputFormat({ fastStart: 'in-memory' }) : new WebMOutputFormat(), target });
  const source = new VideoSampleSource({ codec, quality: QUALITY_HIGH, keyFrameInterval: 1 });
  output.addVideoTrack(source, { frameRate: options.fps });
  await output.start();
  let index = 0;
  try {
    for (const frame of frames) {
      if (options.signal?.aborted) throw options.signal.reason ?? new DOMException('Aborted', 'AbortError');
      const sample = new VideoSample(rgba(frame), {
        format: 'RGBA',
        codedWidth: frame.width,
        codedHeight: frame.height,
        timestamp: index / options.fps,
        duration: 1 / options.fps,
      });
      await source.add(sample);
      sample.close();
      options.onFrame?.(index);
      index += 1;
    }
    await output.finalize();
  } catch (error) {
    if (output.state !== 'finalized') await output.cancel().catch(() => undefined);
    throw error;
  }
  const buffer = target.buffer;
  if (buffer === null) throw new Error('The video muxer produced no file.');
  return { bytes: new Uint8Array(buffer), format: options.format, codec, mimeType: options.format === 'mp4' ? 'video/mp4' : 'video/webm', frames: index };
}

/** Frames sampled for the film's palette: enough to see every colour of a blend, few enough to stay fast. */
const PALETTE_SAMPLES = 16;

/**
 * Hundredths of a second each of `count` frames shows at `fps`, rounded so that the film's total
 * time stays right (GIF stores delays in hundredths: 8 fps alternates 12 and 13).
 */
export function gifDelays(count: number, fps: number): number[] {
  return Array.from({ length: count }, (_, index) => Math.round(((index + 1) * 100) / fps) - Math.round((index * 100) / fps));
}

/** An animated GIF (looping) of `frames` at `fps` (at most 50, as GIF players honour). */
async function encodeGif(
  frames: Iterable<RgbImage>,
  options: { fps: number; width: number; height: number; onFrame?: (index: number) => void; signal?: AbortSignal },
): Promise<EncodedFilm> {
  const all = [...frames];
  if (all.length === 0) throw new LatentBlendError('A GIF needs at least one frame.');
  // One palette for the film, from frames spread over it.
  const step = Math.max(1, Math.floor(all.length / PALETTE_SAMPLES));
  const sampled = all.filter((_, index) => index % step === 0);
  const pixels = new Uint8Array(sampled.length * options.width * options.height * 4);
  sampled.forEach((frame, index) => pixels.set(rgba(frame), index * options.width * options.height * 4));
  const palette = quantize(pixels, 256);
  const delays = gifDelays(all.length, options.fps);
  const encoder = GIFEncoder();
  for (const [index, frame] of all.entries()) {
    if (options.signal?.aborted) throw options.signal.reason ?? new DOMException('Aborted', 'AbortError');
    encoder.writeFrame(applyPalette(rgba(frame), palette), frame.width, frame.height, { ...(index === 0 ? { palette, repeat: 0 } : {}), delay: delays[index]! * 10 });
    options.onFrame?.(index);
    // Let the page breathe between frames (encoding runs on its thread).
    if (index % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  encoder.finish();
  return { bytes: encoder.bytes(), format: 'gif', codec: 'gif', mimeType: 'image/gif', frames: all.length };
}
