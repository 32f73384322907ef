/** Ends a command with a chosen exit code after its output is written (not an error: nothing more is printed). */
export class CommandExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
