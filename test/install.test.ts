/**
 * Installing the packed package as a user would, on a machine with no
 * compiler: with the prebuilt binary the native backend runs; without it the
 * install still succeeds and the worker backend runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PACKAGE_DIR } from './helpers.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sideloop-install-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const npmCli = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());

/** A PATH holding node, npm and sh (npm runs scripts with it) only: no cc, c++, make or python. */
function bareBin(): string {
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync(npmCli, path.join(bin, 'npm'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  return bin;
}

function npm(cwd: string, args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, [npmCli, ...args], { cwd, env, encoding: 'utf8' });
}

/** A fresh project that installs `tarball`; returns what a task printed there. */
function installAndRun(name: string, tarball: string, allowScripts: boolean, env: NodeJS.ProcessEnv) {
  const project = path.join(work, name);
  fs.mkdirSync(project);
  // The project's review of the script (npm 11 runs an unreviewed one with a
  // notice; npm 12 is to skip it). A tarball is known by its file: spec, not
  // by its name: keyed `sideloop`, neither answer applied to it.
  const manifest = { name, version: '1.0.0', private: true, allowScripts: { [`file:${tarball}`]: allowScripts } };
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify(manifest));
  const install = npm(project, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball], env);
  const run = spawnSync(
    process.execPath,
    [
      '-e',
      `const { EventLoop } = require('sideloop');
       const loop = new EventLoop();
       loop.sleep(1, 'ran').then((v) => { console.log(loop.backend, v); return loop.shutdown(); });`,
    ],
    { cwd: project, env, encoding: 'utf8' },
  );
  return { install, run };
}

describe('installing the packed package without a compiler', () => {
  let withPrebuilt = '';
  let withoutPrebuilt = '';
  let env: NodeJS.ProcessEnv = {};

  beforeAll(() => {
    // dist/ is fresh: `npm test` built it before the suite.
    const packed = JSON.parse(
      execFileSync(process.execPath, [npmCli, 'pack', '--json', '--ignore-scripts', '--pack-destination', work], {
        cwd: PACKAGE_DIR,
        encoding: 'utf8',
      }),
    ) as { filename: string }[];
    withPrebuilt = path.join(work, packed[0]!.filename);

    // The same package with prebuilds/ taken out, as on a platform we ship no binary for.
    const unpacked = path.join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', withPrebuilt, '-C', unpacked]);
    fs.rmSync(path.join(unpacked, 'package', 'prebuilds'), { recursive: true });
    const stripped = path.join(work, 'stripped');
    fs.mkdirSync(stripped);
    const repacked = JSON.parse(
      execFileSync(process.execPath, [npmCli, 'pack', '--json', '--ignore-scripts', '--pack-destination', stripped], {
        cwd: path.join(unpacked, 'package'),
        encoding: 'utf8',
      }),
    ) as { filename: string }[];
    withoutPrebuilt = path.join(stripped, repacked[0]!.filename);

    env = { ...process.env, PATH: bareBin() };
    for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key];
  });

  it('ships what a user needs and nothing else', () => {
    const listing = execFileSync('tar', ['-tzf', withPrebuilt], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(listing).toContain('package/prebuilds/linux-x64/sideloop.node');
    expect(listing).toContain('package/dist/index.js');
    expect(listing).toContain('package/dist/index.mjs');
    expect(listing).toContain('package/dist/index.d.ts');
    expect(listing).toContain('package/binding.gyp');
    expect(listing).toContain('package/native/core/loop_thread.cc');
    expect(listing.filter((f) => /^package\/(test|bench|examples|src|\.ci)\//.test(f))).toEqual([]);
    // No source maps: they would point at src/, which is not shipped, and a
    // reference to a map that is not there only makes debuggers complain.
    expect(listing.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(execFileSync('tar', ['-xzOf', withPrebuilt, 'package/dist/future.js'], { encoding: 'utf8' })).not.toContain('sourceMappingURL');
  });

  it('with the prebuilt binary: the native backend, whether npm runs the install script or not', () => {
    for (const [name, allowScripts] of [
      ['scripts-allowed', true],
      ['scripts-blocked', false],
    ] as const) {
      const { install, run } = installAndRun(name, withPrebuilt, allowScripts, env);
      expect(install.status, install.stderr).toBe(0);
      expect(install.stdout.includes('> node scripts/install.js'), install.stdout).toBe(allowScripts);
      expect(install.stdout).not.toContain('compil');
      expect(run.stderr).toBe('');
      expect(run.stdout).toBe('native ran\n');
    }
  });

  it('without a prebuilt binary and no compiler: the install succeeds and the worker backend runs', () => {
    const { install, run } = installAndRun('no-binary', withoutPrebuilt, true, env);
    expect(install.status, install.stderr).toBe(0);
    // With node-gyp's reason in brackets (here: no compiler, or no Python).
    expect(install.stdout).toMatch(
      /^sideloop: no prebuilt binary for linux-x64 and compiling failed \(\S.*\); sideloop will use its worker backend$/m,
    );
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('worker ran\n');
  });
});

describe('the install script where no binary loads', () => {
  /** Runs scripts/install.js from a copy of the package with no binary, its platform given; node-gyp is a stand-in that records its call. */
  function install(platform: string) {
    const root = fs.mkdtempSync(path.join(work, 'script-'));
    fs.mkdirSync(path.join(root, 'scripts'));
    fs.copyFileSync(path.join(PACKAGE_DIR, 'scripts', 'install.js'), path.join(root, 'scripts', 'install.js'));
    fs.symlinkSync(path.join(PACKAGE_DIR, 'node_modules'), path.join(root, 'node_modules'));
    const called = path.join(root, 'node-gyp-called');
    const nodeGyp = path.join(root, 'fake-node-gyp.js');
    fs.writeFileSync(nodeGyp, `require('fs').writeFileSync(${JSON.stringify(called)}, ''); process.exit(1);`);
    const pretend = path.join(root, 'platform.js');
    fs.writeFileSync(pretend, `Object.defineProperty(process, 'platform', { value: ${JSON.stringify(platform)} });`);
    const result = spawnSync(process.execPath, ['--require', pretend, path.join(root, 'scripts', 'install.js')], {
      env: { ...process.env, npm_config_node_gyp: nodeGyp },
      encoding: 'utf8',
    });
    return { ...result, compiled: fs.existsSync(called) };
  }

  it('compiles on Linux, and elsewhere says the worker backend serves without trying (the native code is Linux-only)', () => {
    for (const platform of ['linux', 'android']) {
      const linux = install(platform);
      expect(linux, platform).toMatchObject({ status: 0, compiled: true });
      expect(linux.stdout).toMatch(/compiling failed .*worker backend/);
    }
    for (const platform of ['darwin', 'win32', 'freebsd']) {
      const other = install(platform);
      expect(other, platform).toMatchObject({ status: 0, compiled: false, stderr: '' });
      expect(other.stdout).toBe(`sideloop: the native addon is for Linux; on ${platform}-${process.arch} sideloop uses its worker backend\n`);
    }
  });
});
