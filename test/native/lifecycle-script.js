// The lifecycle run under valgrind (scripts/valgrind.sh): start, flood,
// cancel, every task kind, shutdown both ways, restart, exit with work in flight.
'use strict';
const { EventLoop } = require('../..');

async function main() {
  const loop = new EventLoop({ name: 'valgrind' });
  for (let round = 0; round < 3; round++) {
    const futures = [];
    for (let i = 0; i < 2000; i++) futures.push(loop.sleep(i % 5, i));
    futures.push(loop.hash('sha256', Buffer.alloc(3 << 20, round)));
    futures.push(loop.gzip(Buffer.alloc(1 << 20, 'a')).then((z) => loop.gunzip(z)));
    futures.push(loop.inflate(Buffer.from('corrupt')).catch((e) => e.code));
    futures.push(loop.writeFile('/tmp/sideloop-valgrind.txt', 'x'.repeat(100000)).then(() => loop.readFile('/tmp/sideloop-valgrind.txt')));
    futures.push(loop.exec('sh', ['-c', 'echo hi'], { input: 'ignored' }));
    for (let i = 0; i < futures.length; i += 7) if (futures[i].cancel) futures[i].cancel();
    loop.sleep(60000, 'timeout', { timeout: 5 }).catch(() => {});
    await Promise.allSettled(futures);
    await loop.shutdown({ cancelPending: round === 1 });
  }
  loop.exec('sleep', ['10']);
  for (let i = 0; i < 1000; i++) loop.sleep(1000);
  await loop.sleep(1);
  console.log('exiting with work in flight');
  process.exit(0);
}

main();
