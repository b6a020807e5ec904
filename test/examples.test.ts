/** The examples, run as users run them, so they can never rot. */
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { PACKAGE_DIR, runNode } from './helpers.js';

const example = (name: string) => path.join(PACKAGE_DIR, 'examples', name);
const SHA256_OF_TEXT = 'bfa42272e7cb41c6'; // sha256('sideloop runs this off the main thread'), first bytes

describe('examples', () => {
  it('script.cjs: CommonJS with await and result()', async () => {
    const result = await runNode([example('script.cjs')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^sha256: [0-9a-f]{64}$/);
    expect(lines.slice(1)).toEqual(['gzip round trip: true', 'exec: hello from a child process', 'state: stopped', '']);
  });

  it('script.mjs: ESM with top-level await and result()', async () => {
    const result = await runNode([example('script.mjs')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      'awaited: slept on the loop thread\n' +
        'result(): blocking is fine in a script\n' +
        'hashed 3 ways; md5 = 900150983cd24fb0d6963f7d28e17f72\n' +
        'state: stopped\n',
    );
  });

  it('worker-thread.js: getDefaultLoop() inside a worker', async () => {
    const result = await runNode([example('worker-thread.js')]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^from the worker: sha1 [0-9a-f]{12}…, and result\(\) works here too\nworker exited with 0\n$/);
  });

  it('demo.js: the tour runs to the end', async () => {
    const result = await runNode([example('demo.js')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('state after shutdown: stopped');
  });

  it('the REPL: await and result() on the same kind of Future', async () => {
    const lines = [
      "const { EventLoop } = require('sideloop');",
      "const loop = new EventLoop({ name: 'repl' });",
      "console.log('A:', await loop.sleep(10, 'awaited'))",
      "console.log('R:', loop.hash('md5', 'abc').result(5000).toString('hex'))",
      'const f = loop.sleep(60000); await loop.sleep(0); // the loop starts tasks in order: f is running now',
      "console.log('P:', require('node:util').inspect(f))",
      "console.log('C:', f.cancel(), f.state)",
      "await loop.shutdown(); console.log('S:', loop.state)",
      '.exit',
    ];
    // Typed as a person would: each line once the REPL shows its next prompt.
    const child = spawn(process.execPath, ['-i'], { cwd: PACKAGE_DIR, env: { ...process.env, NODE_NO_READLINE: '1' } });
    let stdout = '';
    let sent = 0;
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const prompts = stdout.split('> ').length - 1;
      if (prompts > sent && sent < lines.length) child.stdin.write(`${lines[sent++]}\n`);
    });
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    const answers = stdout.split('\n').map((line) => line.replace(/^(> )+/, '')).filter((line) => /^[ARPCS]: /.test(line));
    expect(answers).toEqual([
      'A: awaited',
      'R: 900150983cd24fb0d6963f7d28e17f72',
      'P: Future { <running> }',
      'C: true cancelled',
      'S: stopped',
    ]);
  });
});

describe('examples/http-service.js', () => {
  interface Service {
    port: number;
    request(method: string, url: string, body?: unknown): Promise<{ status: number; body: any }>;
    output(): string;
    exited: Promise<number | null>;
    kill(signal: NodeJS.Signals): void;
  }

  function startService(env: Record<string, string>): Promise<Service> {
    const child = spawn(process.execPath, ['--expose-gc', example('http-service.js')], {
      env: { ...process.env, PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    return new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        output += chunk;
        const port = /listening on port (\d+)/.exec(output)?.[1];
        if (port === undefined) return;
        resolve({
          port: Number(port),
          output: () => output,
          exited,
          kill: (signal) => child.kill(signal),
          request: (method, url, body) =>
            new Promise((done, fail) => {
              const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
              const req = http.request({ host: '127.0.0.1', port: Number(port), method, path: url, agent }, (res) => {
                let text = '';
                res.setEncoding('utf8');
                res.on('data', (c) => (text += c));
                res.on('end', () => done({ status: res.statusCode!, body: JSON.parse(text) }));
              });
              req.on('error', fail);
              req.end(payload);
            }),
        });
      });
      child.on('error', reject);
      exited.then((code) => reject(new Error(`service exited early with ${code}: ${output}`)));
    });
  }

  /** Polls a job until it is done (each poll is a real request; no fixed sleeps). */
  async function untilDone(service: Service, id: string) {
    for (;;) {
      const { body } = await service.request('GET', `/jobs/${id}`);
      if (body.state === 'finished' || body.state === 'cancelled') return body;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('submits, polls, cancels, rejects bad input, and stops gracefully on SIGTERM', async () => {
    const service = await startService({ JOB_TTL_MS: '60000' });

    const hash = await service.request('POST', '/jobs', { task: 'hash', args: ['sha256', 'sideloop runs this off the main thread'] });
    expect(hash.status).toBe(202);
    expect(hash.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const hashed = await untilDone(service, hash.body.id);
    expect(hashed).toMatchObject({ task: 'hash', state: 'finished' });
    expect(Buffer.from(hashed.result.base64, 'base64').toString('hex')).toMatch(new RegExp(`^${SHA256_OF_TEXT}`));

    const gzip = await service.request('POST', '/jobs', { task: 'gzip', args: ['abc'] });
    const gzipped = await untilDone(service, gzip.body.id);
    const gunzip = await service.request('POST', '/jobs', { task: 'gunzip', args: [gzipped.result] });
    expect((await untilDone(service, gunzip.body.id)).result).toEqual({ base64: Buffer.from('abc').toString('base64') });

    const corrupt = await service.request('POST', '/jobs', { task: 'gunzip', args: [{ base64: 'AAAA' }] });
    expect(await untilDone(service, corrupt.body.id)).toMatchObject({ state: 'finished', error: { code: 'Z_DATA_ERROR' } });

    const slow = await service.request('POST', '/jobs', { task: 'sleep', args: [600000] });
    const cancelled = await service.request('DELETE', `/jobs/${slow.body.id}`);
    expect(cancelled).toMatchObject({ status: 200, body: { state: 'cancelled' } });

    expect(await service.request('POST', '/jobs', '{not json')).toMatchObject({ status: 400, body: { error: expect.stringMatching(/^invalid JSON/) } });
    expect(await service.request('POST', '/jobs', { task: 'rm', args: [] })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/unknown task "rm"/) } });
    expect(await service.request('POST', '/jobs', { task: 'hash', args: ['sha3', 'x'] })).toMatchObject({
      status: 400,
      body: { code: 'ERR_INVALID_ARG_VALUE' },
    });
    expect(await service.request('GET', '/jobs/nope')).toMatchObject({ status: 404 });

    // A job still running when SIGTERM arrives is let finish; then the process exits 0.
    const running = await service.request('POST', '/jobs', { task: 'sleep', args: [200, 'finished'] });
    expect(running.status).toBe(202);
    service.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(service.output()).toContain('SIGTERM: draining\nstopped\n');
  });

  it('serves 10,000 requests without an error, and its memory returns to the baseline', async () => {
    const service = await startService({ JOB_TTL_MS: '100' });
    const load = async (count: number) => {
      const statuses = new Map<number, number>();
      let next = 0;
      const client = async () => {
        while (next < count) {
          const i = next++;
          const { status, body } = await service.request('POST', '/jobs', { task: i % 2 ? 'hash' : 'sleep', args: i % 2 ? ['sha1', `job ${i}`] : [1, i] });
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (i % 10 === 0) await service.request('GET', `/jobs/${body.id}`);
        }
      };
      await Promise.all(Array.from({ length: 32 }, client));
      return statuses;
    };
    const settled = async () => {
      for (;;) {
        const { body } = await service.request('GET', '/health?gc=1');
        if (body.jobs === 0 && body.pending === 0) return body;
        await new Promise((resolve) => setTimeout(resolve, 20)); // polling the service, not synchronising on time
      }
    };

    await load(1000); // warm up
    const baseline = await settled();
    const statuses = await load(10_000);
    expect([...statuses]).toEqual([[202, 10_000]]);
    const after = await settled();
    expect(after.stats.failed).toBe(0);
    // Every job forgotten; the heap back within a few MB of where it was.
    expect(after.memory.heapUsed - baseline.memory.heapUsed).toBeLessThan(8 * 1024 * 1024);
    service.kill('SIGTERM');
    expect(await service.exited).toBe(0);
  });
});
