#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by `npm run build`; all the Docker image ships) when it is
// there and no source is newer than the build; otherwise the TypeScript sources through tsx (a
// checkout never built, or edited since its build: a stale build never runs). Set
// SWITCHYARD_FROM_SOURCE=1 to run the sources regardless.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'main.js');
const stamp = join(root, 'dist', 'BUILD'); // written by scripts/copy-assets.mjs, last step of the build
const source = join(root, 'cli', 'main.ts');
// What the build compiles or copies (tsconfig.build.json, scripts/copy-assets.mjs).
const INPUTS = ['lib', 'schemas', 'services', 'replay', 'cli', 'models'];

/** Is any build input newer than `since` (ms)? Stops at the first one. */
function newerThan(dir, since) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'fixtures' && e.name !== 'node_modules' && newerThan(path, since)) return true;
    } else if (!e.name.includes('.test.') && statSync(path).mtimeMs > since) return true;
  }
  return false;
}

function useCompiled() {
  if (!existsSync(compiled)) return false;
  if (!existsSync(source)) return true; // only dist/ was shipped
  if (process.env.SWITCHYARD_FROM_SOURCE === '1' || !existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  if (INPUTS.some((d) => newerThan(join(root, d), built))) {
    process.stderr.write('switchyard: dist/ is older than the sources: running the sources (npm run build to use the compiled CLI)\n');
    return false;
  }
  return true;
}

if (useCompiled()) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(source).href);
}
