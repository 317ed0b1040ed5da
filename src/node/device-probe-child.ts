/**
 * Entry of one device probe in a process of its own (src/node/device-probe.ts,
 * probeDeviceIsolated): probes the device named by the first argument and prints the report as
 * JSON on stdout.
 */
import { checkDeviceName } from '../runtime/onnx.ts';
import { probeDevice } from './device-probe.ts';

process.stdout.write(JSON.stringify(await probeDevice(checkDeviceName(process.argv[2] ?? ''))));
