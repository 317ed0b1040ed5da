/**
 * Limits and names of the pictures a studio keeps (picture keyframes), shared by the server
 * (./pictures.ts), the in-browser studio (src/browser/studio-local.ts) and the page. Pure.
 */

/** Largest upload accepted, in bytes (32 MiB). */
export const MAX_PICTURE_BYTES = 32 * 1024 * 1024;
/** Longest side of a stored picture, in pixels (larger pictures are scaled down, aspect kept). */
export const MAX_PICTURE_SIDE = 4096;
/** Most pictures kept per session. */
export const MAX_SESSION_PICTURES = 500;
/** Ids of uploaded pictures: also their file names under `<session>/files/` and in `/api/files/`. */
export const PICTURE_ID = /^picture-[0-9a-f]{24}\.png$/;
