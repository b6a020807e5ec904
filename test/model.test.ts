/**
 * Model-based fuzzing: random sequences of lifecycle and task operations,
 * checked after every step against a small model of what must hold.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { EventLoop, EventLoopClosedError, InvalidStateError, type Future } from '../dist/index.js';
import { BACKENDS } from './helpers.js';

interface Tracked {
  future: Future<unknown>;
  callbacks: number;
  signal?: AbortController;
}

interface Model {
  accepted: Tracked[];
  rejectedAtSubmit: number;
  stopping: Promise<void> | undefined;
}

interface Real {
  loop: EventLoop;
}

const TASKS = ['sleep', 'hash', 'gzip', 'badGunzip'] as const;

function submit(loop: EventLoop, kind: (typeof TASKS)[number], ms: number, timeout: number | undefined, signal: AbortSignal | undefined) {
  const options = { timeout, signal };
  switch (kind) {
    case 'sleep':
      return loop.sleep(ms, ms, options);
    case 'hash':
      return loop.hash('sha1', `data ${ms}`, options);
    case 'gzip':
      return loop.gzip(`data ${ms}`, options);
    case 'badGunzip':
      return loop.gunzip('not gzip at all', options);
  }
}

/** What must hold after every step. */
function check(model: Model, real: Real) {
  const { loop } = real;
  expect(['idle', 'running', 'stopping', 'stopped']).toContain(loop.state);
  // done() first: asking it settles what the loop has finished, as state
  // does, and not only for the Future asked: a later one's done() may settle
  // one counted a moment ago. Counted again until a whole pass settled none.
  let notDone: number;
  for (let before = -1; before !== loop.pending; ) {
    before = loop.pending;
    notDone = model.accepted.filter((t) => !t.future.done()).length;
  }
  const stats = loop.stats();
  expect(loop.pending).toBe(notDone!);
  expect(stats.pending).toBe(notDone!);
  expect(stats.submitted).toBe(model.accepted.length);
  expect(stats.completed + stats.failed + stats.cancelled + stats.pending).toBe(stats.submitted);
  for (const t of model.accepted) {
    // A done callback runs exactly once, when (and only when) the Future is done.
    const done = t.future.done(); // first: it may settle the Future, running its callback
    expect(t.callbacks).toBe(done ? 1 : 0);
  }
  if (loop.state === 'idle') expect(stats.submitted).toBe(0);
}

class Submit implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly kind: (typeof TASKS)[number],
    readonly ms: number,
    readonly timeout: number | undefined,
    readonly withSignal: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const controller = this.withSignal ? new AbortController() : undefined;
    const future = submit(real.loop, this.kind, this.ms, this.timeout, controller?.signal);
    if (real.loop.state === 'stopping' && future.done() && future.exception() instanceof EventLoopClosedError) {
      model.rejectedAtSubmit++;
      return;
    }
    const tracked: Tracked = { future, callbacks: 0, signal: controller };
    // Counted synchronously, as the contract says callbacks run once when done.
    future.addDoneCallback(() => tracked.callbacks++);
    model.accepted.push(tracked);
    await Promise.resolve(); // a callback on an already done Future runs on a later microtask
    check(model, real);
  }
  toString = () => `submit(${this.kind}, ${this.ms}, timeout ${this.timeout}, signal ${this.withSignal})`;
}

class Cancel implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check = (model: Readonly<Model>) => model.accepted.length > 0;
  async run(model: Model, real: Real) {
    const t = model.accepted[this.index % model.accepted.length]!;
    const wasFinished = t.future.state === 'finished';
    // The loop may finish the work between the two: cancel() keeps its result then.
    const cancelled = t.future.cancel();
    if (wasFinished) expect(cancelled).toBe(false);
    expect(t.future.state).toBe(cancelled ? 'cancelled' : 'finished');
    check(model, real);
  }
  toString = () => `cancel(#${this.index})`;
}

