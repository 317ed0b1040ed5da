/**
 * Worker-thread side of WorkerSession (worker-session.ts): owns one ONNX Runtime session.
 * onnxruntime-node creates sessions and runs them synchronously on the calling thread, so the
 * main thread hands both to this worker and stays free (studio requests, progress, cancel).
 *
 * Messages in: { id, op: 'create', path, options } | { id, op: 'run', feeds } | { id, op: 'release' }.
 * Messages out: { id, ok: true, ... } or { id, ok: false, message }.
 * Tensors travel as { type, data, dims }; output buffers are transferred, not copied.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { WireTensor, WorkerRequest, WorkerReply } from './worker-protocol.ts';

const port = parentPort;
let session: ort.InferenceSession | undefined;

function toWire(tensor: ort.Tensor): { wire: WireTensor; buffer: ArrayBuffer | undefined } {
  const data = tensor.data as WireTensor['data'];
  const buffer = ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer ? data.buffer : undefined;
  return { wire: { type: tensor.type, data, dims: [...tensor.dims] }, buffer };
}

async function handle(request: WorkerRequest): Promise<{ reply: WorkerReply; transfer: ArrayBuffer[] }> {
  switch (request.op) {
    case 'create': {
      session = await ort.InferenceSession.create(request.path, request.options);
      return {
        reply: {
          id: request.id,
          ok: true,
          inputNames: [...session.inputNames],
          outputNames: [...session.outputNames],
          inputMetadata: [...session.inputMetadata],
          outputMetadata: [...session.outputMetadata],
        },
        transfer: [],
      };
    }
    case 'run': {
      if (session === undefined) throw new Error('the session was not created');
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, tensor] of Object.entries(request.feeds)) {
        feeds[name] = new ort.Tensor(tensor.type as 'float32', tensor.data as Float32Array, tensor.dims);
      }
      const outputs = await session.run(feeds);
      const wires: Record<string, WireTensor> = {};
      const transfer = new Set<ArrayBuffer>();
      for (const [name, tensor] of Object.entries(outputs)) {
        const { wire, buffer } = toWire(tensor);
        wires[name] = wire;
        if (buffer !== undefined) transfer.add(buffer);
      }
      return { reply: { id: request.id, ok: true, outputs: wires }, transfer: [...transfer] };
    }
    case 'release': {
      await session?.release();
      session = undefined;
      return { reply: { id: request.id, ok: true }, transfer: [] };
    }
  }
}

port?.on('message', (request: WorkerRequest) => {
  handle(request).then(
    ({ reply, transfer }) => port.postMessage(reply, transfer),
    (error: unknown) => port.postMessage({ id: request.id, ok: false, message: error instanceof Error ? error.message : String(error) } satisfies WorkerReply),
  );
});
