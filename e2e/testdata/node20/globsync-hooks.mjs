// Module customization hooks registered by globsync-preload.mjs: ESM imports
// of fs resolve to globsync-fs.mjs, except the shim's own import of fs.
const shim = new URL('./globsync-fs.mjs', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL !== shim) {
    return { url: shim, shortCircuit: true };
  }
  return next(specifier, context);
}
