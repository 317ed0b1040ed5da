/**
 * The `latentblend` command line. Exit codes: 0 success, 1 failure, 2 bad usage (a flag, an
 * option value or an input file the user can fix). User mistakes print one clear message, never
 * a stack trace; unexpected errors print the stack for a bug report.
 */
import { Command, CommanderError } from 'commander';
import { LatentBlendError, fileSystemError } from '../errors.ts';
import { generateCommand } from './generate.ts';
import { transitionCommand } from './transition.ts';
import { refineCommand } from './refine.ts';
import { movieCommand } from './movie.ts';
import { studioCommand } from './studio.ts';
import { evalCommand } from './eval.ts';
import { workerCommand } from './worker.ts';
import { doctorCommand } from './doctor.ts';

/** Error codes that mean "fix your command or input" (exit 2) rather than "something failed" (exit 1). */
const USAGE_CODES = new Set([
  'invalid_input', 'exists', 'model_folder', 'unsupported', 'unavailable',
  'model_not_found', 'hub_not_found', 'hub_not_onnx', 'hub_gated', 'hub_auth',
  'unsafe_path', 'damaged', 'too_large',
]);

export function buildProgram(signal: AbortSignal = new AbortController().signal): Command {
  const program = new Command('latentblend')
    .description('Smooth video transitions between text prompts with diffusion models (latent blending) on ONNX Runtime.')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  program.addCommand(generateCommand());
  program.addCommand(transitionCommand(signal));
  program.addCommand(movieCommand(signal));
  program.addCommand(refineCommand(signal));
  program.addCommand(studioCommand(signal));
  program.addCommand(evalCommand(signal));
  program.addCommand(workerCommand(signal));
  program.addCommand(doctorCommand());
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function runCli(argv: readonly string[], signal?: AbortSignal): Promise<number> {
  const program = buildProgram(signal);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (caught) {
    // File-system failures (full disk, read-only folder, …) are the user's to fix: one line, exit 1.
    const error = fileSystemError(caught);
    if (error instanceof CommanderError) {
      // Commander already printed its message (or help/version, which exit 0).
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof LatentBlendError) {
      process.stderr.write(`error: ${error.message}\n`);
      return USAGE_CODES.has(error.code) ? 2 : 1;
    }
    if ((error as Error)?.name === 'AbortError') {
      process.stderr.write('interrupted\n');
      return 130;
    }
    process.stderr.write(`unexpected error (please report it): ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}
