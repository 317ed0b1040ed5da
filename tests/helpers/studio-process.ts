/**
 * `latentblend studio` from source in a child process, to be killed like a crashed server
 * (SIGKILL: nothing is cleaned up, no record is finished).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './golden.ts';

export interface StudioProcess {
  /** The URL it printed. */
  readonly url: string;
  /** Everything it printed on stdout so far. */
  stdout(): string;
  readonly child: ChildProcess;
  /** Kills it with SIGKILL and waits for it to be gone. */
  kill(): Promise<void>;
}

/** Starts the studio with these CLI arguments (add --model, --work-dir, --port 0) and waits for its URL. */
export function spawnStudio(args: readonly string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<StudioProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'bin.ts'), 'studio', '--quiet', ...args], {
    cwd: ROOT,
    env: { ...process.env, HF_HUB_OFFLINE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((gone) => child.once('exit', () => gone()));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((started, fail) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`the studio did not start in ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`the studio exited (${code}) before printing its URL: ${stderr}`));
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const url = /latentblend studio: (\S+)/.exec(stdout)?.[1];
      if (url === undefined) return;
      clearTimeout(timer);
      child.stdout!.resume();
      started({
        url,
        stdout: () => stdout,
        child,
        kill: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    });
  });
}
