// A CommonJS script: await in an async function, and a synchronous
// result(timeout) where blocking is what a script wants.
// Run: node examples/script.cjs
'use strict';
const { EventLoop } = require('sideloop');

async function main() {
  const loop = new EventLoop({ name: 'script' });
  const text = 'sideloop runs this off the main thread';

  const digest = await loop.hash('sha256', text);
  console.log('sha256:', digest.toString('hex'));

  const compressed = loop.gzip(text, { level: 9 }).result(5000); // blocks up to 5 s
  const restored = await loop.gunzip(compressed);
  console.log('gzip round trip:', restored.toString() === text);

  const { stdout } = await loop.exec('sh', ['-c', 'echo hello from a child process']);
  console.log('exec:', stdout.toString().trim());

  await loop.shutdown();
  console.log('state:', loop.state);
}

main();
