/**
 * examples/notebook.ipynb (JavaScript, jslab kernel) and
 * examples/notebook-ts.ipynb (TypeScript, tslab kernel), executed by a real
 * Jupyter (nbconvert) in a folder laid out like a user's project, with every
 * cell's output checked.
 *
 * Needs Debian's jupyter-client, python3-nbconvert, python3-nbclient and
 * python3-ipykernel (.ci/run installs them). Without them the test is skipped
 * with a note, unless SIDELOOP_REQUIRE_JUPYTER=1 (as in CI) makes that a failure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { PACKAGE_DIR } from './helpers.js';

const python = '/usr/bin/python3';
const hasJupyter = spawnSync(python, ['-m', 'nbconvert', '--version'], { encoding: 'utf8' }).status === 0;
if (!hasJupyter && process.env.SIDELOOP_REQUIRE_JUPYTER === '1') {
  throw new Error('Jupyter (python3 -m nbconvert) is required here but missing');
}
if (!hasJupyter) console.warn('notebook tests skipped: python3 -m nbconvert is not installed (see test/notebook.test.ts)');

interface Cell {
  cell_type: string;
  outputs?: { output_type: string; name?: string; text?: string[] }[];
}

/** Runs a notebook with `kernel`; returns the text each code cell printed. */
function execute(notebook: string, kernel: string): string[] {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'sideloop-notebook-'));
  try {
    return executeIn(project, notebook, kernel);
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
}

function executeIn(project: string, notebook: string, kernel: string): string[] {
  // A user's project: sideloop and @types/node in node_modules (tslab type-checks JavaScript too).
  fs.mkdirSync(path.join(project, 'node_modules'));
  fs.symlinkSync(PACKAGE_DIR, path.join(project, 'node_modules', 'sideloop'), 'dir');
  fs.symlinkSync(path.join(PACKAGE_DIR, 'node_modules', '@types'), path.join(project, 'node_modules', '@types'), 'dir');
  fs.copyFileSync(path.join(PACKAGE_DIR, 'examples', notebook), path.join(project, notebook));
  // The kernels, registered in the project folder rather than system-wide.
  const bin = path.join(PACKAGE_DIR, 'node_modules', '.bin');
  execFileSync(path.join(bin, 'tslab'), ['install', `--python=${python}`, `--prefix=${project}`], { stdio: 'pipe' });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, JUPYTER_PATH: path.join(project, 'share', 'jupyter') };
  const out = path.join(project, 'executed.ipynb');
  const run = spawnSync(
    python,
    ['-m', 'nbconvert', '--to', 'notebook', '--execute', notebook, `--ExecutePreprocessor.kernel_name=${kernel}`, '--ExecutePreprocessor.timeout=120', '--output', out],
    { cwd: project, env, encoding: 'utf8' },
  );
  expect(run.status, run.stderr.slice(-2000)).toBe(0);
  const cells = (JSON.parse(fs.readFileSync(out, 'utf8')) as { cells: Cell[] }).cells.filter((c) => c.cell_type === 'code');
  return cells.map((c) => (c.outputs ?? []).map((o) => `${o.name === 'stderr' ? 'STDERR ' : ''}${(o.text ?? []).join('')}`).join(''));
}

function expectCells(outputs: string[]) {
  expect(outputs).toHaveLength(8);
  expect(outputs[0]).toBe("EventLoop { name: 'notebook', backend: 'native', state: 'idle', pending: 0 }\n");
  expect(outputs[1]).toMatch(/^Future \{ <(pending|running)> \} Future \{ <(pending|running)> \}\n$/);
  expect(outputs[2]).toBe('true Future { <running> }\n');
  expect(outputs[3]).toMatch(/^sha256: [0-9a-f]{16}… true\n$/);
  expect(outputs[4]).toMatch(/^gzip: 15000 bytes -> \d+ bytes\n$/);
  expect(outputs[5]).toBe('true Future { <cancelled> }\n');
  expect(outputs[6]).toMatch(/task.*median µs/);
  expect(outputs[6]).toContain('sleep(0), awaited');
  expect(outputs[6]).toContain('sha256 of 64 KiB');
  expect(outputs[7]).toMatch(/^stopped \{\n {2}submitted: 603,\n {2}completed: 602,\n {2}failed: 0,\n {2}cancelled: 1,\n {2}pending: 0,\n {2}running: 0\n\}\n$/);
}

describe.skipIf(!hasJupyter)('the notebooks, executed by Jupyter', () => {
  it('examples/notebook.ipynb through the jslab (JavaScript) kernel', () => {
    expectCells(execute('notebook.ipynb', 'jslab'));
  });

  it('examples/notebook-ts.ipynb through the tslab (TypeScript) kernel', () => {
    expectCells(execute('notebook-ts.ipynb', 'tslab'));
  });
});
