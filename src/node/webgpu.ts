/**
 * onnxruntime-node's WebGPU execution provider (Dawn, bundled in the npm package: Vulkan on
 * Linux, Direct3D 12 on Windows, Metal on macOS). It reaches a GPU without the CUDA binaries
 * that onnxruntime-node's install script would have to download. Its failures that are the
 * machine's (no adapter, no float16 shaders) get a message saying what to install or change.
 */
import { LatentBlendError } from '../errors.ts';
import { NO_FLOAT16_SHADERS, noFloat16Shaders } from '../runtime/onnx.ts';

/** What to do when Dawn finds no adapter, per operating system. */
function adapterFix(platform: NodeJS.Platform): string {
  if (platform === 'linux') {
    return (
      'On Linux, WebGPU runs on Vulkan: install the Vulkan loader and a driver (Debian/Ubuntu: ' +
      'libvulkan1 with the NVIDIA driver or mesa-vulkan-drivers), or set VK_ICD_FILENAMES to an ' +
      "installable client driver's JSON file (e.g. Chromium's SwiftShader, " +
      '/usr/lib/chromium/vk_swiftshader_icd.json: slow, on the CPU, for tests).'
    );
  }
  if (platform === 'win32') return 'On Windows, WebGPU runs on Direct3D 12: update the graphics driver.';
  if (platform === 'darwin') return 'On macOS, WebGPU runs on Metal (macOS 13 or later).';
  return 'WebGPU needs a Vulkan, Direct3D 12 or Metal driver.';
}

/**
 * A {@link LatentBlendError} for a WebGPU session failure that the user can fix on the machine,
 * or undefined for anything else (then the caller words the failure as usual).
 * @param message the error message onnxruntime-node gave
 * @param what the model, for the message, e.g. 'the UNet (/m/unet/model.onnx)'
 */
export function explainWebGpuFailure(message: string, what: string, platform: NodeJS.Platform = process.platform): LatentBlendError | undefined {
  if (/Failed to get a WebGPU adapter|No supported adapters|requestAdapter/i.test(message)) {
    return new LatentBlendError(`device webgpu: no GPU adapter was found on this machine, so ${what} cannot run there. ${adapterFix(platform)} Or use --device cpu.`, 'unavailable');
  }
  if (NO_FLOAT16_SHADERS.test(message)) return noFloat16Shaders(what);
  return undefined;
}
