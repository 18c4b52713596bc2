import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testBlobStore } from './blob-store.contract.js';
import { FsBlobStore } from './fs.js';
import { HttpBlobStore } from './http-client.js';
import { startBlobServer } from './http.js';
import { MemoryBlobStore } from './memory.js';

async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

testBlobStore('memory', async () => {
  const store = new MemoryBlobStore();
  return { store, corrupt: async (d, b) => store.corrupt(d, b), cleanup: async () => {} };
});

testBlobStore('filesystem', async () => {
  const { dir, remove } = await tempDir('sy-blobs-');
  const store = new FsBlobStore({ dir });
  return { store, corrupt: (d, b) => writeFile(store.pathOf(d), b), cleanup: remove };
});

// The HTTP client against the real endpoint (listening on a free port) over a filesystem store:
// the client verifies what the server sends, so a corrupted file on the server is refused twice.
testBlobStore('http', async () => {
  const { dir, remove } = await tempDir('sy-blobs-http-');
  const backing = new FsBlobStore({ dir });
  const server = await startBlobServer({ store: backing });
  const store = new HttpBlobStore({ url: server.url });
  return {
    store,
    corrupt: (d, b) => writeFile(backing.pathOf(d), b),
    cleanup: async () => {
      await server.close();
      await remove();
    },
  };
});
