/** Messages between WorkerSession (main thread) and onnx-worker.ts (its worker thread). */
import type { InferenceSession } from 'onnxruntime-node';

/** A tensor as it crosses threads: element type, data (a typed array or strings) and dims. */
export interface WireTensor {
  readonly type: string;
  readonly data: Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Float64Array | Int16Array | Uint32Array | BigUint64Array | string[];
  readonly dims: readonly number[];
}

export type WorkerRequest =
  | { readonly id: number; readonly op: 'create'; readonly path: string; readonly options: InferenceSession.SessionOptions }
  | { readonly id: number; readonly op: 'run'; readonly feeds: Readonly<Record<string, WireTensor>> }
  | { readonly id: number; readonly op: 'release' };

export type WorkerReply =
  | { readonly id: number; readonly ok: false; readonly message: string }
  | {
      readonly id: number;
      readonly ok: true;
      readonly inputNames: readonly string[];
      readonly outputNames: readonly string[];
      readonly inputMetadata: readonly InferenceSession.ValueMetadata[];
      readonly outputMetadata: readonly InferenceSession.ValueMetadata[];
    }
  | { readonly id: number; readonly ok: true; readonly outputs: Readonly<Record<string, WireTensor>> }
  | { readonly id: number; readonly ok: true };
