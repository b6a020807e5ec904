/**
 * zlib on the worker backend's thread, synchronously (async zlib would queue
 * behind Node's shared threadpool) and in chunks, so a cancel or a timeout
 * stops a large job between chunks.
 *
 * Node's public sync API (zlib.gzipSync, and _processChunk without a
 * callback) feeds the whole input in one call and closes the engine after
 * it. So we drive the engine's handle the way node:zlib's own processChunkSync
 * does, but across many calls. Output buffers are zlib.constants.Z_DEFAULT_CHUNK
 * bytes, as in the one-shot call: with level 0, stored-block boundaries follow
 * the output buffer size, and we must stay byte-identical to zlib.gzipSync.
 * Where the handle is not there (runtimes other than Node), we fall back to
 * the one-shot call, which cannot be interrupted (the contract allows that).
 */
import zlib from 'node:zlib';

import { TaskKind } from '../tasks.js';

export type ZlibKind = typeof TaskKind.gzip | typeof TaskKind.deflate | typeof TaskKind.gunzip | typeof TaskKind.inflate;

const INPUT_CHUNK = 1024 * 1024;
const OUTPUT_CHUNK = zlib.constants.Z_DEFAULT_CHUNK;

/** The engine's native handle, as node:zlib uses it internally. */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, output: Uint8Array, outOffset: number, outLength: number): void;
  onerror: (message: string, errno: number, code: string) => void;
}
type Engine = zlib.Zlib & { _handle?: ZlibHandle; _writeState?: Uint32Array };

/** Runs one zlib job; `checkpoint` throws to stop between chunks. */
export function runZlib(kind: ZlibKind, level: number, input: Uint8Array, checkpoint: () => void): Buffer {
  const options = kind === TaskKind.gzip || kind === TaskKind.deflate ? { level } : {};
  const engine = createEngine(kind, options);
  try {
    if (engine._handle === undefined || engine._writeState === undefined) return oneShot(kind, input, options);
    return chunked(engine._handle, engine._writeState, input, checkpoint);
  } finally {
    engine.close();
  }
}

function createEngine(kind: ZlibKind, options: zlib.ZlibOptions): Engine {
  switch (kind) {
    case TaskKind.gzip:
      return new zlib.Gzip(options) as Engine;
    case TaskKind.deflate:
      return new zlib.Deflate(options) as Engine;
    case TaskKind.gunzip:
      return new zlib.Gunzip(options) as Engine;
    case TaskKind.inflate:
      return new zlib.Inflate(options) as Engine;
  }
}

function oneShot(kind: ZlibKind, input: Uint8Array, options: zlib.ZlibOptions): Buffer {
  switch (kind) {
    case TaskKind.gzip:
      return zlib.gzipSync(input, options);
    case TaskKind.deflate:
      return zlib.deflateSync(input, options);
    case TaskKind.gunzip:
      return zlib.gunzipSync(input);
    case TaskKind.inflate:
      return zlib.inflateSync(input);
  }
}

function chunked(handle: ZlibHandle, state: Uint32Array, input: Uint8Array, checkpoint: () => void): Buffer {
  // The handle reports errors through this callback, during writeSync.
  let failure: Error | undefined;
  handle.onerror = (message, errno, code) => {
    failure = Object.assign(new Error(message), { errno, code });
  };
  const parts: Buffer[] = [];
  let total = 0;
  let out = Buffer.allocUnsafe(OUTPUT_CHUNK);
  let outOffset = 0;
  for (let start = 0; ; start += INPUT_CHUNK) {
    checkpoint();
    const end = Math.min(start + INPUT_CHUNK, input.byteLength);
    const last = end === input.byteLength;
    const flush = last ? zlib.constants.Z_FINISH : zlib.constants.Z_NO_FLUSH;
    let inOffset = start;
    let inLength = end - start;
    let outLeft: number;
    do {
      handle.writeSync(flush, input, inOffset, inLength, out, outOffset, OUTPUT_CHUNK - outOffset);
      if (failure !== undefined) throw failure;
      outLeft = state[0]!;
      const produced = OUTPUT_CHUNK - outOffset - outLeft;
      if (produced > 0) {
        parts.push(out.subarray(outOffset, outOffset + produced));
        total += produced;
        outOffset += produced;
      }
      if (outLeft === 0) {
        out = Buffer.allocUnsafe(OUTPUT_CHUNK);
        outOffset = 0;
      }
      inOffset += inLength - state[1]!;
      inLength = state[1]!;
    } while (outLeft === 0); // a full output buffer: zlib has more to say
    if (last) return Buffer.concat(parts, total);
  }
}
