/**
 * CLIP tokenization as diffusers does it: BPE with the model's own vocabulary, bos/eos added,
 * truncated and padded to the text encoder's context (77 tokens). The BPE itself is the
 * @huggingface/tokenizers library's; this file only feeds it the tokenizer files and applies
 * diffusers' padding and truncation.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { LatentBlendError } from '../errors.ts';
import type { FileAccess } from '../runtime/platform.ts';
import { readJsonObject } from './folder.ts';

/**
 * Characters of a prompt that can matter, per token of the context: no CLIP token is longer
 * than this, so the first `maxLength` tokens always come from the first `maxLength * 64`
 * characters once whitespace runs are collapsed (as the tokenizer's normaliser does).
 */
export const PROMPT_CHARS_PER_TOKEN = 64;

/**
 * The part of `prompt` that can reach the text encoder: a prompt longer than
 * `maxLength * PROMPT_CHARS_PER_TOKEN` characters has its whitespace runs collapsed and is cut
 * there, so a multi-megabyte prompt costs no more than a long one (the rest would be dropped
 * by the token limit anyway; the caller still warns that tokens were dropped).
 */
export function promptHead(prompt: string, maxLength: number): string {
  const limit = maxLength * PROMPT_CHARS_PER_TOKEN;
  if (prompt.length <= limit) return prompt;
  const collapsed = prompt.replace(/\s+/gu, ' ');
  if (collapsed.length <= limit) return collapsed;
  // Do not split a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(collapsed[limit - 1]!) ? limit - 1 : limit;
  return collapsed.slice(0, end);
}

/** The result of tokenizing one prompt. */
export interface TokenizedPrompt {
  /** Exactly `maxLength` ids: bos, prompt tokens, eos, padding. */
  readonly ids: Int32Array;
  /** Prompt tokens that did not fit and were dropped (0 when nothing was cut). */
  readonly droppedTokens: number;
}

export interface ClipTokenizer {
  /** Context length including bos and eos (77 for CLIP). */
  readonly maxLength: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  tokenize(prompt: string): TokenizedPrompt;
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/**
 * Special tokens as tokenizer.json "added tokens". transformers' CLIPTokenizer (the one diffusers
 * uses) cuts the text at every special token before BPE, the pad token included: with SD 2.x's
 * pad token "!", a "!" in a prompt becomes the pad id. Listing them as added tokens makes the
 * BPE library cut at the same places.
 */
function specialTokenEntries(vocab: Readonly<Record<string, number>>, specials: readonly string[]): object[] {
  return specials
    .filter((token, index, all) => all.indexOf(token) === index && vocab[token] !== undefined)
    .map((content) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }));
}

/** Inclusive code point ranges that BERT's BasicTokenizer treats as CJK ideographs. */
const CJK_RANGES: readonly (readonly [number, number])[] = [
  [0x4e00, 0x9fff], [0x3400, 0x4dbf], [0x20000, 0x2a6df], [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f], [0x2b820, 0x2ceaf], [0xf900, 0xfaff], [0x2f800, 0x2fa1f],
];

/**
 * The text clean-up transformers' CLIPTokenizer applies before BPE when ftfy is not installed
 * (BasicTokenizer without accent stripping or punctuation splitting): control characters and
 * U+FFFD removed, other whitespace made a space, and a space put around every CJK ideograph so
 * each becomes a word of its own. Lower-casing and whitespace folding happen in the normalizer.
 */
export function cleanPromptText(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code === 0 || code === 0xfffd) continue;
    if (char === '\t' || char === '\n' || char === '\r' || /\p{Zs}/u.test(char)) {
      out += ' ';
      continue;
    }
    if (/[\p{Cc}\p{Cf}]/u.test(char)) continue;
    if (CJK_RANGES.some(([low, high]) => code >= low && code <= high)) {
      out += ` ${char} `;
      continue;
    }
    out += char;
  }
  return out;
}

/**
 * The tokenizer.json that CLIPTokenizerFast would write for a vocab.json + merges.txt pair
 * (most diffusers and Optimum exports ship only those two files): NFC, whitespace folding and
 * lower-casing; CLIP's word-splitting pattern; byte-level symbols; BPE with "</w>" word ends.
 */
