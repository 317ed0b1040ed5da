/** The part of gifenc 1.0 (https://github.com/mattdesl/gifenc, MIT) that src/browser/video.ts uses. */
declare module 'gifenc' {
  /** Palette colours as [r, g, b] (0–255). */
  export type Palette = number[][];
  export interface GifFrameOptions {
    /** Required on the first frame: the global colour table. */
    palette?: Palette;
    /** Milliseconds this frame shows (stored in hundredths of a second). */
    delay?: number;
    /** -1 once, 0 forever, > 0 that many times. */
    repeat?: number;
  }
  export interface GifEncoder {
    writeFrame(index: Uint8Array, width: number, height: number, options?: GifFrameOptions): void;
    finish(): void;
    bytes(): Uint8Array;
  }
  export function GIFEncoder(options?: { auto?: boolean; initialCapacity?: number }): GifEncoder;
  /** Up to `maxColors` colours for RGBA pixels (rgb565: 5-6-5 bits while choosing). */
  export function quantize(rgba: Uint8Array | Uint8ClampedArray, maxColors: number, options?: { format?: 'rgb565' | 'rgb444' | 'rgba4444' }): Palette;
  /** The palette index of each RGBA pixel. */
  export function applyPalette(rgba: Uint8Array | Uint8ClampedArray, palette: Palette, format?: 'rgb565' | 'rgb444' | 'rgba4444'): Uint8Array;
}
