/**
 * core: the pure heart of cairn. Content-defined chunking, keyed ids, compression codecs,
 * AES-256-GCM sealing, master keys, and the binary and JSON records of repository format v1.
 * Nothing here touches the file system, the network, timers, the clock or a logger: time and
 * randomness are arguments, so every function can be tested with fixed inputs.
 */
export * from './errors.js';
export * from './ids.js';
export * from './hash.js';
export * from './chunker.js';
export * from './codec.js';
export * from './seal.js';
export * from './keys.js';
export * from './sealed-file.js';
export * from './pack-format.js';
export * from './index-format.js';
export * from './repo-config.js';
export * from './snapshot-format.js';
export * from './tree.js';
export * from './bounded.js';
