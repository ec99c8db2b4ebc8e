// bs3_late.js — test target: Node that requires better-sqlite3 (its own
// SQLite inside a .node extension, loaded with dlopen) only after the go
// line, then runs a statement at once: the tracer, attached before, must
// probe the extension before that statement. Protocol: "ready PID", a line
// on stdin, the statements, "done", a line on stdin. argv[2]: the directory
// tests/better_sqlite3.sh installed better-sqlite3 into.
'use strict';
const path = require('path');

const readLine = require('./readline.js');

process.stdout.write('ready ' + process.pid + '\n');
readLine();
const Database = require(path.join(process.argv[2], 'node_modules', 'better-sqlite3'));
const db = new Database(':memory:');
db.prepare("SELECT 'node-first'").get();
db.prepare("SELECT 'node-second'").get();
process.stdout.write('done\n');
readLine();
