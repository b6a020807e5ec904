/**
 * Every way a process or worker thread can end, with loops in every state:
 * each case runs in a child process, and we check how it exited.
 */
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { BACKENDS, countProcessesSource, runScript } from './helpers.js';

const clean = (result: { code: number | null; signal: string | null; hung: boolean; stderr: string }, code = 0) => {
  expect(result.hung, `hung; stderr: ${result.stderr}`).toBe(false);
  expect(result.signal, `killed by a signal; stderr: ${result.stderr}`).toBeNull();
  expect(result.code, `stderr: ${result.stderr}`).toBe(code);
};

describe.each(BACKENDS)('process and thread exit (%s backend)', (backend) => {
  const prelude = `const sideloop = require(SIDELOOP); const BACKEND = ${JSON.stringify(backend)};`;

  it('an idle started loop lets the process exit by itself', async () => {
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND }).start();
      loop.sleep(1, 'done').then((v) => console.log(v));
      process.on('exit', () => console.log('exit', loop.state));
    `);
    clean(result);
    expect(result.stdout).toBe('done\nexit running\n');
  });

  it('a pending sleep keeps the process alive until it fires', async () => {
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      loop.sleep(300, 'fired').then((v) => console.log(v));
      process.on('exit', () => console.log('exit', loop.stats().completed));
    `);
    clean(result);
    expect(result.stdout).toBe('fired\nexit 1\n');
  });

  it('with keepAlive: false a pending sleep does not keep the process alive', async () => {
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND, keepAlive: false });
      loop.sleep(60000).then(() => console.log('fired'));
      process.on('exit', () => console.log('exit', loop.pending));
    `);
    clean(result);
    expect(result.stdout).toBe('exit 1\n');
  });

  it('process.exit() with 10,000 sleeps in flight exits cleanly with its code', async () => {
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      for (let i = 0; i < 10000; i++) loop.sleep(i % 50);
      loop.sleep(0).then(() => { console.log('running', loop.pending > 0); process.exit(7); });
    `);
    clean(result, 7);
    expect(result.stdout).toBe('running true\n');
  });

  it.each(['process.exit()', 'a natural exit', 'an uncaught exception'])("an 'exit' listener can still use the loop, at %s", async (how) => {
    // The listener is added after the loop started and blocks on results, as
    // an 'exit' listener must. After an uncaught exception the native loops
    // used to be stopped at the 'exit' event, before this listener ran. The
    // first exec has the worker backend add its own 'exit' listener (which
    // kills the children left), before this one: it used to refuse this
    // listener's exec as cancelled.
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      const file = require('node:path').join(require('node:os').tmpdir(), 'sideloop-exit-listener-' + process.pid);
      loop.exec('true').then(() => {
        process.on('exit', (code) => {
          loop.writeFile(file, 'written at exit').result();
          const echoed = loop.exec('echo', ['echoed at exit']).result().stdout.toString().trim();
          console.log(loop.sleep(1, 'slept at exit').result(), require('node:fs').readFileSync(file, 'utf8'), echoed, code);
          require('node:fs').unlinkSync(file);
        });
        if (${JSON.stringify(how)} === 'process.exit()') {
          loop.sleep(60_000); // in flight at the exit
          process.exit(4);
        }
        if (${JSON.stringify(how)} === 'an uncaught exception') {
          loop.sleep(60_000);
          throw new Error('uncaught');
        }
      });
    `);
    const code = { 'process.exit()': 4, 'a natural exit': 0, 'an uncaught exception': 1 }[how]!;
    clean(result, code);
    expect(result.stdout).toBe(`slept at exit written at exit echoed at exit ${code}\n`);
  });

  it("a process.exit() an 'exit' listener's exception undoes leaves exec working", async () => {
    // The 'exit' event set process._exiting, and the process went on (the
    // exception handled): the worker backend, which holds the execs
    // submitted during an exit until a wait, held every later one for good.
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      process.on('uncaughtException', (error) => console.log('handled:', error.message));
      process.on('exit', () => { throw new Error('exit listener threw'); });
      setTimeout(() => process.exit(0), 10);
      setTimeout(async () => {
        console.log((await loop.exec('echo', ['hello'])).stdout.toString().trim());
        await loop.shutdown();
        console.log('shut down');
      }, 100);
    `);
    clean(result);
    expect(result.stdout).toBe('handled: exit listener threw\nhello\nshut down\nhandled: exit listener threw\n');
  });

  it('process.exit() straight after submitting, before the batch reaches the thread', async () => {
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      for (let i = 0; i < 10000; i++) loop.sleep(10);
      process.exit(3);
    `);
    clean(result, 3);
  });

  it('an uncaught exception with tasks in flight exits with code 1, no crash', async () => {
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      for (let i = 0; i < 10000; i++) loop.sleep(i % 100);
      loop.sleep(0).then(() => { throw new Error('boom'); });
    `);
    clean(result, 1);
    expect(result.stderr).toContain('boom');
  });

  it('an exception taken by setUncaughtExceptionCaptureCallback is not fatal: the loops run on to the exit', async () => {
    // Seen as fatal, it had the native loops stopped at 'exit': a listener
    // there got a cancelled Future.
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      process.setUncaughtExceptionCaptureCallback((error) => console.log('captured', error.message));
      loop.sleep(0).then(() => { throw new Error('boom'); });
      process.on('exit', () => console.log(loop.sleep(1, 'at exit').result(10000))); // after sideloop's own
    `);
    clean(result);
    expect(result.stdout).toBe('captured boom\nat exit\n');
  });

  it('SIGTERM handled by the app: shutdown with cancelPending, then a natural exit', async () => {
    const result = await runScript(`${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      const futures = Array.from({ length: 1000 }, () => loop.sleep(60000));
      process.on('SIGTERM', async () => {
        await loop.shutdown({ cancelPending: true });
        console.log('stopped', futures.every((f) => f.cancelled()));
      });
      loop.sleep(0).then(() => process.kill(process.pid, 'SIGTERM'));
    `);
    clean(result);
    expect(result.stdout).toBe('stopped true\n');
  });

  it('terminating worker threads whose loops have 10,000 tasks in flight crashes nothing (20 times)', async () => {
    const result = await runScript(`${prelude}
      const { Worker } = require('node:worker_threads');
      const source = \`
        const { parentPort } = require('node:worker_threads');
        const sideloop = require(\${JSON.stringify(SIDELOOP)});
        const loop = new sideloop.EventLoop({ backend: \${JSON.stringify(BACKEND)} });
        for (let i = 0; i < 10000; i++) loop.sleep(i % 1000);
        loop.sleep(0).then(() => parentPort.postMessage('busy'));
      \`;
      (async () => {
        for (let round = 0; round < 20; round++) {
          const worker = new Worker(source, { eval: true });
          await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
          const code = await worker.terminate();
          if (code !== 1) throw new Error('worker exit code ' + code);
        }
        console.log('20 terminated');
      })();
    `);
    clean(result);
    expect(result.stdout).toBe('20 terminated\n');
  });

  it('worker threads that run their loops to completion exit by themselves', async () => {
    const result = await runScript(`${prelude}
      const { Worker } = require('node:worker_threads');
      const source = \`
        const { parentPort } = require('node:worker_threads');
        const sideloop = require(\${JSON.stringify(SIDELOOP)});
        const loop = sideloop.getDefaultLoop();
        Promise.all([loop.sleep(5, 1), loop.sleep(1, 2)]).then((v) => parentPort.postMessage(v.join(',') + ' ' + loop.sleep(1, 3).result()));
      \`;
      const workers = Array.from({ length: 4 }, () => new Worker(source, { eval: true }));
      Promise.all(workers.map((w) => new Promise((resolve) => {
        let message; w.on('message', (m) => (message = m)); w.on('exit', (code) => resolve(code + ':' + message));
      }))).then((r) => console.log(r.join(' ')));
    `);
    clean(result);
    expect(result.stdout).toBe('0:1,2 3 0:1,2 3 0:1,2 3 0:1,2 3\n');
  });

  it('process.exit() inside a worker with tasks in flight ends only that worker', async () => {
    const result = await runScript(`${prelude}
      const { Worker } = require('node:worker_threads');
      const source = \`
        const sideloop = require(\${JSON.stringify(SIDELOOP)});
        const loop = new sideloop.EventLoop({ backend: \${JSON.stringify(BACKEND)} });
        for (let i = 0; i < 10000; i++) loop.sleep(i % 1000);
        loop.sleep(0).then(() => process.exit(5));
      \`;
      const worker = new Worker(source, { eval: true });
      worker.on('exit', (code) => console.log('worker exited', code));
    `);
    clean(result);
    expect(result.stdout).toBe('worker exited 5\n');
  });

  it('terminating a worker blocked in result() does not hang', async () => {
    const result = await runScript(`${prelude}
      const { Worker } = require('node:worker_threads');
      const source = \`
        const { parentPort } = require('node:worker_threads');
        const sideloop = require(\${JSON.stringify(SIDELOOP)});
        const loop = new sideloop.EventLoop({ backend: \${JSON.stringify(BACKEND)} });
        const future = loop.sleep(600000);
        parentPort.postMessage('blocking');
        future.result();
      \`;
      const worker = new Worker(source, { eval: true });
      worker.once('message', async () => console.log('terminated', await worker.terminate()));
    `);
    clean(result);
    expect(result.stdout).toBe('terminated 1\n');
  });

  it('start/shutdown/restart 1,000 times: at most one thread, none once shutdown() resolves, no growth', async () => {
    const result = await runScript(`${prelude}
      const fs = require('node:fs');
      const threads = (name) => fs.readdirSync('/proc/self/task')
        .map((t) => { try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim(); } catch { return ''; } })
        .filter((n) => name === undefined || n === name).length;
      (async () => {
        const loop = new sideloop.EventLoop({ backend: BACKEND, name: 'cycler' });
        await loop.sleep(0);
        await loop.shutdown();
        const baseline = threads();
        // A Worker's thread cannot be given an OS name: there, count the threads above the baseline.
        const loopThreads = () => (BACKEND === 'native' ? threads('cycler') : threads() - baseline);
        let most = 0;
        let lingering = 0; // threads of a loop whose shutdown() has resolved
        for (let i = 0; i < 1000; i++) {
          if (i % 2) loop.start(); else loop.sleep(0);
          most = Math.max(most, loopThreads());
          await loop.shutdown(i % 3 === 0 ? { cancelPending: true } : undefined);
          lingering = Math.max(lingering, loopThreads());
        }
        console.log('most', most, 'lingering', lingering, 'growth', threads() - baseline);
      })();
    `);
    clean(result);
    expect(result.stdout).toBe('most 1 lingering 0 growth 0\n');
  });

  it('an unreferenced loop is collected and its thread stopped', async () => {
    const result = await runScript(
      `${prelude}
      const fs = require('node:fs');
      const threads = (name) => fs.readdirSync('/proc/self/task')
        .map((t) => { try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim(); } catch { return ''; } })
        .filter((n) => name === undefined || n === name).length;
      const baseline = threads();
      // A Worker's thread cannot be given an OS name: there, count the threads above the baseline.
      const loopThreads = () => (BACKEND === 'native' ? threads('collectme') : threads() - baseline);
      (async () => {
        // Held until counted: a collection during the loop (it may come at
        // any allocation) would otherwise take some before the count.
        let loops = [];
        for (let i = 0; i < 5; i++) {
          loops.push(new sideloop.EventLoop({ backend: BACKEND, name: 'collectme' }));
          await loops[i].sleep(0);
        }
        const before = loopThreads();
        loops = undefined;
        // Finalizers run after collection, on a later turn; give them a few turns.
        for (let turn = 0; turn < 100 && loopThreads() > 0; turn++) {
          global.gc();
          await new Promise((resolve) => setImmediate(resolve));
        }
        console.log('before', before, 'after', loopThreads());
      })();
    `,
      { nodeArgs: ['--expose-gc'] },
    );
    clean(result);
    expect(result.stdout).toBe('before 5 after 0\n');
  });

  it('a referenced idle loop survives garbage collection and keeps working', async () => {
    const result = await runScript(
      `${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      (async () => {
        for (let i = 0; i < 3; i++) {
          await loop.sleep(1);
          global.gc();
          await new Promise((resolve) => setImmediate(resolve));
          global.gc();
        }
        console.log(await loop.sleep(1, 'alive'), loop.sleep(1, 'sync').result());
      })();
    `,
      { nodeArgs: ['--expose-gc'] },
    );
    clean(result);
    expect(result.stdout).toBe('alive sync\n');
  });

  it('a busy loop is not collected: its tasks still complete', async () => {
    const result = await runScript(
      `${prelude}
      (function () {
        const loop = new sideloop.EventLoop({ backend: BACKEND });
        loop.sleep(100, 'still here').then((v) => console.log(v));
      })();
      global.gc();
      setImmediate(() => global.gc());
    `,
      { nodeArgs: ['--expose-gc'] },
    );
    clean(result);
    expect(result.stdout).toBe('still here\n');
  });

  it("a collected loop's exec children are killed and reaped", async () => {
    // The worker backend's finalizer terminated the Worker. Killed from the
    // main thread first, a child stayed a zombie until the process exited
    // (only its own thread can reap it); one spawned an instant before the
    // collection, not yet in the pid table, ran on after the process had
    // exited, its SIGTERM ignored and its SIGKILL timer terminated with the
    // Worker. Now that thread kills and reaps them, as the native loop does.
    const pidFile = path.join(os.tmpdir(), `sideloop-gc-child-${process.pid}-${Date.now()}`);
    const result = await runScript(
      `${prelude}
      const fs = require('node:fs');
      const gone = (pid) => !fs.existsSync('/proc/' + pid); // neither running nor a zombie
      const turn = () => new Promise((resolve) => setImmediate(resolve));
      (async () => {
        const pidFile = ${JSON.stringify(pidFile)};
        await (async () => {
          const loop = new sideloop.EventLoop({ backend: BACKEND });
          const child = loop.exec('sh', ['-c', 'trap "" TERM; echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 60', 'sh', pidFile]);
          while (!fs.existsSync(pidFile)) await turn();
          child.cancel(); // SIGTERM, which it ignores
        })();
        const pid = Number(fs.readFileSync(pidFile, 'utf8'));
        fs.unlinkSync(pidFile);
        // Collections and finalizers take their turns; the bound only keeps
        // a failure from hanging (reaped, the pid goes within a few turns).
        const giveUp = Date.now() + 20000;
        while (!gone(pid) && Date.now() < giveUp) {
          global.gc();
          await turn();
        }
        console.log(gone(pid) ? 'reaped' : 'left behind');
        try { process.kill(pid, 'SIGKILL'); } catch {} // whatever happened, not left running by this test
      })();
    `,
      { nodeArgs: ['--expose-gc'] },
    );
    clean(result);
    expect(result.stdout).toBe('reaped\n');
  });

  it('a loop nobody references any more finishes its shutdown through garbage collections', async () => {
    // With exec used, the worker backend waits for its Worker's goodbye,
    // here behind a hash of 128 MiB; that message reached the run only
    // through a weak link, so a collection meanwhile lost it and the
    // referenced Worker kept the process alive for ever.
    const result = await runScript(
      `${prelude}
      (function () {
        const loop = new sideloop.EventLoop({ backend: BACKEND });
        loop.exec('true');
        loop.hash('sha512', new Uint8Array(new SharedArrayBuffer(128 * 1024 * 1024)));
        loop.shutdown({ cancelPending: true }).then(() => console.log('stopped'));
      })();
      setInterval(() => global.gc(), 5).unref();
    `,
      { nodeArgs: ['--expose-gc'] },
    );
    clean(result);
    expect(result.stdout).toBe('stopped\n');
  });

  it("a done Future does not keep its task's input alive", async () => {
    const result = await runScript(
      `${prelude}
      const loop = new sideloop.EventLoop({ backend: BACKEND });
      (async () => {
        let input = new Uint8Array(1 << 20);
        const collected = new WeakRef(input.buffer);
        const future = loop.hash('sha256', input);
        input = undefined;
        await future;
        // No deref() before the last collection: it would keep the target alive for the turn.
        for (let turn = 0; turn < 3; turn++) {
          await new Promise((resolve) => setImmediate(resolve));
          global.gc();
        }
        console.log(future.done(), collected.deref() === undefined);
        await loop.shutdown();
      })();
    `,
      { nodeArgs: ['--expose-gc'] },
    );
    clean(result);
    expect(result.stdout).toBe('true true\n');
  });
});

