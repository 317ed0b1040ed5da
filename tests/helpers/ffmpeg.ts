/** The ffmpeg tests' shared plumbing. */
import { FFMPEG_ENV, locateFfmpeg } from '../../src/io/ffmpeg.ts';

/** The ffmpeg latentblend finds without $LATENTBLEND_FFMPEG (the bundled or installed one); the variable is restored. */
export function bundledFfmpeg(): string {
  const saved = process.env[FFMPEG_ENV];
  delete process.env[FFMPEG_ENV];
  try {
    return locateFfmpeg().path;
  } finally {
    if (saved !== undefined) process.env[FFMPEG_ENV] = saved;
  }
}
