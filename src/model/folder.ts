/**
 * Reading and checking a model folder in Hugging Face Optimum's ONNX layout for Stable Diffusion
 * pipelines. Everything here only inspects files (through the platform's {@link FileAccess}):
 * sessions are created elsewhere.
 */
import { LatentBlendError } from '../errors.ts';
import type { FileAccess } from '../runtime/platform.ts';

/** Model families we run; each has one adapter. */
export type ModelFamily = 'sd' | 'sdxl';

/** A checked model folder: where every part is, plus the configs we need. */
export interface ModelFolder {
  readonly dir: string;
  readonly family: ModelFamily;
  /** diffusers pipeline class from model_index.json, e.g. "StableDiffusionXLPipeline". */
  readonly pipelineClass: string;
  readonly modelIndex: Readonly<Record<string, unknown>>;
  readonly textEncoders: readonly string[];
  /** Tokenizer folders, one per text encoder, same order. */
  readonly tokenizers: readonly string[];
  readonly unet: string;
  readonly vaeDecoder: string;
  /** Absent when the export has no encoder (image-to-image then unavailable). */
  readonly vaeEncoder?: string;
  readonly schedulerClass: string;
  readonly schedulerConfig: Readonly<Record<string, unknown>>;
  readonly unetConfig: Readonly<Record<string, unknown>>;
  readonly vaeConfig: Readonly<Record<string, unknown>>;
}

function folderError(message: string): LatentBlendError {
  return new LatentBlendError(message, 'model_folder');
}

const PYTHON_NUMBER = /^(-?Infinity|NaN)$/;

/**
 * JSON.parse that also accepts Python's non-standard number tokens (NaN, Infinity, -Infinity),
 * which diffusers writes into configs (e.g. DPM-Solver's `lambda_min_clipped: -Infinity`).
 */
export function parseConfigJson(text: string): unknown {
  let out = '';
  let index = 0;
  while (index < text.length) {
    const char = text[index]!;
    if (char === '"') {
      // Copy a string literal unchanged, escapes included.
      let end = index + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      out += text.slice(index, end + 1);
      index = end + 1;
      continue;
    }
    const match = /^(-?Infinity|NaN)/.exec(text.slice(index, index + 9));
    if (match !== null) {
      out += `"\\u0000${match[1]}"`;
      index += match[1]!.length;
      continue;
    }
    out += char;
    index += 1;
  }
  return JSON.parse(out, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith('\u0000') && PYTHON_NUMBER.test(value.slice(1)) ? Number(value.slice(1)) : value,
  );
}

