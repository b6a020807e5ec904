import { describe, expect, it } from 'vitest';

import { inspect, promisify } from 'node:util';

import { EventLoop, EventLoopGroup, Future } from '../dist/index.js';
import { BACKENDS, runScript, testLoops } from './helpers.js';

const code = (c: string) => expect.objectContaining({ code: c });

describe('EventLoop options', () => {
  it.each([
    [{ backend: 'fast' }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ name: 7 }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    // The thread's name would end at the NUL, as Node refuses such strings for the OS.
    [{ name: 'a\0b' }, TypeError, 'ERR_INVALID_ARG_VALUE'],
    [{ keepAlive: 'yes' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ maxPending: 0 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxPending: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxPending: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxPending: NaN }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxPending: '10' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
    [{ spin: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ spin: 'a' }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ])('rejects %o with %s %s', (options, type, errorCode) => {
    expect(() => new EventLoop(options as never)).toThrow(type);
    expect(() => new EventLoop(options as never)).toThrow(code(errorCode));
  });

  it("words its messages as Node's own errors of the same code do", async () => {
    const loop = new EventLoop();
    // The same call to Node's own API, for the same option: the same words.
    const { setTimeout } = await import('node:timers/promises');
    const nodes = await setTimeout(1, undefined, { signal: 1 as never }).then(String, (error: Error) => error.message);
    expect(nodes).toMatch(/^The "options.signal" property/);
    expect(() => loop.sleep(1, undefined, { signal: 1 as never })).toThrow(nodes);
    expect(() => loop.sleep(-1)).toThrow('The value of "ms" is out of range. It must be >= 0 && <= 2147483647. Received -1');
    // Values shown as Node shows them, compared with Node's own errors of the same code.
    const received = (call: () => unknown) => {
      try {
        call();
      } catch (error) {
        return (error as Error).message.split('. Received ')[1];
      }
    };
    for (const value of [-1, NaN, 2 ** 40, -(2 ** 40), 0.5e300]) {
      expect(received(() => loop.sleep(value)), String(value)).toBe(received(() => Buffer.alloc(1).readUInt8(value)));
    }
    const future = loop.sleep(0);
    for (const value of [-0, NaN, true, "it's", 'x'.repeat(40), 5n, Symbol('s'), null, undefined, {}, [], Object.create(null), new (class Named {})()]) {
      expect(received(() => future.addDoneCallback(value as never)), inspect(value)).toBe(received(() => promisify(value as never)));
    }
    // Where Node's own check throws a TypeError without a code, a code still.
    expect(() => future.addDoneCallback({ constructor: 5 } as never)).toThrow(code('ERR_INVALID_ARG_TYPE'));
    expect(() => new EventLoop({ name: 'a\0b' })).toThrow("The property 'options.name' must be a string without null bytes. Received 'a\\x00b'");
    expect(() => loop.exec('')).toThrow(/^The argument 'file' .* Received ''$/);
    await future;
    await loop.shutdown();
  });

  it('rejects options that are not an object', () => {
    expect(() => new EventLoop('native' as never)).toThrow(code('ERR_INVALID_ARG_TYPE'));
    expect(() => new EventLoop(null as never)).toThrow(code('ERR_INVALID_ARG_TYPE'));
  });

  it('accepts maxPending: Infinity and the defaults', () => {
    expect(new EventLoop({ maxPending: Infinity }).state).toBe('idle');
    expect(new EventLoop().name).toBe('sideloop');
  });

  it('EventLoopGroup checks size', () => {
    expect(() => new EventLoopGroup({ size: 0 })).toThrow(code('ERR_OUT_OF_RANGE'));
    expect(() => new EventLoopGroup({ size: 'x' as never })).toThrow(code('ERR_INVALID_ARG_TYPE'));
  });
});

describe.each(BACKENDS)('bad input to sleep (%s backend)', (backend) => {
  const { makeLoop } = testLoops(backend);

  it.each([
    [['x'], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[undefined], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[10n], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[-1], RangeError, 'ERR_OUT_OF_RANGE'],
    [[NaN], RangeError, 'ERR_OUT_OF_RANGE'],
    [[Infinity], RangeError, 'ERR_OUT_OF_RANGE'],
    [[2 ** 31], RangeError, 'ERR_OUT_OF_RANGE'],
    [[1, 'v', 'opts'], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[1, 'v', { signal: 'no' }], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[1, 'v', { signal: { aborted: false, addEventListener() {} } }], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [[1, 'v', { timeout: -5 }], RangeError, 'ERR_OUT_OF_RANGE'],
    [[1, 'v', { timeout: '5' }], TypeError, 'ERR_INVALID_ARG_TYPE'],
  ])('sleep(%o) throws %s %s and submits nothing', (args, type, errorCode) => {
    const loop = makeLoop();
    const sleep = loop.sleep.bind(loop) as (...a: unknown[]) => unknown;
    expect(() => sleep(...args)).toThrow(type);
    expect(() => sleep(...args)).toThrow(code(errorCode));
    expect(loop.state).toBe('idle');
    expect(loop.stats().submitted).toBe(0);
  });

  it('bad shutdown options throw', () => {
    const loop = makeLoop();
    expect(() => loop.shutdown({ cancelPending: 1 } as never)).toThrow(code('ERR_INVALID_ARG_TYPE'));
    expect(() => loop.shutdown(5 as never)).toThrow(code('ERR_INVALID_ARG_TYPE'));
    // A group's too (it returned a rejected promise), touching none of its loops.
    const group = new EventLoopGroup({ size: 2 });
    group.sleep(0);
    expect(() => group.shutdown({ cancelPending: 1 } as never)).toThrow(code('ERR_INVALID_ARG_TYPE'));
    expect(group.state).toBe('running');
    return group.shutdown();
  });

  it('a storm of bad calls never crashes the process', async () => {
    const result = await runScript(`
      const { EventLoop } = require(SIDELOOP);
      const loop = new EventLoop({ backend: ${JSON.stringify(backend)} });
      const values = [undefined, null, -1, 0, 1.5, NaN, Infinity, -Infinity, 2 ** 53, '1', '', {}, [], () => {}, Symbol('s'), 1n, true, new Uint8Array(2)];
      let thrown = 0, ok = 0;
      for (const a of values) for (const b of values) for (const c of values) {
        try { const f = loop.sleep(a, b, c); f.cancel(); ok++; } catch (e) {
          if (!(e instanceof TypeError || e instanceof RangeError) || !e.code) throw e;
          thrown++;
        }
        try { loop.sleep(0).result(a); } catch (e) { if (!(e instanceof TypeError || e instanceof RangeError) && e.code !== 'ERR_SIDELOOP_TIMEOUT') throw e; }
      }
      loop.shutdown().then(() => console.log('survived', thrown > 0, ok > 0));
    `);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('survived true true\n');
  });
});

describe('a method or getter called without its object', () => {
  const LOOP_METHODS = ['start', 'shutdown', 'stats', 'sleep', 'hash', 'gzip', 'gunzip', 'deflate', 'inflate', 'readFile', 'writeFile', 'exec'] as const;
  const FUTURE_METHODS = ['done', 'running', 'cancelled', 'cancel', 'result', 'exception', 'addDoneCallback', 'then', 'catch', 'finally'] as const;
  const GETTERS = { EventLoop: ['state', 'pending'], EventLoopGroup: ['backend', 'name', 'state', 'pending'] } as const;
  // Passed on as a callback (`process.once('SIGTERM', loop.shutdown)`), or
  // called on a Proxy or on an object made from one. V8's own errors for
  // the private fields came without a code.
  const impostors = (of: object) => [undefined, process, {}, new Proxy(of, {}), Object.create(of)];

  it.each([
    ['EventLoop', () => new EventLoop(), LOOP_METHODS],
    ['EventLoopGroup', () => new EventLoopGroup({ size: 1 }), LOOP_METHODS],
  ] as const)("throws ERR_INVALID_THIS from every method and getter of an %s, and starts nothing", async (type, make, methods) => {
    const loop = make();
    for (const name of [...methods, Symbol.asyncDispose] as const) {
      const method = loop[name as keyof typeof loop] as (...args: unknown[]) => unknown;
      for (const self of impostors(loop)) {
        expect(() => method.call(self, 0), `${String(name)} on ${typeof self}`).toThrow(code('ERR_INVALID_THIS'));
        expect(() => method.call(self, 0)).toThrow(`Value of "this" must be of type ${type}`);
      }
    }
    for (const name of GETTERS[type]) {
      const getter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(loop), name)!.get!;
      for (const self of impostors(loop)) expect(() => getter.call(self), `${name} of ${typeof self}`).toThrow(code('ERR_INVALID_THIS'));
    }
    expect(loop.state).toBe('idle');
    await loop.shutdown();
  });

  it('throws ERR_INVALID_THIS from every method and getter of a Future, and leaves it as it was', async () => {
    const loop = new EventLoop();
    const future = loop.sleep(0, 'value');
    for (const name of FUTURE_METHODS) {
      const method = future[name] as (...args: unknown[]) => unknown;
      for (const self of impostors(future)) {
        expect(() => method.call(self, () => {}), `${name} on ${typeof self}`).toThrow(code('ERR_INVALID_THIS'));
      }
    }
    const getter = Object.getOwnPropertyDescriptor(Future.prototype, 'state')!.get!;
    for (const self of impostors(future)) expect(() => getter.call(self), `state of ${typeof self}`).toThrow(code('ERR_INVALID_THIS'));
    expect(await future).toBe('value');
    await loop.shutdown();
  });

  it('prints an object made from a loop, a group or a Future as it is, without a throw', async () => {
    const loop = new EventLoop();
    const group = new EventLoopGroup({ size: 1 });
    const future = loop.sleep(0);
    expect(inspect(Object.create(loop))).toBe('EventLoop {}');
    expect(inspect(Object.create(group))).toBe('EventLoopGroup {}');
    expect(inspect({ made: Object.create(future) })).toBe('{ made: Future {} }');
    expect(inspect(loop)).toMatch(/^EventLoop \{ name: 'sideloop', backend: '\w+', state: 'running', pending: 1 \}$/);
    await future;
    await Promise.all([loop.shutdown(), group.shutdown()]);
  });
});
