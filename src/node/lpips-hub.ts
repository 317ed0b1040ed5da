/**
 * The real LPIPS (AlexNet, v0.1) with no Python: the two-file ONNX export of
 * deepghs/imgutils-models (folder `lpips/`, MIT licence), fetched from the Hugging Face Hub into
 * the Hub cache on first use, like models (resumable, with progress, offline afterwards,
 * HF_HUB_OFFLINE honoured), pinned to one commit and checked by SHA-256.
 */
import { dirname } from 'node:path';
import { fetchPinnedFiles, type PinnedFiles, type ResolveModelOptions } from '../model/hub.ts';
import { LPIPS_DIFF_FILE, LPIPS_FEATURE_FILE } from './lpips-two-file.ts';

/** The repo and the files of the imgutils LPIPS export. */
export const IMGUTILS_LPIPS_REPO = 'deepghs/imgutils-models';
export const IMGUTILS_LPIPS_FILES = [`lpips/${LPIPS_FEATURE_FILE}`, `lpips/${LPIPS_DIFF_FILE}`] as const;

/**
 * ⚠ NOT FILLED IN YET. The commit of deepghs/imgutils-models and the SHA-256 of
 * lpips/lpips_feature.onnx and lpips/lpips_diff.onnx at that commit, which latentblend downloads
 * as its default LPIPS. The Hub could not be reached when this was written, and values are not
 * to be guessed: fill in the real ones, e.g. from
 *   GET https://huggingface.co/api/models/deepghs/imgutils-models/revision/main?blobs=true
 * ("sha" is the commit; each sibling's "lfs.sha256" is the file's SHA-256), as
 *   { repo: IMGUTILS_LPIPS_REPO, commit: '<40 hex>', files: [
 *       { path: 'lpips/lpips_feature.onnx', sha256: '<64 hex>' },
 *       { path: 'lpips/lpips_diff.onnx', sha256: '<64 hex>' } ] }
 * Until then (undefined) nothing is downloaded: LPIPS comes from --lpips, LATENTBLEND_LPIPS or
 * ~/.cache/latentblend/lpips-alex.onnx, else the rms-pixel fallback (with its warning).
 * tests/lpips-hub.test.ts checks the shape of whatever is filled in here.
 */
export const IMGUTILS_LPIPS_PIN: PinnedFiles | undefined = undefined;

/**
 * Where the pinned two-file LPIPS is in the Hub cache, downloading it first when it is not there
 * (see {@link fetchPinnedFiles} for the network rules and errors). Returns the folder holding
 * lpips_feature.onnx and lpips_diff.onnx.
 */
export async function fetchHubLpips(pin: PinnedFiles, options: ResolveModelOptions = {}): Promise<{ dir: string; fromCache: boolean }> {
  const fetched = await fetchPinnedFiles(pin, options);
  const dirs = new Set(fetched.paths.map((path) => dirname(path)));
  if (dirs.size !== 1) throw new Error(`LPIPS pin for ${pin.repo}: the two files must be in one folder, got ${[...dirs].join(', ')}.`);
  return { dir: [...dirs][0]!, fromCache: fetched.fromCache };
}
