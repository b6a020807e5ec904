// An HTTP service that runs background jobs on a sideloop loop.
//
//   POST   /jobs      {"task": "hash", "args": ["sha256", "hello"]}  -> 202 {"id", "state"}
//   GET    /jobs/:id  -> 200 {"id", "task", "state", "result" | "error"}
//   DELETE /jobs/:id  -> 200 {"id", "state"}  (cancels the job)
//   GET    /health    -> 200 {"jobs", "pending", "stats", "memory"}
//
// Binary arguments and results travel as {"base64": "..."}; plain strings are
// UTF-8. Finished jobs are forgotten after JOB_TTL_MS, so memory stays bounded.
// SIGTERM stops accepting, lets running jobs finish (cancelling what is left
// after SHUTDOWN_GRACE_MS), shuts the loop down and exits 0.
//
// Run: PORT=3000 node examples/http-service.js
// Only pure-computation tasks are offered: a public endpoint that reads files
// or runs programs for anyone would be a hole, not an example.
'use strict';
const http = require('node:http');
const { randomUUID } = require('node:crypto');
const { EventLoop } = require('sideloop');

const PORT = Number(process.env.PORT ?? 3000);
const JOB_TTL_MS = Number(process.env.JOB_TTL_MS ?? 60_000);
const SHUTDOWN_GRACE_MS = Number(process.env.SHUTDOWN_GRACE_MS ?? 5_000);
const MAX_BODY_BYTES = 1024 * 1024;
const TASKS = ['sleep', 'hash', 'gzip', 'gunzip', 'deflate', 'inflate'];

const loop = new EventLoop({ name: 'jobs', maxPending: 10_000 });
const jobs = new Map(); // id -> { task, future }

/** A client error: answered with its status and message. */
class HttpError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const fromJson = (value) => (value && typeof value === 'object' && typeof value.base64 === 'string' ? Buffer.from(value.base64, 'base64') : value);
const toJson = (value) => (Buffer.isBuffer(value) ? { base64: value.toString('base64') } : value);

function submit(body) {
  const { task, args = [] } = body ?? {};
  if (!TASKS.includes(task)) throw new HttpError(400, `unknown task ${JSON.stringify(task)}; known tasks: ${TASKS.join(', ')}`);
  if (!Array.isArray(args)) throw new HttpError(400, '"args" must be an array');
  let future;
  try {
    future = loop[task](...args.map(fromJson));
  } catch (error) {
    // sideloop's argument errors are TypeError/RangeError with a Node-style code.
    throw new HttpError(400, error.message, error.code);
  }
  const id = randomUUID();
  jobs.set(id, { task, future });
  future.addDoneCallback(() => setTimeout(() => jobs.delete(id), JOB_TTL_MS).unref());
  return { id, state: future.state };
}

function describe(id) {
  const job = jobs.get(id);
  if (!job) throw new HttpError(404, `no job ${id}`);
  const { task, future } = job;
  const out = { id, task, state: future.state };
  if (future.state === 'finished') {
    const error = future.exception();
    if (error) out.error = { name: error.name, code: error.code, message: error.message };
    else out.result = toJson(future.result());
  }
  return out;
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
      else chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(new HttpError(400, `invalid JSON: ${error.message}`));
      }
    });
    req.on('error', reject);
  });
}

async function route(req) {
  const url = new URL(req.url, 'http://localhost');
  const jobId = /^\/jobs\/([\w-]+)$/.exec(url.pathname)?.[1];
  if (req.method === 'POST' && url.pathname === '/jobs') return [202, submit(await readJson(req))];
  if (req.method === 'GET' && jobId) return [200, describe(jobId)];
  if (req.method === 'DELETE' && jobId) {
    jobs.get(jobId)?.future.cancel();
    return [200, describe(jobId)];
  }
  if (req.method === 'GET' && url.pathname === '/health') {
    if (url.searchParams.has('gc') && global.gc) global.gc();
    return [200, { jobs: jobs.size, pending: loop.pending, stats: loop.stats(), memory: process.memoryUsage() }];
  }
  throw new HttpError(404, `no route for ${req.method} ${url.pathname}`);
}

const server = http.createServer(async (req, res) => {
  let status;
  let body;
  try {
    [status, body] = await route(req);
  } catch (error) {
    if (!(error instanceof HttpError)) console.error(error);
    status = error.status ?? 500;
    body = { error: error.status ? error.message : 'internal error', code: error.code };
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
});

server.listen(PORT, () => console.log(`listening on port ${server.address().port}`));

process.once('SIGTERM', async () => {
  console.log('SIGTERM: draining');
  server.close(); // stop accepting; open keep-alive connections close when idle
  server.closeIdleConnections();
  const grace = setTimeout(() => loop.shutdown({ cancelPending: true }), SHUTDOWN_GRACE_MS);
  await loop.shutdown();
  clearTimeout(grace);
  console.log('stopped');
  process.exitCode = 0;
});
