import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { describe, expect, it } from 'vitest';

import { BudgetedDrain, DRAIN_BUDGET } from '../dist/backends/drain.js';
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
    await Promise.all(futures); // not wait(): it asks each Future, which settles every one done at once
    expect(settled).toBe(total);
    expect(seenByImmediate).toBeGreaterThan(0);
    // Not only "before the last": within one budget. The worker backend
    // settled every message its port delivered in the turn, thousands.
    expect(seenByImmediate).toBeLessThanOrEqual(DRAIN_BUDGET);
  });

  it("a timer on the loop fires between the first steps of a long batch of big tasks", async () => {
    // Each gzip fits in one step, which the native loop runs as soon as it
    // takes the task from its inbox. A batch of them must not hold up the
    // loop's timers until every one is done: the loop works on its backlog
    // in bounded turns.
    const loop = makeLoop();
    const text = Buffer.from(randomBytes(64 * 1024).toString('hex')); // 128 KiB, compressible
    const timer = loop.sleep(10);
    const gzips = Array.from({ length: 200 }, () => loop.gzip(text));
    let gzipsDone = 0;
    for (const future of gzips) future.addDoneCallback(() => gzipsDone++);
    let doneWhenTimerFired = -1;
    timer.addDoneCallback(() => (doneWhenTimerFired = gzipsDone));
    await wait([timer, ...gzips]);
    expect(gzipsDone).toBe(200);
    expect(doneWhenTimerFired).toBeGreaterThanOrEqual(0);
    expect(doneWhenTimerFired).toBeLessThan(100);
  });

  it('a timer on the loop fires while a small input expands to 256 MiB', async () => {
    // The worker backend ran zlib on a whole input chunk in one call: 256 KiB
    // of gzip bomb held its thread (timers, timeouts) for the whole 256 MiB.
    const loop = makeLoop();
    const bomb = zlib.gzipSync(Buffer.alloc(256 * 2 ** 20));
    const expanded = loop.gunzip(bomb);
    const timer = loop.sleep(5, 'timer');
    expect(await Promise.race([expanded.then(() => 'expanded'), timer])).toBe('timer');
    expect((await expanded).byteLength).toBe(256 * 2 ** 20);
  });

  it('a timer on the loop fires while a large file is written, and while it is read back', async () => {
    // The worker backend read and wrote a file in one go on its thread:
    // a sleep(5) came back after 1.4 s behind a 1 GiB read.
    const loop = makeLoop();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sideloop-'));
    const file = path.join(dir, 'big');
    const data = new Uint8Array(new SharedArrayBuffer(256 * 2 ** 20)).fill(7); // shared: the worker backend takes it in place
    try {
      const written = loop.writeFile(file, data);
      expect(await Promise.race([written.then(() => 'written'), loop.sleep(5, 'timer')])).toBe('timer');
      await written;
      const read = loop.readFile(file);
      expect(await Promise.race([read.then(() => 'read'), loop.sleep(5, 'timer')])).toBe('timer');
      expect((await read).equals(data)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('a timer on the loop fires while a large Buffer is compressed', async () => {
    // The worker backend gets such an input in chunks, and worked on each as
    // it arrived: behind at level 9, it ran a backlog of chunks in one turn.
    const loop = makeLoop();
    await loop.sleep(0); // started: the chunks go as fast as the thread takes them
    const compressed = loop.gzip(Buffer.alloc(64 * 2 ** 20, 'a'), { level: 9 });
    const timer = loop.sleep(30, 'timer'); // by then a backlog of chunks has formed
    expect(await Promise.race([compressed.then(() => 'compressed'), timer])).toBe('timer');
    await compressed;
  });
});

describe('the completion budget', () => {
  it('is counted across wake-ups: however many a turn brings, it settles one budget', async () => {
    // As on the worker backend: a port delivers, in one turn, every message
    // that came while the main thread was busy, each a wake-up.
    let waiting = 0;
    let settled = 0;
    const drain = new BudgetedDrain((limit) => {
      const n = Math.min(limit, waiting);
      waiting -= n;
      settled += n;
      return n;
    });
    for (let message = 0; message < 20; message++) {
      waiting += 150;
      drain.wake();
    }
    expect(settled).toBe(DRAIN_BUDGET);
    await new Promise((resolve) => setImmediate(resolve)); // the turn that follows goes on
    expect(settled).toBe(2 * DRAIN_BUDGET);
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(3000);
    waiting += 10; // a later wake-up settles at once, within what is left of the budget
    drain.wake();
    expect(settled).toBe(3010);
  });

  it('counts what a wake-up from inside a batch brings, and settles it', async () => {
    // With spin, a done callback's submission may be answered at once and
    // wake the drain that runs the callback: that drain worked out its room
    // from a count not yet updated, and settled a second budget in the turn.
    let waiting = 600;
    let settled = 0;
    let answered = false;
    const drain = new BudgetedDrain((limit) => {
      const n = Math.min(limit, waiting);
      waiting -= n;
      settled += n;
      if (!answered) {
        answered = true;
        waiting += 600;
        drain.wake(); // from inside the batch, as a callback's flush does
      }
      return n;
    });
    drain.wake();
    expect(settled).toBe(DRAIN_BUDGET);
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(1200);
  });
});
