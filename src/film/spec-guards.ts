/**
 * Checks on a film spec that come before (and around) its schema: input of unbounded size or
 * depth, numbers in a form a user would not mean, and the film limits that keep one spec from
 * taking all the memory of the machine (a studio serves everyone from one process).
 *
 * Limits (documented in the README's "Limits"):
 * - a spec text of at most MAX_SPEC_CHARS characters, nested at most MAX_SPEC_DEPTH levels;
 * - numbers in decimal: YAML's hexadecimal (0x10) and octal (0o17) integers are refused;
 * - every transition at most MAX_TRANSITION_SECONDS long and at least 2 film frames, the whole
 *   film at most MAX_FILM_FRAMES frames.
 */
import { visit, type Document } from 'yaml';
import { LatentBlendError } from '../errors.ts';
import { filmFrameCount } from '../blend/retime.ts';

/**
 * Highest GIF frame rate: GIF delays are whole hundredths of a second and browsers slow delays
 * below 2/100 s down to 1/10 s, so 50 fps is the fastest GIF that plays as intended.
 */
export const MAX_GIF_FPS = 50;

/** Refuses a studio render of a GIF faster than {@link MAX_GIF_FPS} (the server and the in-browser studio). */
export function checkRenderFormat(format: string, fps: number): void {
  if (format === 'gif' && fps > MAX_GIF_FPS) {
    throw new LatentBlendError(`Invalid render request:\n  format: a GIF plays at most ${MAX_GIF_FPS} fps, and the spec's fps is ${fps} (lower fps or choose mp4 or webm)`);
  }
}

/** Longest film spec text, in characters (a prompt is cut to the text encoder's 77 tokens anyway). */
export const MAX_SPEC_CHARS = 1024 * 1024;
/** Deepest nesting of lists and mappings in a film spec (a spec needs 4). */
export const MAX_SPEC_DEPTH = 32;
/** Longest transition, in seconds. */
export const MAX_TRANSITION_SECONDS = 3600;
/** Most frames a film may have (an hour at 120 fps). */
export const MAX_FILM_FRAMES = 432_000;

/**
 * Problems of a film's timing, as `[key path, text]`: a transition longer than
 * MAX_TRANSITION_SECONDS or with fewer than 2 film frames (duration × fps), or a film of more
 * than MAX_FILM_FRAMES frames. `durations[i]` is transition i's duration and `keys[i]` the key
 * that set it (e.g. "keyframes[0].duration" or "transitionDuration").
 */
export function filmTimingProblems(fps: number, durations: readonly number[], keys: readonly string[]): [string, string][] {
  const problems: [string, string][] = [];
  let total = 0;
  durations.forEach((duration, index) => {
    const key = keys[index]!;
    if (duration > MAX_TRANSITION_SECONDS) {
      problems.push([key, `expected at most ${MAX_TRANSITION_SECONDS} seconds, got ${duration}`]);
      return;
    }
    const frames = filmFrameCount(duration, fps);
    if (frames < 2) {
      problems.push([key, `${duration} s at ${fps} fps gives ${frames} film frame(s); a transition needs at least 2 (make it longer or raise fps)`]);
    }
    total += frames;
  });
  if (total > MAX_FILM_FRAMES) problems.push(['keyframes', `the film would have ${total} frames; the limit is ${MAX_FILM_FRAMES} (shorten the durations or lower fps)`]);
  return problems;
}

/**
 * Refuses a spec text that is too long, or whose brackets ([ and {, outside quoted strings) nest
 * deeper than MAX_SPEC_DEPTH, before any parser recurses into it. `path` names it in messages.
 */
export function checkSpecText(text: string, path: string): void {
  if (text.length > MAX_SPEC_CHARS) {
    throw new LatentBlendError(`${path} is ${text.length} characters long; a film spec may have at most ${MAX_SPEC_CHARS} (prompts are cut to the text encoder's limit anyway).`, 'too_large');
  }
  let depth = 0;
  let quote: string | undefined;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (quote !== undefined) {
      if (char === '\\' && quote === '"') index++;
      else if (char === quote) quote = undefined;
      continue;
    }
    if (char === '"' || char === "'") {
      // In YAML a quote inside a plain word (it's) does not start a string.
      const before = index === 0 ? ' ' : text[index - 1]!;
      if (/[\s[{,:\-]/.test(before)) quote = char;
    } else if (char === '#' && (index === 0 || /\s/.test(text[index - 1]!))) {
      const end = text.indexOf('\n', index);
      index = end < 0 ? text.length : end;
    } else if (char === '[' || char === '{') {
      depth += 1;
      if (depth > MAX_SPEC_DEPTH) throw tooDeep(path);
    } else if (char === ']' || char === '}') {
      depth = Math.max(0, depth - 1);
    }
  }
}

function tooDeep(path: string): LatentBlendError {
  return new LatentBlendError(`${path} nests lists or mappings more than ${MAX_SPEC_DEPTH} levels deep; a film spec needs 4.`, 'too_large');
}

/**
 * Refuses a parsed value (JSON body, YAML document) nested deeper than `maxDepth` levels, without
 * recursion (so a value 200,000 levels deep is answered, not a stack overflow).
 */
export function checkNesting(value: unknown, what: string, maxDepth = MAX_SPEC_DEPTH): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth >= maxDepth) throw new LatentBlendError(`${what} nests lists or mappings more than ${maxDepth} levels deep.`, 'too_large');
    for (const child of Object.values(current as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
}

/** YAML integers written in hexadecimal or octal (YAML 1.2 reads 0x10 as 16), with their line. */
export function nonDecimalNumbers(document: Document, text: string): string[] {
  const found: string[] = [];
  visit(document, {
    Scalar(_key, node) {
      if (typeof node.value === 'number' && (node.format === 'HEX' || node.format === 'OCT' || node.format === 'BIN')) {
        const offset = node.range?.[0] ?? 0;
        const line = text.slice(0, offset).split('\n').length;
        found.push(`line ${line}: ${JSON.stringify(text.slice(offset, node.range?.[1] ?? offset))} is not a decimal number; write it in decimal (${String(node.value)})`);
      }
    },
  });
  return found;
}

/** The stack overflow of a parser fed a deeply nested document, as a user error. */
export function isStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack/i.test(error.message);
}
