/**
 * Bun and Deno: sideloop must never crash them, and runs there on its worker
 * backend. test/runtimes/conformance.cjs walks the contract's main paths; it
 * runs here under Node (both backends), Bun and Deno, the last two installed
 * from npm as dev dependencies.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { DIST, PACKAGE_DIR, runProgram, type ChildResult } from './helpers.js';

const BIN = path.join(PACKAGE_DIR, 'node_modules', '.bin');
const script = (name: string) => path.join(PACKAGE_DIR, 'test', 'runtimes', name);

/** How each runtime runs a CommonJS file. */
const RUNTIMES = {
  Node: (file: string, ...args: string[]) => runProgram(process.execPath, [file, ...args]),
  Bun: (file: string, ...args: string[]) => runProgram(path.join(BIN, 'bun'), [file, ...args]),
  Deno: (file: string, ...args: string[]) => runProgram(path.join(BIN, 'deno'), ['run', '-A', file, ...args]),
};

/** What the addon would print if it were ever called there (Bun's panic, Deno's missing symbol). */
const expectNoCrash = (result: ChildResult) => {
  expect(result.hung, `hung; stdout: ${result.stdout}; stderr: ${result.stderr}`).toBe(false);
  expect(result.heldOpen, `its output held open after it exited; stdout: ${result.stdout}`).toBe(false);
  expect(result.signal, `killed by a signal; stderr: ${result.stderr}`).toBeNull();
  expect(result.stdout + result.stderr).not.toMatch(/panic|undefined symbol|unsupported uv function/i);
};

/** Every check's line, in order; the closing line must count them all. */
function conformanceLines(result: ChildResult): string[] {
  const lines = result.stdout.trimEnd().split('\n');
  const checks = lines.filter((line) => /^(not )?ok - /.test(line));
  expect(checks.filter((line) => line.startsWith('not ok')), result.stdout).toEqual([]);
  expect(lines.at(-1)).toBe(`conformance: ${checks.length} passed, 0 failed`);
  return checks;
}

describe.each([
  // [runtime, backend option, backend expected, checks expected]
  ['Node', 'auto', 'native', 21],
  ['Node', 'worker', 'worker', 20],
  ['Bun', 'auto', 'worker', 22],
  ['Deno', 'auto', 'worker', 22],
] as const)('the conformance script under %s, backend %s', (runtime, option, expected, count) => {
  it(`passes on the ${expected} backend and the process exits by itself`, async () => {
    const result = await RUNTIMES[runtime](script('conformance.cjs'), option);
    expectNoCrash(result);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(new RegExp(`^conformance: ${runtime} \\S+, backend '${option}'$`));
    const checks = conformanceLines(result);
    expect(checks).toHaveLength(count);
    expect(checks).toContain('ok - backend selection');
    expect(checks.at(-1)).toBe('ok - a pending task kept the process alive, then the idle process exited by itself');
    if (runtime !== 'Node') {
      expect(checks).toContain(`ok - backend 'native' throws, naming ${runtime}`);
      expect(checks).toContain('ok - the addon was never loaded');
    }
  });
});

describe.each(['Bun', 'Deno'] as const)('%s refuses the native backend without crashing', (runtime) => {
  it("new EventLoop({ backend: 'native' }) throws an Error naming the runtime; uncaught, it is an ordinary exit 1", async () => {
    const result = await RUNTIMES[runtime](script('native-refused.cjs'));
    expectNoCrash(result);
    expect(result.code, result.stderr).toBe(1);
    const error = JSON.parse(result.stdout);
    expect(error).toEqual({
      name: 'Error',
      message: `backend 'native' is not available: sideloop's native backend needs Node.js's libuv, which ${runtime} does not provide`,
      code: 'ERR_SIDELOOP_NATIVE_UNAVAILABLE',
      isError: true,
      cause: `sideloop's native backend needs Node.js's libuv, which ${runtime} does not provide`,
    });
    expect(result.stderr).toContain(`which ${runtime} does not provide`);
  });

  it('the install script neither loads nor compiles the addon there', async () => {
    const result = await RUNTIMES[runtime](path.join(PACKAGE_DIR, 'scripts', 'install.js'));
    expectNoCrash(result);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`sideloop: ${runtime} runs the worker backend; the native addon is not used there\n`);
  });
});

describe.each(['Node', 'Bun', 'Deno'] as const)('%s: a script outside the package', (runtime) => {
  // Deno reads package.json's "type" only near the main script: from
  // elsewhere, the package's .js files must still load as CommonJS.
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'sideloop-outside-'));
  afterAll(() => fs.rmSync(outside, { recursive: true, force: true }));
  const body = "const loop = new EventLoop({ backend: 'worker' });\nconsole.log(loop.sleep(1, 'blocked').result(30000), (await loop.gunzip(await loop.gzip('round trip'))).toString());\n";

  it.each([
    ['require', 'outside.cjs', `const { EventLoop } = require(${JSON.stringify(DIST)});\n(async () => {\n${body}})();\n`],
    ['import', 'outside.mjs', `import { EventLoop } from ${JSON.stringify(DIST.replace(/\.js$/, '.mjs'))};\n${body}`],
  ])('loads it with %s and runs the worker backend', async (_how, name, source) => {
    const file = path.join(outside, name);
    fs.writeFileSync(file, source);
    const result = await RUNTIMES[runtime](file);
    expectNoCrash(result);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('blocked round trip\n');
  });
});
