/** Reads the golden references recorded from diffusers by tools/fixtures (see fixtures/README.md). */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { parseConfigJson } from '../../src/model/folder.ts';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(ROOT, 'fixtures');

export interface TensorEntry {
  readonly file: string;
  readonly dtype: 'float32' | 'int32' | 'uint8';
  readonly shape: readonly number[];
}

export interface GoldenCase {
  readonly model: string;
  readonly case: string;
  readonly prompt: string;
  readonly negative_prompt: string | null;
  readonly guidance_scale: number;
  readonly num_inference_steps: number;
  readonly height: number;
  readonly width: number;
  readonly clip_skip: number | null;
  readonly eta?: number | null;
  readonly stochastic: boolean;
  readonly scheduler: { readonly class_name: string; readonly config: Record<string, unknown> };
  readonly tensors: Readonly<Record<string, TensorEntry>>;
}

export function modelDir(model: string): string {
  return join(FIXTURES, 'models', model, 'onnx');
}

export function goldenModels(): string[] {
  const index = JSON.parse(readFileSync(join(FIXTURES, 'index.json'), 'utf8')) as { models: Record<string, unknown> };
  return Object.keys(index.models);
}

export function goldenCases(model: string): GoldenCase[] {
  const dir = join(FIXTURES, 'goldens', model);
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json') && name !== 'tokenizer.json' && name !== 'vae.json')
    .sort()
    .map((name) => parseConfigJson(readFileSync(join(dir, name), 'utf8')) as GoldenCase);
}

export function readJson<T>(...parts: string[]): T {
  return parseConfigJson(readFileSync(join(FIXTURES, ...parts), 'utf8')) as T;
}

export function hasTensor(golden: { tensors: Readonly<Record<string, TensorEntry>> }, name: string): boolean {
  return golden.tensors[name] !== undefined;
}

/** Loads tensor `name` of a golden manifest stored under fixtures/goldens/<model>/. */
export function tensor(model: string, golden: { tensors: Readonly<Record<string, TensorEntry>> }, name: string): { data: Float32Array | Int32Array | Uint8Array; shape: readonly number[] } {
  const entry = golden.tensors[name];
  if (entry === undefined) throw new Error(`golden has no tensor ${name}`);
  const path = join(FIXTURES, 'goldens', model, entry.file);
  if (!existsSync(path)) throw new Error(`missing golden file ${path}`);
  const bytes = readFileSync(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const data =
    entry.dtype === 'float32' ? new Float32Array(buffer) : entry.dtype === 'int32' ? new Int32Array(buffer) : new Uint8Array(buffer);
  return { data, shape: entry.shape };
}

export function floats(model: string, golden: { tensors: Readonly<Record<string, TensorEntry>> }, name: string): Float32Array {
  return tensor(model, golden, name).data as Float32Array;
}

/** Largest absolute difference between two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** Largest absolute value. */
export function maxAbs(a: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]!));
  return worst;
}

/** What a golden case was generated with, in the form `pipeline.generate` takes (prompt, negative prompt, steps, guidance scale, size). */
export function goldenGenerateOptions(golden: Pick<GoldenCase, 'prompt' | 'negative_prompt' | 'num_inference_steps' | 'guidance_scale' | 'width' | 'height'>): {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  guidanceScale: number;
  width: number;
  height: number;
} {
  return {
    prompt: golden.prompt,
    ...(golden.negative_prompt !== null ? { negativePrompt: golden.negative_prompt } : {}),
    steps: golden.num_inference_steps,
    guidanceScale: golden.guidance_scale,
    width: golden.width,
    height: golden.height,
  };
}
