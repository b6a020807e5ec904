/**
 * Argument fuzzing: every public entry point called with random values of
 * every type. The only allowed outcomes are a synchronous TypeError or
 * RangeError with a Node-style code, or a Future (which may fail). Never a
 * crash, a hang, or another kind of error.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { EventLoop, EventLoopGroup, Future, asCompleted, wait } from '../dist/index.js';
import { BACKENDS } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sideloop-fuzz-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Values of every type, including the ones the API accepts. */
const anyValue = fc.oneof(
  fc.anything({ withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true }),
  fc.constantFrom('sha256', 'md5', 'SHA1', '', 'x', -1, 0, 1, 9, 10, 2 ** 31, NaN, Infinity, null, undefined, [], {}),
  fc.uint8Array({ maxLength: 64 }),
  fc.record({ level: fc.anything(), timeout: fc.anything(), signal: fc.anything(), maxBuffer: fc.anything(), env: fc.anything(), cwd: fc.anything(), input: fc.anything() }, { requiredKeys: [] }),
);

function allowedOutcome(call: () => unknown): void {
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    expect(error instanceof TypeError || error instanceof RangeError, String(error)).toBe(true);
    expect(typeof (error as { code?: unknown }).code).toBe('string');
    return;
  }
  if (result instanceof Future) {
    result.catch(() => {}); // a failed Future is a fine outcome
    result.cancel();
  }
}

describe.each(BACKENDS)('argument fuzzing (%s backend)', (backend) => {
  it('task methods: a TypeError/RangeError with a code, or a Future', async () => {
    const loop = new EventLoop({ backend });
    const target = path.join(tmp, `${backend}-fuzz.bin`);
    const calls: [string, (a: unknown, b: unknown, c: unknown) => unknown][] = [
      ['sleep', (a, b, c) => loop.sleep(a as never, b, c as never)],
      ['hash', (a, b, c) => loop.hash(a as never, b as never, c as never)],
      ['gzip', (a, b) => loop.gzip(a as never, b as never)],
      ['gunzip', (a, b) => loop.gunzip(a as never, b as never)],
      ['deflate', (a, b) => loop.deflate(a as never, b as never)],
      ['inflate', (a, b) => loop.inflate(a as never, b as never)],
      ['readFile', (a, b) => loop.readFile(a as never, b as never)],
      // Paths and programs are fixed: random ones could write or run anything.
      ['writeFile', (a, b) => loop.writeFile(target, a as never, b as never)],
      ['exec', (a, b) => loop.exec('true', a as never, b as never)],
    ];
    for (const [, call] of calls) {
      fc.assert(
        fc.property(anyValue, anyValue, anyValue, (a, b, c) => allowedOutcome(() => call(a, b, c))),
        { numRuns: 150 },
      );
    }
    await loop.shutdown({ cancelPending: true });
    expect(loop.state).toBe('stopped');
  });

  it('Future, lifecycle and helper entry points: the same', async () => {
    const loop = new EventLoop({ backend });
    const future = loop.sleep(0, 'x');
    await future;
    fc.assert(
      fc.property(anyValue, anyValue, (a, b) => {
        allowedOutcome(() => future.result(a as never));
        allowedOutcome(() => future.exception(a as never));
        allowedOutcome(() => future.addDoneCallback(a as never));
        allowedOutcome(() => new EventLoop(a as never));
        allowedOutcome(() => new EventLoopGroup({ ...(typeof a === 'object' && a !== null ? a : {}), size: 1 } as never));
        allowedOutcome(() => void loop.shutdown(a as never)?.catch(() => {}));
        allowedOutcome(() => void wait(a as never, b as never));
        allowedOutcome(() => asCompleted(a as never, b as never));
      }),
      { numRuns: 300 },
    );
    await loop.shutdown({ cancelPending: true });
  });
});
