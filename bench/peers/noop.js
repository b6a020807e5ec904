// piscina's task: nothing at all, so only the round trip is measured.
'use strict';
module.exports = () => 0;
