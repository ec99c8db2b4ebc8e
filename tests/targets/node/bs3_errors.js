// bs3_errors.js — test target: Node with better-sqlite3 (its own SQLite, of
// another version and build than the tool's), required from the directory
// given as argv[2] (tests/better_sqlite3.sh installs it there). Protocol as
// tests/targets/static_errors.c: "ready PID", a line on stdin, a constraint
// failure and a syntax error (printing "err1 MESSAGE" and "err2 MESSAGE",
// the messages better-sqlite3 got from sqlite3_errmsg()), a SELECT of two
// rows, "done N", a line on stdin.
'use strict';
const path = require('path');
const Database = require(path.join(process.argv[2], 'node_modules', 'better-sqlite3'));

const readLine = require('./readline.js');

const db = new Database(':memory:');
db.exec("CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (1, 'a'), (2, 'b')");
process.stdout.write('ready ' + process.pid + '\n');
readLine();
try {
  db.prepare("INSERT INTO items(id, v) VALUES (1, 'dup')").run();
  process.stdout.write('err1 (none)\n');
} catch (e) {
  process.stdout.write('err1 ' + e.message + '\n');
}
try {
  db.prepare('SELEC id FROM items');
  process.stdout.write('err2 (none)\n');
} catch (e) {
  process.stdout.write('err2 ' + e.message + '\n');
}
const rows = db.prepare('SELECT id, v FROM items ORDER BY id').all();
process.stdout.write('done ' + rows.length + '\n');
readLine();
