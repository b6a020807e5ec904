// An ES module: top-level await, and the same Future read synchronously.
// Run: node examples/script.mjs
import { EventLoop, wait } from 'sideloop';

const loop = new EventLoop({ name: 'esm' });

const future = loop.sleep(20, 'slept on the loop thread');
console.log('awaited:', await future);
console.log('result():', loop.sleep(5, 'blocking is fine in a script').result(1000));

const futures = ['md5', 'sha1', 'sha256'].map((algorithm) => loop.hash(algorithm, 'abc'));
const { done } = await wait(futures);
console.log('hashed', done.size, 'ways; md5 =', futures[0].result().toString('hex'));

await loop.shutdown();
console.log('state:', loop.state);
