import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { PACKAGE_DIR, runNode } from './helpers.js';

// scripts/source-hash.js is CommonJS; load it the same way the scripts do.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { sourceHash, HASH_FILE } = require('../scripts/source-hash.js') as { sourceHash(): string; HASH_FILE: string };

describe('the package', () => {
  // One folder with node_modules/sideloop pointing at this checkout, so the
  // tests import it by its name as users do.
  const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'sideloop-consumer-'));
  fs.mkdirSync(path.join(consumer, 'node_modules'));
  fs.symlinkSync(PACKAGE_DIR, path.join(consumer, 'node_modules', 'sideloop'), 'dir');
  afterAll(() => fs.rmSync(consumer, { recursive: true, force: true }));

  it('loads with require() and with import, sharing one copy', async () => {
    fs.writeFileSync(
      path.join(consumer, 'both.mjs'),
      `import { createRequire } from 'node:module';
       import * as esm from 'sideloop';
       const cjs = createRequire(import.meta.url)('sideloop');
       const loop = new esm.EventLoop();
       const value = await loop.sleep(1, 'esm');
       console.log(value, loop.sleep(1, 'sync').result(), esm.Future === cjs.Future, esm.getDefaultLoop() === cjs.getDefaultLoop());
       await loop.shutdown();
       console.log(Object.keys(esm).sort().join(','));`,
    );
    const result = await runNode([path.join(consumer, 'both.mjs')]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      'esm sync true true\n' +
        'CancelledError,EventLoop,EventLoopClosedError,EventLoopGroup,Future,InvalidStateError,QueueFullError,TimeoutError,asCompleted,getDefaultLoop,wait\n',
    );
  });

  it('its typings are complete and clean under strict TypeScript', () => {
    fs.copyFileSync(path.join(PACKAGE_DIR, 'test', 'fixtures', 'consumer.ts'), path.join(consumer, 'consumer.ts'));
    fs.symlinkSync(path.join(PACKAGE_DIR, 'node_modules', '@types'), path.join(consumer, 'node_modules', '@types'), 'dir');
    const tsc = path.join(PACKAGE_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
    // "types": [] as TypeScript 7 has it by default: the typings must bring
    // in @types/node themselves.
    const compilerOptions = { noEmit: true, strict: true, target: 'ES2022', lib: ['ES2022', 'ESNext.Disposable', 'ESNext.AsyncIterable'], types: [] };
    for (const module of ['node16', 'nodenext', 'commonjs']) {
      fs.writeFileSync(path.join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, module }, files: ['consumer.ts'] }));
      let output = '';
      try {
        execFileSync(process.execPath, [tsc, '-p', consumer], { cwd: consumer, stdio: 'pipe' });
      } catch (error) {
        output = String((error as { stdout?: Buffer }).stdout);
      }
      expect(output, `module: ${module}`).toBe('');
    }
  });

  it('the committed prebuilt binary was built from the current native sources', () => {
    // When this fails: run `npm run prebuild` and commit prebuilds/ with the sources.
    expect(fs.readFileSync(HASH_FILE, 'utf8').trim()).toBe(sourceHash());
  });
});
