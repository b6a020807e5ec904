// Asks for the native backend on a runtime without Node's libuv: prints the
// error it gets, then throws it again, uncaught. A well-behaved library makes
// that an ordinary uncaught-error exit (code 1), never a panic or a missing
// symbol from the addon.
'use strict';
const { EventLoop } = require('../../dist/index.js');

try {
  new EventLoop({ backend: 'native' });
  console.log('no error');
} catch (error) {
  const { name, message, code } = error;
  console.log(JSON.stringify({ name, message, code, isError: error instanceof Error, cause: error.cause?.message }));
  throw error;
}
