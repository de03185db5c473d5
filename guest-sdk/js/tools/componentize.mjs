// Builds one JavaScript guest into a component:
// node componentize.mjs <source.js> <wit> <world> <out.wasm>
// The source's directory is the build's working directory, so its relative
// imports resolve. No WASI features: the host answers time and randomness
// through the duroxide contract.
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

const [source, witPath, worldName, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node componentize.mjs <source.js> <wit> <world> <out.wasm>');
  process.exit(2);
}
process.chdir(dirname(source));
const { component } = await componentize({
  sourcePath: basename(source),
  witPath,
  worldName,
  disableFeatures: ['random', 'clocks', 'stdio', 'http', 'fetch-event'],
});
await writeFile(out, component);
