/**
 * Runs `work` every `intervalMs`, one run at a time (the next is scheduled when the last ends,
 * so a slow database never piles runs up). stop() cancels the next run and waits for the current.
 */
export function repeatEvery(intervalMs: number, work: () => Promise<void>): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = work().finally(schedule);
    }, intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
