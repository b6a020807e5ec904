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
 * byte-identical to zlib.gzipSync. Each call is bounded (an output buffer, or
 * DEFLATE_INPUT bytes of input), and a checkpoint comes before each; after
 * STEP_BYTES of work the sink stops until resume(), as the native backend's
 * zlib task does (native/core/zlib_task.cc). Bun 1.4 and Deno 2.9 have the same handle
 * (test/runtimes/conformance.cjs compares with their own gzipSync). Where it
 * is not there, we gather the input and make the one-shot call, which cannot
 * be interrupted (the contract allows that).
 */
import buffer from 'node:buffer';
import zlib from 'node:zlib';

import { TaskKind } from '../tasks.js';
import { INPUT_CHUNK, MAX_RESULT_BYTES, resultTooLarge } from './worker-protocol.js';
import type { ByteSink } from './worker-tasks.js';

export type ZlibKind = typeof TaskKind.gzip | typeof TaskKind.deflate | typeof TaskKind.gunzip | typeof TaskKind.inflate;

const OUTPUT_CHUNK = zlib.constants.Z_DEFAULT_CHUNK;
/**
 * Input per call when compressing at levels 1-9 (the native backend's
 * kInputPieceBytes is 16 KiB, for decompression too): else one call with Z_FINISH can chew through megabytes of
 * very compressible input while it fills one output buffer. The compressed
 * bytes do not depend on how the input is split at these levels.
 */
const DEFLATE_INPUT = 64 * 1024;
/** Work (input taken plus output made) per write() or resume(): a chunk's worth, as the hash sink does. */
const STEP_BYTES = INPUT_CHUNK;
/** zlib.codes maps each errno to its name as well (documented, though missing from @types/node). */
const ERRNO_NAMES = (zlib as unknown as { codes: Record<number, string> }).codes;

/** The engine's native handle, as node:zlib uses it internally. */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, output: Uint8Array, outOffset: number, outLength: number): void;
  onerror: (message: string, errno: number, code?: string) => void;
}
type Engine = zlib.Zlib & { _handle?: ZlibHandle; _writeState?: Uint32Array };

export function zlibSink(kind: ZlibKind, level: number, checkpoint: () => void): ByteSink {
  const limit = { maxOutputLength: Math.min(MAX_RESULT_BYTES, buffer.constants.MAX_LENGTH) }; // for oneShotSink
  const options = kind === TaskKind.gzip || kind === TaskKind.deflate ? { level, ...limit } : limit;
  const engine = createEngine(kind, options);
  if (engine._handle === undefined || engine._writeState === undefined) {
    engine.close();
    return oneShotSink(kind, options);
  }
  const compressing = kind === TaskKind.gzip || kind === TaskKind.deflate;
  // Level 0 (stored blocks) gets each chunk whole, as node:zlib gives it: there the block boundaries depend on it.
  const inputPerCall = compressing && level !== 0 ? DEFLATE_INPUT : Infinity;
  return new ChunkedZlib(engine, engine._handle, engine._writeState, inputPerCall, checkpoint);
}

class ChunkedZlib implements ByteSink {
  readonly #engine: Engine;
  readonly #handle: ZlibHandle;
  readonly #state: Uint32Array; // [output bytes left, input bytes left] after each writeSync
  readonly #inputPerCall: number;
  readonly #checkpoint: () => void;
  readonly #parts: Buffer[] = [];
  #total = 0;
  #out = Buffer.allocUnsafe(OUTPUT_CHUNK);
  #outOffset = 0;
  #failure: Error | undefined;
  // The chunk written last, and how far into it we are.
  #input: Uint8Array = new Uint8Array(0);
  #inOffset = 0;
  #inLeft = 0;
  #last = false;
  #busy = false;
  // The stream ended before its input did (zero padding after a gzip member,
  // data after a deflate stream): the one-shot call ignores the rest, and a
  // later call would read it as a new member.
  #ended = false;

  constructor(engine: Engine, handle: ZlibHandle, state: Uint32Array, inputPerCall: number, checkpoint: () => void) {
    this.#engine = engine;
    this.#handle = handle;
    this.#state = state;
    this.#inputPerCall = inputPerCall;
    this.#checkpoint = checkpoint;
    // The handle reports errors through this callback, during writeSync.
    // Deno's handle passes no code: take it from node:zlib's table of errno names.
    handle.onerror = (message, errno, code = ERRNO_NAMES[errno]) => {
      this.#failure = Object.assign(new Error(message), { errno, code });
    };
  }

  get busy(): boolean {
    return this.#busy;
  }

  write(chunk: Uint8Array, last: boolean): Buffer | undefined {
    this.#input = chunk;
    this.#inOffset = 0;
    this.#inLeft = chunk.byteLength;
    this.#last = last;
    this.#busy = !this.#ended;
    return this.resume();
  }

  resume(): Buffer | undefined {
    try {
      for (let worked = 0; this.#busy && worked < STEP_BYTES; ) {
        this.#checkpoint();
        worked += this.#call();
      }
    } catch (error) {
      this.close();
      throw error;
    }
    if (this.#busy || !this.#last) return undefined;
    this.close();
    return Buffer.concat(this.#parts, this.#total);
  }

  close(): void {
    this.#engine.close();
  }

  /** One bounded call into zlib; returns the bytes it took and made. */
  #call(): number {
    const piece = Math.min(this.#inLeft, this.#inputPerCall);
    const flush = this.#last && piece === this.#inLeft ? zlib.constants.Z_FINISH : zlib.constants.Z_NO_FLUSH;
    this.#handle.writeSync(flush, this.#input, this.#inOffset, piece, this.#out, this.#outOffset, OUTPUT_CHUNK - this.#outOffset);
    if (this.#failure !== undefined) throw this.#failure;
    const outLeft = this.#state[0]!;
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
    const pieceLeft = this.#state[1]!;
    const taken = piece - pieceLeft;
    this.#inOffset += taken;
    this.#inLeft -= taken;
    // A full output buffer: zlib has more to say. A piece taken whole with
    // more of the chunk to come: the next piece. Otherwise zlib took what it
    // would; input left over with room to spare means the stream ended.
    this.#busy = outLeft === 0 || (pieceLeft === 0 && this.#inLeft > 0);
    if (outLeft !== 0 && pieceLeft !== 0) this.#ended = true;
    return taken + produced;
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
    busy: false,
    resume: () => undefined,
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
