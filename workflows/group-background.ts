/**
 * A group step that runs beside the passes instead of inside them (from BACKGROUND_STEPS_PATCH on):
 * writing hundreds of instance records, or describing every member and its targets, takes seconds to
 * tens of seconds against a busy S3 or EC2, and a pass that waited for them could not start the next
 * batch meanwhile. One run of each at a time; a pass that finds it busy leaves it be.
 */
export const BACKGROUND_STEPS_PATCH = '8-background-steps';

export class BackgroundStep {
  private running?: Promise<void>;

  /** Starts `work` unless a run is still going; `onDone` runs when it ends (a failed step records its own error). */
  start(work: () => Promise<void>, onDone: () => void = () => undefined): boolean {
    if (this.running) return false;
    this.running = work().finally(() => {
      this.running = undefined;
      onDone();
    });
    return true;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves once no run is going (before continue-as-new, or finishing). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
