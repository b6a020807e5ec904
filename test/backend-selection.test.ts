/**
 * Which backend a loop gets when the addon cannot load: 'auto' falls back to
 * the worker backend, 'native' throws with the load error as its cause.
 * Each case runs in a child process, since the addon loads once per process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { DIST, PACKAGE_DIR, TAKE_ALL_DESCRIPTORS, runNode, runScript, runWithFewDescriptors } from './helpers.js';

/** Prints what 'auto' and 'native' give in the package at `main`. */
const probe = (main: string) => `
  const { EventLoop } = require(${JSON.stringify(main)});
  (async () => {
    const loop = new EventLoop();
    console.log('auto:', loop.backend, await loop.sleep(1, 'ran'), loop.hash('sha256', 'x').result().length);
    await loop.shutdown();
    try {
      new EventLoop({ backend: 'native' });
      console.log('native: constructed');
    } catch (error) {
      console.log('native:', error.code, error.cause instanceof Error);
      console.log('cause:', error.cause.message.split('\\n')[0]);
    }
  })();
`;

const expected = (cause: string) => `auto: worker ran 32\nnative: ERR_SIDELOOP_NATIVE_UNAVAILABLE true\ncause: ${cause}\n`;

describe('backend selection without the addon', () => {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'sideloop-no-addon-'));
  afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

  it("with SIDELOOP_NO_NATIVE=1, 'auto' runs on the worker backend and 'native' throws with a cause", async () => {
    const result = await runScript(probe(DIST), { env: { SIDELOOP_NO_NATIVE: '1' } });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(expected("sideloop's native backend is disabled by the SIDELOOP_NO_NATIVE environment variable"));
  });

  it('SIDELOOP_NO_NATIVE=0 or empty leaves the addon on', async () => {
    for (const value of ['0', '']) {
      const result = await runScript(
        `const { EventLoop } = require(SIDELOOP); const loop = new EventLoop(); console.log(loop.backend); loop.shutdown();`,
        { env: { SIDELOOP_NO_NATIVE: value } },
      );
      expect(result.stderr).toBe('');
      expect(result.stdout, `SIDELOOP_NO_NATIVE=${value}`).toBe('native\n');
    }
  });

  it("in a copy of the package without build/ and prebuilds/, 'auto' falls back to the worker backend", async () => {
    // What a user gets on a platform without a prebuilt binary and no compile.
    fs.cpSync(path.join(PACKAGE_DIR, 'dist'), path.join(copy, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(PACKAGE_DIR, 'package.json'), path.join(copy, 'package.json'));
    fs.symlinkSync(path.join(PACKAGE_DIR, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
    const script = path.join(copy, 'probe.js');
    fs.writeFileSync(script, probe(copy));
    const result = await runNode([script], { env: { SIDELOOP_NO_NATIVE: undefined } });
    expect(result.stderr).toBe('');
    // The cause is node-gyp-build's own error (it was one level further down).
    expect(result.stdout).toMatch(/^auto: worker ran 32\nnative: ERR_SIDELOOP_NATIVE_UNAVAILABLE true\ncause: No native build was found for platform=.*\n$/);
  });

  it.each([
    ['nothing of the addon loaded yet', ''],
    ['node-gyp-build loaded already, by another addon', `require(${JSON.stringify(path.join(PACKAGE_DIR, 'node_modules', 'node-gyp-build'))});`],
  ])('an addon that could not load for want of file descriptors is tried again once they are back (%s)', async (_, before) => {
    const script = `
      const fs = require('node:fs');
      const { EventLoop } = require(${JSON.stringify(DIST)});
      ${before}
      ${TAKE_ALL_DESCRIPTORS}
      try {
        new EventLoop({ backend: 'native' });
        console.log('loaded while out of descriptors');
      } catch (error) {
        console.log('refused:', error.code);
      }
      for (const fd of held) fs.closeSync(fd);
      const loop = new EventLoop();
      console.log('then:', loop.backend);
    `;
    const result = await runWithFewDescriptors(script);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('descriptors: EMFILE\nrefused: ERR_SIDELOOP_NATIVE_UNAVAILABLE\nthen: native\n');
    expect(result.code).toBe(0);
  });
});
