// Preload for @modelcontextprotocol/conformance on Node 20, passed as
// NODE_OPTIONS=--import=<this file>. The suite's bundle imports fs.globSync,
// which Node added in 22, and an ESM import of a missing named export fails
// at link time, before any scenario runs.
//
// A --require preload that assigns fs.globSync is not enough: Node fixes
// the export names of a builtin's ESM facade on its first public load, which
// the assignment itself triggers. So on a Node without fs.globSync this
// registers a resolve hook that serves ESM imports of "fs" from a module
// re-exporting fs plus globSync (globsync-fs.mjs). On Node 22+ it does
// nothing.
import fs from 'node:fs';
import { register } from 'node:module';

if (typeof fs.globSync !== 'function') {
  register('./globsync-hooks.mjs', import.meta.url);
}
