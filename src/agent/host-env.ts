import { randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { bufferedRandom } from '../repo/random.js';
import type { RepoEnv } from '../repo/repository.js';

/** The host's randomness, clock, identity and processes, for the repository: the real parts
 *  that the composition roots (agent, cli) hand to the layers below. */
export function hostEnv(): RepoEnv {
  return {
    random: bufferedRandom(),
    now: () => new Date(),
    host: os.hostname(),
    username: safeUsername(),
    pid: process.pid,
    isAlive,
  };
}

function safeUsername(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

/** Creates a new key file of 32 random bytes (mode 0600), refusing to overwrite one. */
export async function createKeyFile(file: string): Promise<Buffer> {
  const bytes = Buffer.from(randomBytes(32).toString('base64') + '\n');
  await writeFile(file, bytes, { flag: 'wx', mode: 0o600 });
  await chmod(file, 0o600);
  return bytes;
}

/** Whether a process of this host is alive (EPERM means it is, under another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
