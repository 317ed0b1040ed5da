/**
 * What the engine needs from the machine it runs on, passed in by the front end: an ONNX Runtime
 * and read access to model files. Node (src/node/platform.ts) reads folders on disk with
 * onnxruntime-node; a browser (src/browser/) reads files fetched over HTTP with onnxruntime-web.
 * Nothing below src/engine, src/pipeline and friends touches `node:` modules or `fetch` itself.
 */
import type { OnnxRuntime } from './onnx.ts';
import type { RgbImage } from '../pipeline/vae.ts';

/**
 * Synchronous read access to model files by path. Paths are built with `join` from a root (a
 * folder on disk, or a URL in a browser where the small files were fetched beforehand).
 */
export interface FileAccess {
  /** Joins path segments the platform's way ('/' for URLs). */
  join(...parts: string[]): string;
  /** `path` made absolute (Node: against the current folder; a browser: against the page). */
  resolve(path: string): string;
  /** True when `path` exists and is a folder (a browser knows folders from the file list). */
  isFolder(path: string): boolean;
  /** True when `path` exists and is a file. */
  isFile(path: string): boolean;
  /** The whole file as UTF-8 text; throws when it is missing. */
  readText(path: string): string;
  /**
   * Up to `length` bytes from the start of the file, for format checks; undefined when the
   * platform cannot tell without a download (then the check is skipped).
   */
  readHead(path: string, length: number): Uint8Array | undefined;
}

/**
 * Reads a picture keyframe's file at the transition size (`fit`: 'cover' crops, 'contain'
 * letterboxes) with its content hash (SHA-256 of the file).
 */
export type PictureLoader = (
  path: string,
  options: { readonly width: number; readonly height: number; readonly fit?: 'cover' | 'contain' },
) => Promise<{ image: RgbImage; hash: string }>;

/** An ONNX Runtime and file access: everything platform-specific the engine uses. */
export interface Platform {
  readonly runtime: OnnxRuntime;
  readonly files: FileAccess;
  /** Picture keyframes' files (Node: src/io/picture.ts); absent where pictures cannot be read by path. */
  readonly pictures?: PictureLoader;
}
