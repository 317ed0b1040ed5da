/**
 * IP-Adapter in the studio (issue #13): a film's image prompts are uploaded pictures
 * (./pictures.ts) named by id, like control pictures; the IP-Adapter is named as a model is in
 * POST /api/model (./control.ts resolveRenderControl locates it). An IP-Adapter folder carries
 * the UNet exported with the adapter (docs/ip-adapter-onnx.md), so every model of a family with
 * IP-Adapter exports can take one that was exported for it; a local folder made for another
 * base model is refused before the render is queued.
 */
import { existsSync } from 'node:fs';
import { inspectIpAdapterFolder, ipAdapterProblems } from '../pipeline/ip-adapter.ts';
import type { ModelFamily, ModelFolder } from '../model/folder.ts';
import { LatentBlendError } from '../errors.ts';
import { nodeFiles } from '../node/platform.ts';

/** Model families the IP-Adapter exporter and loader support. */
const IP_ADAPTER_FAMILIES: readonly ModelFamily[] = ['sd', 'sdxl'];

/** Whether a model of this folder can take an IP-Adapter (one exported for its base model). */
export function takesIpAdapter(model: ModelFolder): boolean {
  return IP_ADAPTER_FAMILIES.includes(model.family);
}

/**
 * Refuses, as a spec error, an IP-Adapter together with a ControlNet, and an IP-Adapter folder
 * that does not fit `model` (another family or base UNet) or is no IP-Adapter folder. A Hub id (not a local folder yet) is checked when the
 * render loads it.
 */
export function checkIpAdapterFits(spec: { readonly ipAdapter?: string; readonly controlnet?: string }, model: ModelFolder, source: string): void {
  const { ipAdapter } = spec;
  if (ipAdapter === undefined) return;
  // No UNet export takes both (src/pipeline/unet.ts): say so now, not at the first UNet call.
  if (spec.controlnet !== undefined) {
    throw new LatentBlendError('Invalid film spec (key spec):\n  ipAdapter: an IP-Adapter together with a ControlNet is not supported yet; remove the ControlNet keys or the IP-Adapter keys');
  }
  if (!existsSync(ipAdapter)) return;
  let problems: string[];
  try {
    problems = ipAdapterProblems(inspectIpAdapterFolder(nodeFiles, ipAdapter), model);
  } catch (error) {
    if (error instanceof LatentBlendError) throw new LatentBlendError(`Invalid film spec (key spec):\n  ipAdapter: ${error.message}`);
    throw error;
  }
  if (problems.length > 0) {
    throw new LatentBlendError(`Invalid film spec (key spec):\n  ipAdapter: ${ipAdapter} does not fit this studio's model ${source}: ${problems.join('; ')}`);
  }
}
