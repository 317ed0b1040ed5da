/**
 * PNG text chunks, written and read without a PNG library (sharp reads them but cannot write
 * them): `tEXt` for plain ASCII text, `iTXt` (uncompressed UTF-8) otherwise, which the image
 * tools that read a `parameters` chunk understand. Pure functions on bytes, so the studio's page uses
 * the reader too (a dropped PNG).
 *
 * A chunk is length (4 bytes, big-endian) + type (4) + data + CRC-32 of type and data (4).
 */

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
/** Longest keyword the PNG specification allows. */
const MAX_KEYWORD = 79;

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO 3309, the polynomial of PNG and zlib) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((value, index) => bytes[index] === value);
}

function isPlainAscii(text: string): boolean {
  // tEXt is Latin-1, but some readers (libvips, hence sharp) take it as UTF-8: anything beyond
  // ASCII goes into iTXt, which every reader decodes as UTF-8.
  return /^[\n\t\x20-\x7e]*$/.test(text);
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let index = 0; index < 4; index++) out[4 + index] = type.charCodeAt(index);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** The chunk that holds `text` under `keyword`: tEXt for plain ASCII, else iTXt (UTF-8). */
export function textChunk(keyword: string, text: string): Uint8Array {
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword) || keyword !== keyword.trim() || keyword.includes('  ')) {
    throw new Error(`not a PNG text keyword (1 to ${MAX_KEYWORD} Latin-1 characters, no leading, trailing or double spaces): ${JSON.stringify(keyword)}`);
  }
  const key = Uint8Array.from(keyword, (char) => char.charCodeAt(0));
  if (isPlainAscii(text)) return chunk('tEXt', concat([key, Uint8Array.of(0), Uint8Array.from(text, (char) => char.charCodeAt(0))]));
  // keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, UTF-8 text.
  return chunk('iTXt', concat([key, Uint8Array.of(0, 0, 0, 0, 0), new TextEncoder().encode(text)]));
}

interface RawChunk {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  readonly data: Uint8Array;
}

function chunks(png: Uint8Array): RawChunk[] {
  if (!isPng(png)) throw new Error('not a PNG file (bad signature)');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const found: RawChunk[] = [];
  let offset = 8;
  while (offset + 12 <= png.length) {
    const length = view.getUint32(offset);
    const end = offset + 12 + length;
    if (end > png.length) throw new Error('a truncated PNG file');
    const type = String.fromCharCode(...png.subarray(offset + 4, offset + 8));
    found.push({ type, start: offset, end, data: png.subarray(offset + 8, offset + 8 + length) });
    offset = end;
    if (type === 'IEND') break;
  }
  return found;
}

/**
 * The PNG with text chunks added after IHDR (before the image data, where readers that stop
 * early still find them). Existing chunks with the same keywords are removed.
 */
export function withPngText(png: Uint8Array, entries: Readonly<Record<string, string>>): Uint8Array {
  const all = chunks(png);
  if (all[0]?.type !== 'IHDR') throw new Error('a PNG file without IHDR first');
  const keywords = new Set(Object.keys(entries));
  const kept = all.filter((entry) => !((entry.type === 'tEXt' || entry.type === 'iTXt') && keywords.has(keywordOf(entry.data))));
  const added = Object.entries(entries).map(([keyword, text]) => textChunk(keyword, text));
  return concat([png.subarray(0, 8), ...kept.slice(0, 1).map((entry) => png.subarray(entry.start, entry.end)), ...added, ...kept.slice(1).map((entry) => png.subarray(entry.start, entry.end))]);
}

function keywordOf(data: Uint8Array): string {
  const nul = data.indexOf(0);
  return String.fromCharCode(...data.subarray(0, nul < 0 ? data.length : nul));
}

/**
 * The text chunks of a PNG, keyword → text: tEXt and uncompressed iTXt (compressed iTXt and
 * zTXt are skipped). Chunks with a bad CRC are skipped. Throws on a file that is no PNG.
 */
export function readPngText(png: Uint8Array): Map<string, string> {
  const texts = new Map<string, string>();
  for (const entry of chunks(png)) {
    if (entry.type !== 'tEXt' && entry.type !== 'iTXt') continue;
    const stored = new DataView(png.buffer, png.byteOffset + entry.end - 4, 4).getUint32(0);
    if (stored !== crc32(png.subarray(entry.start + 4, entry.end - 4))) continue;
    const { data } = entry;
    const nul = data.indexOf(0);
    if (nul <= 0) continue;
    const keyword = keywordOf(data);
    if (entry.type === 'tEXt') {
      texts.set(keyword, String.fromCharCode(...data.subarray(nul + 1)));
      continue;
    }
    if (data[nul + 1] !== 0) continue;
    const language = data.indexOf(0, nul + 3);
    const translated = language < 0 ? -1 : data.indexOf(0, language + 1);
    if (translated < 0) continue;
    texts.set(keyword, new TextDecoder().decode(data.subarray(translated + 1)));
  }
  return texts;
}