class Abort implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check = (model: Readonly<Model>) => model.accepted.some((t) => t.signal);
  async run(model: Model, real: Real) {
    const withSignals = model.accepted.filter((t) => t.signal);
    const t = withSignals[this.index % withSignals.length]!;
    const wasFinished = t.future.state === 'finished';
    t.signal!.abort();
    // As cancel(): work the loop finished meanwhile keeps its result.
    if (wasFinished) expect(t.future.state).toBe('finished');
    else expect(['cancelled', 'finished']).toContain(t.future.state);
    check(model, real);
  }
  toString = () => `abort(#${this.index})`;
}

class BlockingResult implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly index: number,
    readonly timeout: number,
  ) {}
  check = (model: Readonly<Model>) => model.accepted.length > 0;
  async run(model: Model, real: Real) {
    const t = model.accepted[this.index % model.accepted.length]!;
    try {
      t.future.result(this.timeout);
      expect(t.future.state).toBe('finished');
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'TimeoutError' && !t.future.done()) expect(t.future.done()).toBe(false);
      else expect(t.future.done()).toBe(true); // the task's own error, or CancelledError
    }
    check(model, real);
  }
  toString = () => `result(#${this.index}, ${this.timeout})`;
}

class Shutdown implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly cancelPending: boolean,
    readonly awaitIt: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real) {
    const before = real.loop.state;
    const promise = real.loop.shutdown({ cancelPending: this.cancelPending });
    if (before === 'running' || before === 'stopping') {
      expect(real.loop.state).toBe('stopping');
      model.stopping = promise;
    }
    if (this.cancelPending) expect(model.accepted.every((t) => t.future.done())).toBe(true);
    if (this.awaitIt) {
      await promise;
      expect(['idle', 'stopped']).toContain(real.loop.state);
      expect(model.accepted.every((t) => t.future.done())).toBe(true);
      model.stopping = undefined;
    }
    check(model, real);
  }
  toString = () => `shutdown(cancelPending ${this.cancelPending}, await ${this.awaitIt})`;
}

class Start implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    if (real.loop.state === 'stopping') {
      expect(() => real.loop.start()).toThrow(InvalidStateError);
    } else {
      expect(real.loop.start()).toBe(real.loop);
      expect(real.loop.state).toBe('running');
    }
    check(model, real);
  }
  toString = () => 'start()';
}

class Tick implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(model: Model, real: Real) {
    await new Promise((resolve) => setImmediate(resolve));
    check(model, real);
  }
  toString = () => 'tick';
}

const commands = [
  fc.tuple(fc.constantFrom(...TASKS), fc.integer({ min: 0, max: 30 }), fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }), fc.boolean()).map(
    ([kind, ms, timeout, signal]) => new Submit(kind, ms, timeout, signal),
  ),
  fc.nat().map((i) => new Cancel(i)),
  fc.nat().map((i) => new Abort(i)),
  fc.tuple(fc.nat(), fc.constantFrom(0, 1, 50)).map(([i, t]) => new BlockingResult(i, t)),
  fc.tuple(fc.boolean(), fc.boolean()).map(([c, a]) => new Shutdown(c, a)),
  fc.constant(new Start()),
  fc.constant(new Tick()),
];

describe.each(BACKENDS)('model-based fuzzing (%s backend)', (backend) => {
  it('random operation sequences keep every invariant, and every Future settles exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (cmds) => {
        const model: Model = { accepted: [], rejectedAtSubmit: 0, stopping: undefined };
        const real: Real = { loop: new EventLoop({ backend }) };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        // The end of every run: a full shutdown settles everything, once.
        await real.loop.shutdown();
        expect(model.accepted.every((t) => t.future.done() && t.callbacks === 1)).toBe(true);
        const stats = real.loop.stats();
        expect(stats).toMatchObject({ pending: 0, running: 0, submitted: model.accepted.length });
        expect(stats.completed + stats.failed + stats.cancelled).toBe(model.accepted.length);
      }),
      { numRuns: 150 },
    );
  });
});