describe("the worker backend's Worker dying under a running loop", () => {
  // Only a bug or something outside sideloop ends its Worker: the tests stand
  // in for it, with every Worker the script makes in `made`.
  const withWorkers = `
      const workerThreads = require('node:worker_threads');
      const made = [];
      workerThreads.Worker = class extends workerThreads.Worker {
        constructor(...args) { super(...args); made.push(this); }
      };
      const sideloop = require(SIDELOOP);`;

  it('fails the pending tasks; shutdown() then resolves with the thread gone, and the loop restarts', async () => {
    const result = await runScript(`
      const fs = require('node:fs');
      ${withWorkers}
      const threads = () => fs.readdirSync('/proc/self/task').length;
      (async () => {
        const loop = new sideloop.EventLoop({ backend: 'worker' });
        await loop.sleep(0);
        await loop.shutdown();
        const baseline = threads();
        await loop.sleep(0); // started, its script running
        const pending = loop.sleep(600000);
        await made[1].terminate();
        const error = await pending.then(() => 'resolved', (e) => e.message);
        const stateAtDeath = loop.state;
        await loop.shutdown(); // resolves once the dead thread is reaped
        console.log(error, '|', stateAtDeath, loop.state, threads() - baseline);
        console.log(await loop.sleep(1, 'again'), loop.backend);
        await loop.shutdown();
      })();
    `);
    clean(result);
    expect(result.stdout).toBe("sideloop's worker thread exited with code 1 | stopped stopped 0\nagain worker\n");
  });

  it('a result() blocked on it fails when it ends without an exception (its memory limit)', async () => {
    // Only an exception sent word ahead ('died'); the Worker's 'exit' event
    // needs the event loop that result() holds up: it waited for ever.
    const result = await runScript(`
      const workerThreads = require('node:worker_threads');
      workerThreads.Worker = class extends workerThreads.Worker {
        constructor(file, options) { super(file, { ...options, resourceLimits: { maxOldGenerationSizeMb: 12, maxYoungGenerationSizeMb: 4 } }); }
      };
      const sideloop = require(SIDELOOP);
      const loop = new sideloop.EventLoop({ backend: 'worker' });
      for (let i = 0; i < 200000; i++) loop.sleep(600000).catch(() => {}); // more than 12 MB of timers there
      const probe = loop.sleep(600000, 'probe');
      let outcome;
      try { outcome = probe.result(); } catch (error) { outcome = error.message; }
      console.log(outcome, '|', loop.state);
      loop.shutdown().then(() => console.log('shut down'));
    `);
    clean(result);
    expect(result.stdout).toBe(
      "sideloop's worker thread ended while result() waited: it failed to start or ran out of memory | stopped\nshut down\n",
    );
  });

  it('the loop is stopped at once: later work starts a fresh Worker, without a shutdown() first', async () => {
    // Before, the loop stayed 'running' on the dead Worker: later tasks never
    // settled, and shutdown() waited for them for ever.
    const result = await runScript(`
      ${withWorkers}
      (async () => {
        const loop = new sideloop.EventLoop({ backend: 'worker' });
        const pending = loop.sleep(600000);
        await loop.sleep(0);
        await made[0].terminate();
        await pending.catch(() => {});
        const later = loop.sleep(1, 'later');
        console.log(later.result(60000), await loop.sleep(1, 'awaited'), made.length, loop.state);
        await loop.shutdown();
      })();
    `);
    clean(result);
    expect(result.stdout).toBe('later awaited 2 running\n');
  });

  it('work a done callback submits as the Futures fail (a retry) goes to a fresh Worker', async () => {
    // The callbacks ran while the loop still pointed at the dead run, which
    // dropped what they submitted: the retry never settled.
    const result = await runScript(`
      ${withWorkers}
      (async () => {
        const loop = new sideloop.EventLoop({ backend: 'worker' });
        await loop.sleep(0);
        const first = loop.sleep(600000);
        const retried = new Promise((resolve) => first.addDoneCallback(() => resolve(loop.sleep(1, 'retried'))));
        await made[0].terminate();
        console.log(first.exception().message, '|', await retried, made.length);
        await loop.shutdown();
      })();
    `);
    clean(result);
    expect(result.stdout).toBe("sideloop's worker thread exited with code 1 | retried 2\n");
  });

  it('what the Worker finished before it died keeps its result; its callbacks find the death and a fresh Worker', async () => {
    // The Worker's 'error' event came before the port's messages: every
    // task of the flood, finished and posted, failed with the Worker's
    // error. Their callbacks run once every Future of the run is done and
    // the loop has let the dead run go: one that blocks on a pending
    // sibling finds it failed (it waited on the dead thread), and one that
    // submits again reaches a fresh Worker (it reached the dead one).
    const result = await runScript(`
      const fs = require('node:fs');
      const workerThreads = require('node:worker_threads');
      const FLOOD = 3000; // more than one drain's budget (1024): the rest waits for a yield
      workerThreads.Worker = class extends workerThreads.Worker {
        // The Worker throws once it has posted every completion of the flood.
        constructor(file, options) {
          super(\`
            const { MessagePort } = require('node:worker_threads');
            const post = MessagePort.prototype.postMessage;
            let posted = 0;
            MessagePort.prototype.postMessage = function (message, ...rest) {
              const count = message?.type === 'completions' ? message.slots.length : 0; // before it is transferred
              post.call(this, message, ...rest);
              if ((posted += count) >= \${FLOOD}) setImmediate(() => { throw new Error('boom'); });
            };
            require(\${JSON.stringify(file)});
          \`, { ...options, eval: true });
        }
      };
      const sideloop = require(SIDELOOP);
      (async () => {
        const before = new Set(fs.readdirSync('/proc/self/task'));
        const loop = new sideloop.EventLoop({ backend: 'worker' });
        const sibling = loop.sleep(600000);
        const [thread] = fs.readdirSync('/proc/self/task').filter((id) => !before.has(id));
        const flood = Array.from({ length: FLOOD }, () => loop.sleep(0));
        let seen, retry;
        flood.at(-1).addDoneCallback(() => {
          try { sibling.result(); } catch (error) { seen = error.message; }
        });
        flood.at(-2).addDoneCallback(() => (retry = loop.sleep(0, 'retried')));
        await null; // the batch is sent
        // Everything the Worker posts, its death included, then arrives in one turn.
        while (fs.existsSync('/proc/self/task/' + thread));
        const results = await Promise.allSettled(flood);
        console.log(results.filter(({ status }) => status === 'fulfilled').length, seen, '|', sibling.exception().message);
        console.log(await retry);
        await loop.shutdown();
      })();
    `);
    clean(result);
    expect(result.stdout).toBe('3000 boom | boom\nretried\n');
  });

  it("the dead Worker's exec children are killed by the shutdown that follows", async () => {
    const marker = `.${process.pid}${Date.now() % 100000}`;
    const result = await runScript(
      `
      ${withWorkers}
      const marker = process.env.SIDELOOP_TEST_MARKER; // not in this script: it would count this process
      const living = () => (${countProcessesSource})(marker);
      (async () => {
        const loop = new sideloop.EventLoop({ backend: 'worker' });
        const child = loop.exec('sleep', ['34' + marker]);
        // Tasks start in order: once this sleep is done, the child was
        // spawned and its pid recorded (seeing it in /proc is not enough:
        // the pid is recorded just after the spawn returns).
        await loop.sleep(0);
        await made[0].terminate();
        await child.catch(() => {});
        await loop.shutdown();
        // SIGKILL is delivered asynchronously: poll (a survivor would sleep on for 30 s).
        for (let polls = 0; living() > 0 && polls < 2000; polls++) await new Promise((resolve) => setTimeout(resolve, 5));
        console.log('left', living());
      })();
    `,
      { env: { SIDELOOP_TEST_MARKER: marker } },
    );
    clean(result);
    expect(result.stdout).toBe('left 0\n');
  });

  it('an exception that ends the Worker reaches a result() blocked on it', async () => {
    // The Worker's 'error' event cannot run while the main thread is blocked:
    // the worker says it from its own thread. A malformed message stands in
    // for a bug in it.
    const result = await runScript(`
      ${withWorkers}
      (async () => {
        const loop = new sideloop.EventLoop({ backend: 'worker' });
        await loop.sleep(0);
        const blocked = loop.sleep(600000);
        made[0].postMessage({ type: 'submit', pages: null, cancels: [], tasks: new Float64Array(0) });
        try {
          blocked.result();
          console.log('resolved');
        } catch (error) {
          console.log(error.name, blocked.state, loop.state);
        }
        console.log(await loop.sleep(1, 'again'));
        await loop.shutdown();
      })();
    `);
    clean(result);
    expect(result.stdout).toBe('TypeError finished stopped\nagain\n');
  });
});
