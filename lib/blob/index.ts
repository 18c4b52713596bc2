export type { BlobInfo, BlobStore, PutOptions } from './port.js';
export { sha256Hex, parseDigest, isDigest, verifyDigest } from './digest.js';
export { FsBlobStore, type FsBlobStoreOptions } from './fs.js';
export { MemoryBlobStore } from './memory.js';
export { CachedBlobStore } from './cached.js';
export { HttpBlobStore, type HttpBlobStoreOptions } from './http-client.js';
export { blobPlugin, buildBlobApp, startBlobServer, DIGEST_HEADER, type BlobPluginOptions, type BlobAppOptions, type BlobServerOptions, type RunningBlobServer } from './http.js';
