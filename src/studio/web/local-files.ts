/** The Cache API cache where the static studio keeps the files it made (served by ./local-sw.ts). */
export const FILES_CACHE = 'latentblend-files-v1';
