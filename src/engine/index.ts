/**
 * engine: what cairn does with a repository. Backup walks folders and saves new content and one
 * tree per directory, reusing unchanged files from the parent snapshot unread; restore recreates
 * a snapshot or parts of it; ls, diff and check read trees and packs. The engine reports through
 * a ProgressSink and never logs or prints.
 */
export * from './progress.js';
export * from './backup.js';
export * from './restore.js';
export * from './check.js';
export * from './diff.js';
export * from './tree-walk.js';
export * from './tree-loader.js';
export * from './excludes.js';
