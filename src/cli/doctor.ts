/**
 * `latentblend doctor`: what works on this machine before a long render finds out: each device
 * (a real session on it, see src/node/device-probe.ts), ffmpeg and the film formats it can
 * write, and the LPIPS model. Nothing is downloaded.
 */
import { Command, Option } from 'commander';
import * as ort from 'onnxruntime-node';
import { DEVICES, checkDeviceName, type Device } from '../runtime/onnx.ts';
import { probeDevicesIsolated, type DeviceProbe } from '../node/device-probe.ts';
import { ffmpegCapabilities, locateFfmpeg } from '../io/ffmpeg.ts';
import { checkVideoEncoder, VIDEO_FORMATS, type VideoFormat } from '../io/video.ts';
import { chooseMetricWithReason } from '../node/metric.ts';
import { LatentBlendError } from '../errors.ts';

interface DoctorFlags {
  device?: string;
  json: boolean;
}

/** What the doctor found (the `--json` output). */
export interface DoctorReport {
  readonly onnxruntime: string;
  readonly node: string;
  readonly platform: string;
  readonly devices: readonly DeviceProbe[];
  readonly ffmpeg: { readonly path?: string; readonly source?: string; readonly version?: string; readonly formats: Readonly<Record<VideoFormat, boolean>>; readonly problem?: string };
  readonly lpips: { readonly found: boolean; readonly note?: string };
}

function message(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!;
}

async function ffmpegReport(): Promise<DoctorReport['ffmpeg']> {
  const formats = Object.fromEntries(VIDEO_FORMATS.map((format) => [format, false])) as Record<VideoFormat, boolean>;
  let location;
  try {
    location = locateFfmpeg();
  } catch (error) {
    return { formats, problem: message(error) };
  }
  try {
    const { version } = await ffmpegCapabilities(location.path);
    for (const format of VIDEO_FORMATS) {
      formats[format] = await checkVideoEncoder(`film.${format}`, { ffmpegPath: location.path, format }).then(
        () => true,
        () => false,
      );
    }
    return { path: location.path, source: location.source, version, formats };
  } catch (error) {
    return { path: location.path, source: location.source, formats, problem: message(error) };
  }
}

async function lpipsReport(): Promise<DoctorReport['lpips']> {
  try {
    // hubPin null: the doctor never downloads.
    const chosen = await chooseMetricWithReason({ device: 'cpu', hubPin: null });
    return chosen.fallback === undefined ? { found: true } : { found: false, note: chosen.fallback };
  } catch (error) {
    return { found: false, note: message(error) };
  }
}

/** Runs every check; never throws for what it finds. */
export async function doctorReport(): Promise<DoctorReport> {
  return {
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common ?? 'unknown',
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    // GPU probes in processes of their own: a driver that aborts costs its line, not the report.
    devices: await probeDevicesIsolated(),
    ffmpeg: await ffmpegReport(),
    lpips: await lpipsReport(),
  };
}

/** The report as lines for a terminal. */
export function formatDoctorReport(report: DoctorReport): string {
  const lines = [`onnxruntime-node ${report.onnxruntime} on ${report.platform}, Node ${report.node}`, 'devices (--device):'];
  for (const probe of report.devices) {
    const half = probe.float16 === false ? '; float32 models only: this adapter has no float16 shaders (shader-f16)' : '';
    const state = probe.works ? `works (a test session in ${Math.round(probe.milliseconds ?? 0)} ms${half})` : probe.installed ? `does not work: ${probe.reason}` : `not available: ${probe.reason}`;
    lines.push(`  ${probe.device.padEnd(9)} ${state}`);
  }
  const { ffmpeg } = report;
  if (ffmpeg.path === undefined) {
    lines.push(`ffmpeg: not found: ${ffmpeg.problem}`);
  } else {
    const formats = VIDEO_FORMATS.map((format) => `${format} ${ffmpeg.formats[format] ? 'yes' : 'no'}`).join(', ');
    lines.push(`ffmpeg: ${ffmpeg.path} (${ffmpeg.source})${ffmpeg.version !== undefined ? `, ${ffmpeg.version.replace(/ Copyright.*/, '')}` : ''}`);
    lines.push(ffmpeg.problem !== undefined ? `  problem: ${ffmpeg.problem}` : `  films: ${formats}`);
  }
  lines.push(report.lpips.found ? 'LPIPS: found (frames are measured perceptually)' : `LPIPS: not found. ${report.lpips.note ?? ''}`.trimEnd());
  return `${lines.join('\n')}\n`;
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('Check what works on this machine: each device (a test session on it), ffmpeg and the film formats, the LPIPS model. Downloads nothing.')
    .addOption(new Option('-d, --device <name>', 'exit with status 2 unless this device works (for scripts)').choices([...DEVICES]))
    .option('--json', 'print the report as JSON', false)
    .addHelpText('after', '\nExamples:\n  latentblend doctor\n  latentblend doctor --device webgpu --json')
    .action(async (flags: DoctorFlags) => {
      const report = await doctorReport();
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 1)}\n` : formatDoctorReport(report));
      if (flags.device !== undefined) {
        const device: Device = checkDeviceName(flags.device);
        const probe = report.devices.find((entry) => entry.device === device)!;
        if (!probe.works) throw new LatentBlendError(`device ${device} does not work here: ${probe.reason}`, 'unavailable');
      }
    });
}