function clipTokenizerJson(vocab: Record<string, number>, merges: string[], specials: readonly string[], unk: string): object {
  return {
    version: '1.0',
    added_tokens: specialTokenEntries(vocab, specials),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
          },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/**
 * Loads the CLIP tokenizer in `dir` (tokenizer.json, or vocab.json + merges.txt, with
 * tokenizer_config.json / special_tokens_map.json for the special tokens).
 */
export function loadClipTokenizer(files: FileAccess, dir: string): ClipTokenizer {
  const join = (...parts: string[]): string => files.join(...parts);
  const exists = (path: string): boolean => files.isFile(path);
  const configPath = join(dir, 'tokenizer_config.json');
  const config = exists(configPath) ? readJsonObject(files, configPath, 'the tokenizer config') : {};
  const specialsPath = join(dir, 'special_tokens_map.json');
  const specials = exists(specialsPath) ? readJsonObject(files, specialsPath, 'the special tokens map') : {};
  const special = (key: string, fallback: string): string => tokenContent(specials[key]) ?? tokenContent(config[key]) ?? fallback;
  const bos = special('bos_token', '<|startoftext|>');
  const eos = special('eos_token', '<|endoftext|>');
  const unk = special('unk_token', '<|endoftext|>');
  const pad = special('pad_token', eos);
  const configured = typeof config.model_max_length === 'number' ? config.model_max_length : 77;
  // Tokenizers saved without a limit report 1e30; CLIP text encoders have 77 positions.
  const maxLength = configured > 0 && configured <= 4096 ? configured : 77;

  let tokenizerJson: Record<string, unknown>;
  const jsonPath = join(dir, 'tokenizer.json');
  if (exists(jsonPath)) {
    tokenizerJson = readJsonObject(files, jsonPath, 'a Hugging Face tokenizer.json');
    const model = tokenizerJson.model as { vocab?: Record<string, number> } | undefined;
    const listed = Array.isArray(tokenizerJson.added_tokens) ? (tokenizerJson.added_tokens as { content?: string }[]) : [];
    const missing = specialTokenEntries(model?.vocab ?? {}, [bos, eos, pad, unk]).filter(
      (entry) => !listed.some((token) => token.content === (entry as { content: string }).content),
    );
    // We add bos/eos ourselves so truncation can keep them: drop the file's post-processor.
    tokenizerJson = { ...tokenizerJson, added_tokens: [...listed, ...missing], post_processor: null };
  } else {
    const vocab = readJsonObject(files, join(dir, 'vocab.json'), 'the BPE vocabulary (token → id)') as Record<string, number>;
    const mergesPath = join(dir, 'merges.txt');
    if (!exists(mergesPath)) throw new LatentBlendError(`Missing ${mergesPath}: expected the BPE merges.`, 'model_folder');
    const merges = files.readText(mergesPath)
      .split('\n')
      .filter((line, index) => line.trim() !== '' && !(index === 0 && line.startsWith('#version')));
    tokenizerJson = clipTokenizerJson(vocab, merges, [bos, eos, pad, unk], unk) as Record<string, unknown>;
  }
  const tokenizer = new Tokenizer(tokenizerJson, { ...config, model_max_length: maxLength });
  const idOf = (token: string, role: string): number => {
    const id = tokenizer.token_to_id(token);
    if (id === undefined) {
      throw new LatentBlendError(`${dir}: the ${role} ${JSON.stringify(token)} is not in the vocabulary.`, 'model_folder');
    }
    return id;
  };
  const bosId = idOf(bos, 'bos token');
  const eosId = idOf(eos, 'eos token');
  const padId = idOf(pad, 'pad token');

  return {
    maxLength,
    padId,
    bosId,
    eosId,
    tokenize(prompt: string): TokenizedPrompt {
      const body = tokenizer.encode(cleanPromptText(promptHead(prompt, maxLength)), { add_special_tokens: false }).ids;
      const room = maxLength - 2;
      const kept = body.length > room ? body.slice(0, room) : body;
      const ids = new Int32Array(maxLength).fill(padId);
      ids[0] = bosId;
      ids.set(kept, 1);
      ids[kept.length + 1] = eosId;
      return { ids, droppedTokens: body.length - kept.length };
    },
  };
}
