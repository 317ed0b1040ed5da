/**
 * The one error class for user mistakes and environment problems (bad option, bad model folder,
 * missing execution provider). Front ends print its message without a stack trace; anything else
 * that escapes is a bug and is shown in full.
 */
export class LatentBlendError extends Error {
  constructor(
    message: string,
    /** Machine-readable category, e.g. 'invalid_input', 'model_folder', 'unavailable'. */
    readonly code: string = 'invalid_input',
  ) {
    super(message);
    this.name = 'LatentBlendError';
  }
}
