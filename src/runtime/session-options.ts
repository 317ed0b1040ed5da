/**
 * ONNX Runtime session options per model role and execution provider, chosen by measurement.
 *
 * Measured on a random-weight model with the full SD-Turbo architecture (865 M-parameter UNet,
 * OpenCLIP-H text encoder, standard VAE) on a 2-core x86-64 CPU (issue #12, notes/runtime.md):
 * - UNet: creating the session at level `all` takes 7.5 s against 1.9 s at `extended` (11.5 vs
 *   2.1 s at 512 px) with no measurable difference per call, so `extended`.
 * - VAE decoder: 13% faster per decode at `all`; it runs once per frame, so the longer creation
 *   pays for itself within a few frames: `all` on the CPU.
 * - Text encoders and the VAE encoder run once per prompt or picture, so creation time dominates:
 *   `extended`.
 * Level `all` adds only layout optimisations (NCHWc), which ONNX Runtime applies to nodes on the
 * CPU provider; on GPU providers they would only lengthen creation, so every role gets
 * `extended` there. Roles not listed here (e.g. an LPIPS model) keep `all`, as before.
 */
import type { InferenceSession } from 'onnxruntime-common';
import type { Device } from './onnx.ts';

/** The model roles whose options are tuned (as `loadOnnxModel`'s `role` names them). */
export const TUNED_ROLES = ['UNet', 'VAE decoder', 'VAE encoder', 'text encoder', 'text encoder 2'] as const;

/** The options of the session that runs `role` on `device` (a fresh object each call). */
export function sessionOptionsFor(role: string, device: Device): InferenceSession.SessionOptions {
  // Errors only: ONNX Runtime's warnings (e.g. "some nodes were not assigned to the preferred
  // execution providers", printed for every WebGPU session since shape ops stay on the CPU) are
  // noise on a user's terminal; real failures still arrive as exceptions.
  return { executionProviders: [device], graphOptimizationLevel: optimizationLevel(role, device), logSeverityLevel: 3 };
}

/** The graph optimisation level for `role` on `device`; see the module comment for why. */
export function optimizationLevel(role: string, device: Device): 'extended' | 'all' {
  if (!(TUNED_ROLES as readonly string[]).includes(role)) return 'all';
  if (device !== 'cpu') return 'extended';
  return role === 'VAE decoder' ? 'all' : 'extended';
}