/** Reads a JSON object file, with errors that name the file and what was expected. */
export function readJsonObject(files: FileAccess, path: string, what: string): Record<string, unknown> {
  if (!files.isFile(path)) throw folderError(`Missing ${path}: expected ${what}.`);
  let parsed: unknown;
  try {
    parsed = parseConfigJson(files.readText(path));
  } catch (error) {
    throw folderError(`${path} is not valid JSON (${(error as Error).message}): expected ${what}.`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw folderError(`${path} holds ${Array.isArray(parsed) ? 'an array' : typeof parsed}: expected ${what}.`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Checks that `path` exists and looks like an ONNX protobuf. ONNX has no magic number, but every
 * exporter writes field 1 (ir_version, a varint) first, i.e. the byte 0x08; this catches the
 * common mix-ups (a safetensors or .bin checkpoint, a JSON file, an HTML error page, a Git LFS
 * pointer) with a clear message before ONNX Runtime gives an obscure one.
 */
export function checkOnnxFile(files: FileAccess, path: string, role: string): void {
  if (!files.isFile(path)) {
    if (files.isFolder(path)) throw folderError(`${path} is not a file: expected the ${role} as an ONNX model.`);
    throw folderError(`Missing ${path}: expected the ${role} as an ONNX model (Optimum's export writes it there).`);
  }
  const head = files.readHead(path, 64);
  if (head === undefined) return;
  checkOnnxHead(head, path, role);
}

/** The format check of {@link checkOnnxFile} on the first bytes of a file (64 are enough). */
export function checkOnnxHead(head: Uint8Array, path: string, role: string): void {
  const read = head.length;
  const text = String.fromCharCode(...head.subarray(0, 64));
  let found: string | undefined;
  if (read === 0) found = 'an empty file';
  else if (text.startsWith('version https://git-lfs')) found = 'a Git LFS pointer (the real file was never downloaded)';
  else if (text.trimStart().startsWith('{') || text.trimStart().startsWith('<')) found = 'a text file (JSON or HTML)';
  else if (text.slice(8).startsWith('{"')) found = 'a safetensors checkpoint';
  else if (head[0] === 0x50 && head[1] === 0x4b) found = 'a zip archive (a PyTorch .bin checkpoint?)';
  else if (head[0] !== 0x08) found = 'a file that is not an ONNX model';
  if (found !== undefined) throw folderError(`${path} is ${found}: expected the ${role} as an ONNX model.`);
}

function componentClass(modelIndex: Record<string, unknown>, key: string): string | undefined {
  const entry = modelIndex[key];
  if (Array.isArray(entry) && entry.length === 2 && typeof entry[1] === 'string') return entry[1];
  return undefined;
}

function checkTokenizerFolder(files: FileAccess, dir: string, role: string): void {
  const join = (...parts: string[]): string => files.join(...parts);
  const hasJson = files.isFile(join(dir, 'tokenizer.json'));
  const hasBpe = files.isFile(join(dir, 'vocab.json')) && files.isFile(join(dir, 'merges.txt'));
  if (!files.isFolder(dir)) throw folderError(`Missing folder ${dir}: expected the ${role} (vocab.json and merges.txt, or tokenizer.json).`);
  if (!hasJson && !hasBpe) {
    throw folderError(`${dir} has neither tokenizer.json nor vocab.json + merges.txt: expected the ${role} files.`);
  }
}

/**
 * Inspects a model folder and returns where everything is. Throws a LatentBlendError naming the
 * missing or malformed file and what was expected there.
 */
export function inspectModelFolder(files: FileAccess, dir: string): ModelFolder {
  const join = (...parts: string[]): string => files.join(...parts);
  const exists = (path: string): boolean => files.isFile(path) || files.isFolder(path);
  if (!files.isFolder(dir)) {
    throw folderError(`Model folder ${dir} does not exist or is not a folder.`);
  }
  const modelIndex = readJsonObject(files, join(dir, 'model_index.json'), "the pipeline's model_index.json (Optimum's ONNX export writes it)");
  const pipelineClass = typeof modelIndex._class_name === 'string' ? modelIndex._class_name : '';
  const hasSecondEncoder = componentClass(modelIndex, 'text_encoder_2') !== undefined || exists(join(dir, 'text_encoder_2'));
  const hasFirstEncoder = componentClass(modelIndex, 'text_encoder') !== undefined || exists(join(dir, 'text_encoder'));
  if (hasSecondEncoder && !hasFirstEncoder) {
    throw folderError(
      `${dir} has text_encoder_2 but no text_encoder: this looks like an SDXL refiner, which cannot generate from a prompt alone. Supported: SD 1.x/2.x, SD-Turbo, SDXL, SDXL Turbo.`,
    );
  }
  const family: ModelFamily = hasSecondEncoder ? 'sdxl' : 'sd';
  const textEncoders = family === 'sdxl' ? ['text_encoder', 'text_encoder_2'] : ['text_encoder'];
  const tokenizers = family === 'sdxl' ? ['tokenizer', 'tokenizer_2'] : ['tokenizer'];
  textEncoders.forEach((name) => checkOnnxFile(files, join(dir, name, 'model.onnx'), `${name.replaceAll('_', ' ')}`));
  tokenizers.forEach((name) => checkTokenizerFolder(files, join(dir, name), name.replaceAll('_', ' ')));
  checkOnnxFile(files, join(dir, 'unet', 'model.onnx'), 'UNet');
  checkOnnxFile(files, join(dir, 'vae_decoder', 'model.onnx'), 'VAE decoder');
  const vaeEncoderPath = join(dir, 'vae_encoder', 'model.onnx');
  if (exists(vaeEncoderPath)) checkOnnxFile(files, vaeEncoderPath, 'VAE encoder');

  const schedulerConfig = readJsonObject(
    files,
    join(dir, 'scheduler', 'scheduler_config.json'),
    'the scheduler config (a JSON object with "_class_name")',
  );
  const schedulerClass = schedulerConfig._class_name;
  if (typeof schedulerClass !== 'string' || schedulerClass === '') {
    throw folderError(`${join(dir, 'scheduler', 'scheduler_config.json')} has no "_class_name": expected the diffusers scheduler class name.`);
  }
  const unetConfig = readJsonObject(files, join(dir, 'unet', 'config.json'), "the UNet's config.json (sample_size, in_channels…)");
  const vaeConfig = readJsonObject(files, join(dir, 'vae_decoder', 'config.json'), "the VAE's config.json (scaling_factor, block_out_channels…)");
  return {
    dir,
    family,
    pipelineClass,
    modelIndex,
    textEncoders: textEncoders.map((name) => join(dir, name, 'model.onnx')),
    tokenizers: tokenizers.map((name) => join(dir, name)),
    unet: join(dir, 'unet', 'model.onnx'),
    vaeDecoder: join(dir, 'vae_decoder', 'model.onnx'),
    ...(exists(vaeEncoderPath) ? { vaeEncoder: vaeEncoderPath } : {}),
    schedulerClass,
    schedulerConfig,
    unetConfig,
    vaeConfig,
  };
}
