// readline.js — the test protocol's line wait for the Node targets: reads
// stdin a byte at a time (synchronously) up to a newline or EOF.
'use strict';
const fs = require('fs');

module.exports = function readLine() {
  const b = Buffer.alloc(1);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, b, 0, 1, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      return;
    }
    if (n === 0 || b[0] === 10) return;
  }
};
