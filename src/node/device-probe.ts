/**
 * Does a device really work here? onnxruntime-node lists the providers it was built with, but a
 * listed provider can still fail when the session is made (no GPU adapter, no CUDA libraries).
 * A probe creates a session for a one-node model (y = x + x, built here in memory) on the device
 * and runs it once, so the answer is what a real model would meet first, in milliseconds.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { DEVICES, type Device } from '../runtime/onnx.ts';
import { availableDevices } from './platform.ts';
import { explainWebGpuFailure } from './webgpu.ts';

/** Protocol-buffer wire format, the little of it an ONNX model of one node needs. */
function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

function field(number: number, payload: number[] | string): number[] {
  const bytes = typeof payload === 'string' ? Array.from(new TextEncoder().encode(payload)) : payload;
  return [...varint((number << 3) | 2), ...varint(bytes.length), ...bytes];
}

function integer(number: number, value: number): number[] {
  return [...varint(number << 3), ...varint(value)];
}

/** ONNX element types of the probe: 1 float32, 10 float16. */
const ELEMENT_TYPES = { float32: 1, float16: 10 } as const;

/** A float tensor value of shape [4] named `name` (ONNX ValueInfoProto). */
function floatValue(name: string, type: keyof typeof ELEMENT_TYPES): number[] {
  const shape = field(2, field(1, integer(1, 4)));
  const tensorType = field(1, [...integer(1, ELEMENT_TYPES[type]), ...shape]);
  return [...field(1, name), ...field(2, tensorType)];
}

/** The ONNX model y = x + x on float32[4] or float16[4] (IR version 8, opset 13). */
export function probeModel(type: keyof typeof ELEMENT_TYPES = 'float32'): Uint8Array {
  const node = [...field(1, 'x'), ...field(1, 'x'), ...field(2, 'y'), ...field(3, 'add'), ...field(4, 'Add')];
  const graph = [...field(1, node), ...field(2, 'probe'), ...field(11, floatValue('x', type)), ...field(12, floatValue('y', type))];
  const opset = [...field(1, ''), ...integer(2, 13)];
  return Uint8Array.from([...integer(1, 8), ...field(8, opset), ...field(7, graph)]);
}

/** What a probe found for one device. */
export interface DeviceProbe {
  readonly device: Device;
  /** Built into this onnxruntime-node installation (its providers list and libraries). */
  readonly installed: boolean;
  /** A session was made and ran on it. */
  readonly works: boolean;
  /** Milliseconds to create the session and run it (when it worked). */
  readonly milliseconds?: number;
  /** WebGPU: whether float16 models run (the adapter's shader-f16 feature); false means float32 exports only. */
  readonly float16?: boolean;
  /** Why it does not work, and what to do: one or two sentences. */
  readonly reason?: string;
}

const NOT_INSTALLED: Partial<Record<Device, string>> = {
  cuda: 'not in this installation: fetch onnxruntime-node\'s CUDA binaries once (needs network): ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js',
  tensorrt: 'not in this installation: fetch onnxruntime-node\'s CUDA binaries (with TensorRT) once: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js',
  coreml: 'onnxruntime-node has CoreML on macOS only',
  dml: 'onnxruntime-node has DirectML on Windows only',
};

/** Probes one device (see the module comment); never throws. */
export async function probeDevice(device: Device, installed: readonly Device[] = availableDevices()): Promise<DeviceProbe> {
  if (!installed.includes(device)) return { device, installed: false, works: false, reason: NOT_INSTALLED[device] ?? 'not in this installation' };
  const started = performance.now();
  try {
    const session = await ort.InferenceSession.create(probeModel(), { executionProviders: [device], logSeverityLevel: 3 });
    try {
      const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]);
      const { y } = await session.run({ x });
      const values = Array.from(y!.data as Float32Array);
      if (values.join(',') !== '2,4,6,8') return { device, installed: true, works: false, reason: `a test computation gave ${values.join(', ')} instead of 2, 4, 6, 8` };
    } finally {
      await session.release();
    }
    const milliseconds = performance.now() - started;
    return { device, installed: true, works: true, milliseconds, ...(device === 'webgpu' ? { float16: await runsFloat16(device) } : {}) };
  } catch (error) {
    const message = String((error as Error)?.message ?? error);
    const explained = device === 'webgpu' ? explainWebGpuFailure(message, 'a test model') : undefined;
    return { device, installed: true, works: false, reason: explained?.message ?? message.split('\n')[0]!.slice(0, 300) };
  }
}

/** Whether y = x + x runs in float16 on `device` (WebGPU adapters without shader-f16 refuse it, at creation or on the first run). */
async function runsFloat16(device: Device): Promise<boolean> {
  try {
    const session = await ort.InferenceSession.create(probeModel('float16'), { executionProviders: [device], logSeverityLevel: 3 });
    try {
      // 1, 2, 3, 4 as IEEE half floats.
      await session.run({ x: new ort.Tensor('float16', Uint16Array.from([0x3c00, 0x4000, 0x4200, 0x4400]), [4]) });
    } finally {
      await session.release();
    }
    return true;
  } catch {
    return false;
  }
}

/** Probes every device onnxruntime-node knows, one after the other (in DEVICES order). */
export async function probeDevices(): Promise<DeviceProbe[]> {
  const installed = availableDevices();
  const probes: DeviceProbe[] = [];
  for (const device of DEVICES) probes.push(await probeDevice(device, installed));
  return probes;
}

/** The script that runs one probe in a process of its own (this module's sibling, .ts or .js as this one). */
export const PROBE_CHILD = fileURLToPath(import.meta.url).replace(/device-probe\.(ts|js)$/, 'device-probe-child.$1');

/** Longest a probe in its own process may take (a GPU driver's first start can be slow). */
const PROBE_TIMEOUT_MS = 120_000;

/**
 * Probes `device` in a child process, so that a driver that aborts the process (it happens with
 * broken GPU set-ups) costs that probe only: its report says how the process ended. `script` is
 * the child's entry (tests replace it).
 */
export function probeDeviceIsolated(device: Device, script: string = PROBE_CHILD): Promise<DeviceProbe> {
  return new Promise((resolve) => {
    // The same loader flags as ours (e.g. tsx when run from the sources).
    const child = spawn(process.execPath, [...process.execArgv, script, device], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), PROBE_TIMEOUT_MS);
    const failed = (reason: string): DeviceProbe => ({ device, installed: true, works: false, reason });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve(failed(`the probe process could not start: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        const probe = JSON.parse(out) as DeviceProbe;
        if (probe.device === device) return resolve(probe);
      } catch {
        // Fall through: the process ended without its report.
      }
      const how = signal !== null ? `was killed by ${signal}` : `exited with status ${String(code)}`;
      // Its first words on stderr (what came after is usually the runtime's own stack dump).
      const first = err.split('\n').find((line) => line.trim() !== '');
      resolve(failed(`the probe process ${how} (the ${device} driver may have crashed)${first !== undefined ? `: ${first.trim().slice(0, 200)}` : ''}`));
    });
  });
}

/** {@link probeDevices}, with every installed device but the CPU probed in a process of its own. */
export async function probeDevicesIsolated(): Promise<DeviceProbe[]> {
  const installed = availableDevices();
  const probes: DeviceProbe[] = [];
  for (const device of DEVICES) {
    probes.push(device !== 'cpu' && installed.includes(device) ? await probeDeviceIsolated(device) : await probeDevice(device, installed));
  }
  return probes;
}
