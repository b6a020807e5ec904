import { describe, expect, it } from 'vitest';

import { wait } from '../dist/index.js';
import { BACKENDS, testLoops } from './helpers.js';

describe.each(BACKENDS)('main-thread fairness (%s backend)', (backend) => {
  const { makeLoop } = testLoops(backend);

  it('completions arrive in bounded batches: the main loop runs between them', async () => {
    const loop = makeLoop();
    const total = 50_000;
    let settled = 0;
    let seenByImmediate = -1;
    const futures = Array.from({ length: total }, () => loop.sleep(0));
    for (const future of futures) future.addDoneCallback(() => settled++);
    // Queued when the first completion arrives: it must run before the last one does.
    futures[0]!.addDoneCallback(() => setImmediate(() => (seenByImmediate = settled)));
    await wait(futures);
    expect(settled).toBe(total);
    expect(seenByImmediate).toBeGreaterThan(0);
    expect(seenByImmediate).toBeLessThan(total);
  });
});
