/** Runs the latentblend CLI from source in a child process. */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './golden.ts';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Node's arguments that run the CLI from source with `args`. */
function cliArgv(args: readonly string[]): string[] {
  return ['--import', 'tsx', join(ROOT, 'src', 'cli', 'bin.ts'), ...args];
}

/** Runs the CLI to its end (at most 120 s), offline from the Hub, in `cwd` (default: the repository). */
export function runCliProcess(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliRun {
  const result = spawnSync(process.execPath, cliArgv(args), {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, HF_HUB_OFFLINE: '1', ...options.env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Starts the CLI (offline from the Hub, in the repository) and returns at once, for tests that kill or interrupt it. */
export function startCliProcess(args: readonly string[], stdio: StdioOptions): ChildProcess {
  return spawn(process.execPath, cliArgv(args), { cwd: ROOT, env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio });
}
