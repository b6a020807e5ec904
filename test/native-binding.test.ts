/** The addon's protocol itself, below the TypeScript layer: odd input never crashes or loses a task. */
import { describe, expect, it } from 'vitest';

import { PACKAGE_DIR, runScript } from './helpers.js';

interface Handle {
  submit(batch: Float64Array, count: number, objects: unknown[], busy?: boolean): void;
  wait(slot: number, ms: number): boolean;
  drain(max?: number): number;
  stop(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const binding = require('node-gyp-build')(PACKAGE_DIR) as { NativeLoop: new (...args: unknown[]) => Handle };

describe('the native binding', () => {
  it('a task description it cannot use comes back as a failed task, not a crash or a lost slot', () => {
    const ids = new Uint32Array(16);
    const statuses = new Uint8Array(16);
    const payloads: unknown[] = [];
    const loop = new binding.NativeLoop('binding-test', false, () => {}, ids, statuses, payloads, 0);
    // [slot, kind, timeout, number]: an unknown kind, a hash without bytes, a good sleep(0), and
    // an unknown kind with a timeout of 0 (which must not hide the mismatch as a timeout)
    loop.submit(new Float64Array([0, 99, -1, 0, 1, 1, -1, 2, 2, 0, -1, 0, 3, 99, 0, 0]), 4, [undefined, 'not bytes', undefined, undefined]);
    for (const slot of [0, 1, 2, 3]) expect(loop.wait(slot, -1)).toBe(true);
    expect(loop.drain()).toBe(4);
    const bySlot = new Map([0, 1, 2, 3].map((i) => [ids[i], { status: statuses[i], payload: payloads[i] }]));
    expect(bySlot.get(0)).toMatchObject({ status: 1, payload: { code: 'ERR_SIDELOOP_BAD_TASK' } });
    expect(bySlot.get(1)).toMatchObject({ status: 1, payload: { code: 'ERR_SIDELOOP_BAD_TASK' } });
    expect(bySlot.get(2)).toMatchObject({ status: 0 });
    expect(bySlot.get(3)).toMatchObject({ status: 1, payload: { code: 'ERR_SIDELOOP_BAD_TASK' } });
    loop.stop();
  });

  it('drain(max) hands back at most max, then the rest; an odd max counts as none or as all', () => {
    const ids = new Uint32Array(16);
    const loop = new binding.NativeLoop('binding-test', false, () => {}, ids, new Uint8Array(16), [], 0);
    const sleeps = new Float64Array(Array.from({ length: 6 }, (_, slot) => [slot, 0, -1, 0]).flat());
    loop.submit(sleeps, 6, []);
    for (let slot = 0; slot < 6; slot++) expect(loop.wait(slot, -1)).toBe(true);
    expect(loop.drain(0)).toBe(0);
    expect(loop.drain(-5)).toBe(0);
    expect(loop.drain(2)).toBe(2);
    expect(loop.drain(1.5)).toBe(1);
    expect(loop.drain(NaN)).toBe(3); // all that is left
    loop.submit(sleeps, 2, []);
    for (let slot = 0; slot < 2; slot++) expect(loop.wait(slot, -1)).toBe(true);
    expect(loop.drain(1e9)).toBe(2);
    loop.stop();
  });

  it('after a stop has been drained dry, a late submission still comes back, cancelled', () => {
    // The drain's scratch space goes once a stopped loop has handed
    // everything back, and is made again if anything more comes.
    const ids = new Uint32Array(16);
    const statuses = new Uint8Array(16);
    const loop = new binding.NativeLoop('binding-test', false, () => {}, ids, statuses, [], 0);
    loop.submit(new Float64Array([0, 0, -1, 0]), 1, []);
    expect(loop.wait(0, -1)).toBe(true);
    loop.stop();
    expect(loop.drain()).toBe(1);
    expect(loop.drain()).toBe(0);
    // To the stopped loop: a sleep, and a hash (kept in the tables by slot, made again too).
    loop.submit(new Float64Array([1, 0, -1, 0, 40, 1, -1, 2]), 2, [undefined, new Uint8Array(8)]);
    expect(loop.drain()).toBe(2);
    expect([...ids.slice(0, 2)].sort((a, b) => a - b)).toEqual([1, 40]);
    expect([...statuses.slice(0, 2)]).toEqual([2, 2]); // both cancelled
  });

  it('a batch with a slot or kind out of range throws a RangeError and submits nothing', () => {
    const ids = new Uint32Array(16);
    const loop = new binding.NativeLoop('binding-test', false, () => {}, ids, new Uint8Array(16), [], 0);
    const bytes = new Uint8Array(4);
    // [slot, kind, timeout, number]: a good hash first, then the bad entry
    for (const [slot, kind] of [[-1, 1], [2 ** 32 - 1, 1], [2 ** 40, 1], [NaN, 1], [1, NaN], [1, -1], [1, 1e9]]) {
      expect(() => loop.submit(new Float64Array([0, 1, -1, 2, slot!, kind!, -1, 2]), 2, [bytes, bytes])).toThrow(RangeError);
    }
    // Nothing of those batches reached the loop: the first task of a good one comes back alone.
    loop.submit(new Float64Array([3, 1, -1, 2]), 1, [bytes]);
    expect(loop.wait(3, -1)).toBe(true);
    expect(loop.drain()).toBe(1);
    expect(ids[0]).toBe(3);
    loop.stop();
  });

  it('a batch reusing a slot still in flight, or one slot twice, throws a RangeError and submits nothing', () => {
    // The second task's input replaced the first's in the addon's keeping:
    // the loop thread then read the first's freed memory (SIGSEGV).
    const ids = new Uint32Array(16);
    const loop = new binding.NativeLoop('binding-test', false, () => {}, ids, new Uint8Array(16), [], 0);
    const bytes = new Uint8Array(4);
    // [slot, kind, timeout, number]: hashes (kind 1, sha256)
    loop.submit(new Float64Array([0, 1, -1, 2]), 1, [bytes]);
    expect(loop.wait(0, -1)).toBe(true); // done, not yet drained: still its slot
    expect(() => loop.submit(new Float64Array([1, 1, -1, 2, 0, 1, -1, 2]), 2, [bytes, bytes])).toThrow(RangeError);
    expect(() => loop.submit(new Float64Array([1, 1, -1, 2, 1, 1, -1, 2]), 2, [bytes, bytes])).toThrow(RangeError);
    expect(loop.drain()).toBe(1);
    expect(ids[0]).toBe(0);
    // Drained, the slot is free again; nothing of the refused batches ran.
    loop.submit(new Float64Array([0, 1, -1, 2, 1, 1, -1, 2]), 2, [bytes, bytes]);
    for (const slot of [0, 1]) expect(loop.wait(slot, -1)).toBe(true);
    expect(loop.drain()).toBe(2);
    loop.stop();
  });

  it('a submit() called again from a getter of its own batch throws, and the batch goes once', () => {
    // The inner call found the outer batch's slots free (not yet taken) and
    // cleared the scratch batch under it: a task went twice (SIGSEGV).
    const ids = new Uint32Array(16);
    const loop = new binding.NativeLoop('binding-test', false, () => {}, ids, new Uint8Array(16), [], 0);
    const bytes = new Uint8Array(4);
    let inner: unknown;
    const objects: unknown[] = [];
    Object.defineProperty(objects, 0, {
      get() {
        try {
          loop.submit(new Float64Array([0, 1, -1, 2]), 1, [bytes]);
        } catch (error) {
          inner = error;
        }
        return bytes;
      },
    });
    loop.submit(new Float64Array([0, 1, -1, 2]), 1, objects);
    expect(inner).toBeInstanceOf(Error);
    expect(loop.wait(0, -1)).toBe(true);
    expect(loop.drain()).toBe(1);
    loop.stop();
  });

  it('a getter of its batch that rewrites the batch or shrinks it changes nothing of what goes', () => {
    // The numbers were checked, then read in place while the objects'
    // getters ran: a slot set past the tables after the check was written
    // to out of bounds (SIGSEGV), and a batch whose buffer shrank was read
    // after its free (SIGSEGV).
    const ids = new Uint32Array(16);
    const loop = new binding.NativeLoop('binding-test', false, () => {}, ids, new Uint8Array(16), [], 0);
    const bytes = new Uint8Array(4);
    const rewritten = new Float64Array([0, 1, -1, 2, 1, 1, -1, 2]); // [slot, kind, timeout, number]: two hashes
    const resizable = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer & { resize(n: number): void })(64, { maxByteLength: 2 ** 20 });
    const shrunk = new Float64Array(resizable);
    shrunk.set([2, 1, -1, 2, 3, 1, -1, 2]);
    const objectsOf = (change: () => void) => {
      const objects: unknown[] = [undefined, bytes];
      Object.defineProperty(objects, 0, {
        get() {
          change();
          return bytes;
        },
      });
      return objects;
    };
    loop.submit(rewritten, 2, objectsOf(() => (rewritten[4] = 5e7)));
    loop.submit(shrunk, 2, objectsOf(() => resizable.resize(0)));
    for (const slot of [0, 1, 2, 3]) expect(loop.wait(slot, -1)).toBe(true);
    expect(loop.drain()).toBe(4);
    expect([...ids.slice(0, 4)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    loop.stop();
  });

  it('drain buffers detached after construction make drain() throw, not write to freed memory', () => {
    // Their data pointers were kept from the constructor: a transferred
    // ArrayBuffer, once collected, took a write after free (SIGSEGV).
    const ids = new Uint32Array(16);
    const statuses = new Uint8Array(16);
    const loop = new binding.NativeLoop('binding-test', false, () => {}, ids, statuses, [], 0);
    structuredClone(ids.buffer, { transfer: [ids.buffer] });
    loop.submit(new Float64Array([0, 0, -1, 0, 1, 0, -1, 0]), 2, []);
    for (const slot of [0, 1]) expect(loop.wait(slot, -1)).toBe(true);
    expect(() => loop.drain()).toThrow(RangeError);
    loop.stop();
  });

  it('stop() works after the wake callback, held weakly while idle, was collected', async () => {
    // Holding it again for a busy loop did nothing then, and the release
    // in stop() failed: stop() threw "Unknown failure".
    const { code, stdout, stderr } = await runScript(
      `
      const binding = require('node-gyp-build')(${JSON.stringify(PACKAGE_DIR)});
      const loop = new binding.NativeLoop('binding-test', false, () => {}, new Uint32Array(16), new Uint8Array(16), [], 0);
      // Collected, and its reference cleared, from a later turn on.
      setImmediate(() => {
        globalThis.gc();
        loop.submit(new Float64Array([0, 0, -1, 60000]), 1, [], true);
        loop.stop();
        console.log('stopped', loop.running());
      });
      `,
      { nodeArgs: ['--expose-gc'], cwd: PACKAGE_DIR },
    );
    expect(stderr).toBe('');
    expect(stdout.trim()).toBe('stopped 0');
    expect(code).toBe(0);
  });

  it('rejects a malformed constructor call with a TypeError', () => {
    expect(() => new binding.NativeLoop()).toThrow(TypeError);
    expect(() => new binding.NativeLoop('x', true, () => {}, new Uint8Array(4), new Uint8Array(4), [])).toThrow(TypeError);
  });
});
