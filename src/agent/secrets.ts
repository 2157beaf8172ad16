import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { MIN_TOKEN_CHARS, type TokenEntry } from '../api/auth.js';
import { CairnError } from '../core/errors.js';
import type { Credential } from '../core/keys.js';
import type { AgentConfig, ApiSettings } from './config.js';
import { createKeyFile } from './host-env.js';

/** The repository credential: the key file (created on first start when neither it nor the
 *  repository exists), the password file, or the password environment variable. */
export async function repositoryCredential(config: AgentConfig, log: Logger): Promise<Credential> {
  const r = config.repository;
  if (r.keyFile) {
    try {
      return { keyFileBytes: await readFile(r.keyFile) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CairnError('E_KEY', `cannot read key file ${r.keyFile}: ${(err as Error).message}`, { cause: err });
    }
    const exists = await readFile(path.join(r.path, 'cairn.json')).then(() => true, () => false);
    if (exists) throw new CairnError('E_KEY', `key file ${r.keyFile} is missing and the repository at ${r.path} already exists`, { hint: 'restore the key file from your copy; a new key cannot open existing backups' });
    await mkdir(path.dirname(r.keyFile), { recursive: true, mode: 0o700 });
    const bytes = await createKeyFile(r.keyFile);
    log.warn({ keyFile: r.keyFile }, `created key file ${r.keyFile} (mode 0600): it is the only way to read these backups; copy it somewhere safe now, losing it loses the backups`);
    return { keyFileBytes: bytes };
  }
  if (r.passwordFile) return { passphrase: (await readFile(r.passwordFile, 'utf8')).replace(/\r?\n$/, '') };
  const pw = r.passwordEnv ? process.env[r.passwordEnv] : undefined;
  if (!pw) throw new CairnError('E_CONFIG_INVALID', `environment variable ${r.passwordEnv} (repository.passwordEnv) is not set`);
  return { passphrase: pw };
}

/** The API tokens: each read from its file (created with a new random token, mode 0600, when
 *  missing) or its environment variable. A token shorter than MIN_TOKEN_CHARS is refused. */
export async function apiTokens(api: ApiSettings, log: Logger): Promise<TokenEntry[]> {
  const out: TokenEntry[] = [];
  for (const [i, t] of api.tokens.entries()) {
    const where = `api.tokens[${i}]`;
    let secret: string | undefined;
    if (t.file !== undefined) {
      const mode = await stat(t.file).then((st) => st.mode & 0o777, () => undefined);
      if (mode !== undefined && (mode & 0o077) !== 0) log.warn({ tokenFile: t.file, mode: mode.toString(8) }, `token file ${t.file} can be read by other users: chmod 600 it`);
      secret = await readFile(t.file, 'utf8').catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw new CairnError('E_CONFIG_INVALID', `${where}: cannot read token file ${t.file}: ${err.message}`, { cause: err });
        await mkdir(path.dirname(t.file!), { recursive: true, mode: 0o700 });
        const fresh = randomBytes(32).toString('base64url');
        await writeFile(t.file!, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
        log.warn({ tokenFile: t.file, role: t.role }, `created ${t.role} API token file ${t.file} (mode 0600): send it as "Authorization: Bearer <token>"`);
        return fresh;
      });
    } else if (t.env !== undefined) {
      secret = process.env[t.env];
      if (secret === undefined) throw new CairnError('E_CONFIG_INVALID', `${where}: environment variable ${t.env} is not set`);
    }
    secret = secret?.trim();
    if (!secret || secret.length < MIN_TOKEN_CHARS) throw new CairnError('E_CONFIG_INVALID', `${where}: the ${t.role} token is ${secret?.length ?? 0} characters; at least ${MIN_TOKEN_CHARS} are needed`, { hint: 'make one with: openssl rand -base64 32' });
    out.push({ role: t.role, secret });
  }
  return out;
}
