import type { Command } from 'commander';
import { CairnError } from '../../core/errors.js';
import { addKey, listKeys, resolveKeyId } from '../../repo/key-ring.js';
import { removeLocks } from '../../repo/locks.js';
import { initRepository } from '../../repo/repository.js';
import { type GlobalOptions, createKeyFile, credentialFor, hostEnv, isAlive, openRepo, storeFor } from '../context.js';
import { emit } from '../output.js';
import { readFile } from 'node:fs/promises';
import type { Credential } from '../../core/keys.js';

/** Registers init, cat, key and unlock. */
export function registerRepoCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command('init')
    .description('create a new repository (with --key-file F: F is created with a random key if it does not exist)')
    .action(async () => {
      const g = globals();
      let cred: Credential;
      let created = false;
      const keyFile = g.keyFile ?? process.env.CAIRN_KEY_FILE;
      if (keyFile) {
        const bytes = await readFile(keyFile).catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
          created = true;
          return createKeyFile(keyFile);
        });
        cred = { keyFileBytes: bytes };
      } else cred = await credentialFor(g);
      const store = storeFor(g);
      const repo = await initRepository(store, cred, hostEnv());
      emit(g.json, { id: repo.config.id, location: store.location, keyId: repo.keyId, keyFileCreated: created ? keyFile : undefined }, () =>
        [`created repository ${repo.config.id.slice(0, 12)} at ${store.location}`, created ? `created key file ${keyFile}: keep a copy somewhere safe, without it the backups cannot be read` : 'keep the password safe: without it the backups cannot be read'].join('\n'),
      );
    });

  program
    .command('cat')
    .argument('<what>', 'config')
    .description('print a repository object (config: cairn.json)')
    .action(async (what: string) => {
      const g = globals();
      if (what !== 'config') throw new CairnError('E_USAGE', `cannot cat "${what}": only "config" is supported`);
      const repo = await openRepo(g);
      process.stdout.write(JSON.stringify(repo.config, null, g.json ? undefined : 2) + '\n');
    });

  const key = program.command('key').description('manage the keys that unlock the repository');
  key
    .command('list')
    .description('list keys')
    .action(async () => {
      const g = globals();
      const repo = await openRepo(g);
      const keys = (await listKeys(repo.store)).map(({ file: _f, ...k }) => ({ ...k, current: k.id === repo.keyId }));
      emit(g.json, keys, () => keys.map((k) => `${k.current ? '*' : ' '} ${k.id.slice(0, 12)}  ${k.kind.padEnd(8)} ${k.username}@${k.host}  ${k.created}`).join('\n'));
    });
  key
    .command('add')
    .description('add a key: --new-password-file F or CAIRN_NEW_PASSWORD, or --new-key-file F (created if missing)')
    .option('--new-password-file <file>', 'file holding the new password')
    .option('--new-key-file <file>', 'key file for the new key (created with a random key if missing)')
    .action(async (o: { newPasswordFile?: string; newKeyFile?: string }) => {
      const g = globals();
      const repo = await openRepo(g);
      const cred = await newCredential(o);
      const id = await addKey(repo.store, repo.master, cred, { created: repo.env.now(), host: repo.env.host, username: repo.env.username }, repo.env.random);
      emit(g.json, { keyId: id }, () => `added key ${id.slice(0, 12)}`);
    });
  key
    .command('remove')
    .argument('<id>', 'key id or unique prefix')
    .description('remove a key (not the one in use)')
    .action(async (idPrefix: string) => {
      const g = globals();
      const repo = await openRepo(g);
      const keys = await listKeys(repo.store);
      const id = resolveKeyId(keys, idPrefix);
      if (id === repo.keyId) throw new CairnError('E_USAGE', 'refusing to remove the key this command was unlocked with', { hint: 'unlock with another key to remove this one' });
      await repo.store.delete({ kind: 'keys', name: id });
      emit(g.json, { removed: id }, () => `removed key ${id.slice(0, 12)}`);
    });
  key
    .command('passwd')
    .description('change the password: adds a key with the new password, then removes the current one')
    .option('--new-password-file <file>', 'file holding the new password')
    .action(async (o: { newPasswordFile?: string }) => {
      const g = globals();
      const repo = await openRepo(g);
      const cred = await newCredential(o);
      const id = await addKey(repo.store, repo.master, cred, { created: repo.env.now(), host: repo.env.host, username: repo.env.username }, repo.env.random);
      await repo.store.delete({ kind: 'keys', name: repo.keyId });
      emit(g.json, { keyId: id, removed: repo.keyId }, () => `password changed: new key ${id.slice(0, 12)}`);
    });

  program
    .command('unlock')
    .description('remove stale locks (of processes that are gone), or all with --remove-all')
    .option('--remove-all', 'remove every lock, even live ones')
    .action(async (o: { removeAll?: boolean }) => {
      const g = globals();
      const repo = await openRepo(g);
      const n = await removeLocks(repo.store, { host: repo.env.host, now: repo.env.now, isAlive, all: o.removeAll === true });
      emit(g.json, { removed: n }, () => `removed ${n} lock${n === 1 ? '' : 's'}`);
    });
}

async function newCredential(o: { newPasswordFile?: string; newKeyFile?: string }): Promise<Credential> {
  if (o.newKeyFile) {
    const file = o.newKeyFile;
    return { keyFileBytes: await readFile(file).catch(async (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? createKeyFile(file) : Promise.reject(err))) };
  }
  if (o.newPasswordFile) return { passphrase: (await readFile(o.newPasswordFile, 'utf8')).replace(/\r?\n$/, '') };
  const pw = process.env.CAIRN_NEW_PASSWORD;
  if (pw) return { passphrase: pw };
  throw new CairnError('E_USAGE', 'no new password given', { hint: 'pass --new-password-file FILE or --new-key-file FILE, or set CAIRN_NEW_PASSWORD' });
}
