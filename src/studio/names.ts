/**
 * File names made from titles and prompts (downloads of films, saved specs): pure, so the page
 * uses the same rule as the server.
 */

/**
 * A file name made from a title: letters (any script) and digits kept, every other run of
 * characters one '-', at most 80 characters, never empty ("film"), never a dot file.
 */
export function safeFileStem(title: string): string {
  const cleaned = title
    .normalize('NFKC')
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '');
  // By code points, so that no character is cut in half.
  const stem = Array.from(cleaned).slice(0, 80).join('').replace(/-+$/, '');
  return stem === '' ? 'film' : stem;
}

/** `Content-Disposition` for downloading a file named after `title` (ASCII fallback and UTF-8 name). */
export function attachmentHeader(title: string, extension: string): string {
  const name = `${safeFileStem(title)}.${extension}`;
  const ascii = name.normalize('NFKD').replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '') || `film.${extension}`;
  return `attachment; filename="${ascii.startsWith('.') ? `film${ascii}` : ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
