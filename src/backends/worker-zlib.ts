/**
 * zlib on the worker backend's thread, synchronously (async zlib would queue
 * behind Node's shared threadpool) and in chunks, so a cancel or a timeout
 * stops a large job between chunks.
 *
 * Node's public sync API (zlib.gzipSync, and _processChunk without a
 * callback) takes the whole input in one call and closes the engine after
 * it. So we drive the engine's handle the way node:zlib's own processChunkSync
 * does, but across many calls. Output buffers are zlib.constants.Z_DEFAULT_CHUNK
 * bytes and Z_FINISH comes with the last input chunk, as in the one-shot call:
 * with level 0, stored-block boundaries follow both, and we must stay
 * byte-identical to zlib.gzipSync. Bun 1.4 and Deno 2.9 have the same handle
 * (test/runtimes/conformance.cjs compares with their own gzipSync). Where it
 * is not there, we gather the input and make the one-shot call, which cannot
 * be interrupted (the contract allows that).
 */
import buffer from 'node:buffer';
import zlib from 'node:zlib';

import { TaskKind } from '../tasks.js';
import { MAX_RESULT_BYTES, resultTooLarge } from './worker-protocol.js';
import type { ByteSink } from './worker-tasks.js';

export type ZlibKind = typeof TaskKind.gzip | typeof TaskKind.deflate | typeof TaskKind.gunzip | typeof TaskKind.inflate;

const OUTPUT_CHUNK = zlib.constants.Z_DEFAULT_CHUNK;
/** zlib.codes maps each errno to its name as well (documented, though missing from @types/node). */
const ERRNO_NAMES = (zlib as unknown as { codes: Record<number, string> }).codes;

/** The engine's native handle, as node:zlib uses it internally. */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, output: Uint8Array, outOffset: number, outLength: number): void;
  onerror: (message: string, errno: number, code?: string) => void;
}
type Engine = zlib.Zlib & { _handle?: ZlibHandle; _writeState?: Uint32Array };

export function zlibSink(kind: ZlibKind, level: number): ByteSink {
  const limit = { maxOutputLength: Math.min(MAX_RESULT_BYTES, buffer.constants.MAX_LENGTH) }; // for oneShotSink
  const options = kind === TaskKind.gzip || kind === TaskKind.deflate ? { level, ...limit } : limit;
  const engine = createEngine(kind, options);
  if (engine._handle === undefined || engine._writeState === undefined) {
    engine.close();
    return oneShotSink(kind, options);
  }
  return new ChunkedZlib(engine, engine._handle, engine._writeState);
}

class ChunkedZlib implements ByteSink {
  readonly #engine: Engine;
  readonly #handle: ZlibHandle;
  readonly #state: Uint32Array; // [output bytes left, input bytes left] after each writeSync
  readonly #parts: Buffer[] = [];
  #total = 0;
  #out = Buffer.allocUnsafe(OUTPUT_CHUNK);
  #outOffset = 0;
  #failure: Error | undefined;

  constructor(engine: Engine, handle: ZlibHandle, state: Uint32Array) {
    this.#engine = engine;
    this.#handle = handle;
    this.#state = state;
    // The handle reports errors through this callback, during writeSync.
    // Deno's handle passes no code: take it from node:zlib's table of errno names.
    handle.onerror = (message, errno, code = ERRNO_NAMES[errno]) => {
      this.#failure = Object.assign(new Error(message), { errno, code });
    };
  }

  write(chunk: Uint8Array, last: boolean): Buffer | undefined {
    try {
      this.#feed(chunk, last ? zlib.constants.Z_FINISH : zlib.constants.Z_NO_FLUSH);
    } catch (error) {
      this.close();
      throw error;
    }
    if (!last) return undefined;
    this.close();
    return Buffer.concat(this.#parts, this.#total);
  }

  close(): void {
    this.#engine.close();
  }

  #feed(chunk: Uint8Array, flush: number): void {
    let inOffset = 0;
    let inLength = chunk.byteLength;
    let outLeft: number;
    do {
      this.#handle.writeSync(flush, chunk, inOffset, inLength, this.#out, this.#outOffset, OUTPUT_CHUNK - this.#outOffset);
      if (this.#failure !== undefined) throw this.#failure;
      outLeft = this.#state[0]!;
      const produced = OUTPUT_CHUNK - this.#outOffset - outLeft;
      if (produced > 0) {
        this.#parts.push(this.#out.subarray(this.#outOffset, this.#outOffset + produced));
        this.#total += produced;
        this.#outOffset += produced;
        if (this.#total > MAX_RESULT_BYTES) throw resultTooLarge(); // a gzip bomb, say
      }
      if (outLeft === 0) {
        this.#out = Buffer.allocUnsafe(OUTPUT_CHUNK);
        this.#outOffset = 0;
      }
      inOffset += inLength - this.#state[1]!;
      inLength = this.#state[1]!;
    } while (outLeft === 0); // a full output buffer: zlib has more to say
  }
}

function oneShotSink(kind: ZlibKind, options: zlib.ZlibOptions): ByteSink {
  const chunks: Uint8Array[] = [];
  return {
    write(chunk, last) {
      chunks.push(chunk);
      if (!last) return undefined;
      const input = Buffer.concat(chunks);
      switch (kind) {
        case TaskKind.gzip:
          return zlib.gzipSync(input, options);
        case TaskKind.deflate:
          return zlib.deflateSync(input, options);
        case TaskKind.gunzip:
          return zlib.gunzipSync(input, options);
        case TaskKind.inflate:
          return zlib.inflateSync(input, options);
      }
    },
    close() {},
  };
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
