/**
 * Where long work reports its progress: the CLI draws bars on the terminal, the studio turns the
 * same calls into job progress. Library code that renders films talks only to this interface.
 */
import type { PipelineEvent } from '../pipeline/pipeline.ts';
import type { EngineEvent } from '../engine/engine.ts';

export interface Reporter {
  /** Listener to hand to the library. */
  readonly listener: (event: PipelineEvent) => void;
  /** Starts a bar for `total` units of `label`. */
  startBar(label: string, total: number, options?: { countSteps?: boolean }): void;
  /** Sets the bar to `value` (and optionally a new total). */
  updateBar(value: number, total?: number, detail?: string): void;
  stopBar(): void;
  /** Listener for the blending engine's events. */
  readonly engineListener: (event: EngineEvent) => void;
  warn(message: string): void;
  info(message: string): void;
}
