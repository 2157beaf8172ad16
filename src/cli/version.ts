import { readFileSync } from 'node:fs';

/** cairn's version, from package.json. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** The program string recorded in snapshots. */
export const PROGRAM = `cairn ${VERSION}`;
