#!/usr/bin/env node
import { runCli } from './program.js';

const controller = new AbortController();
let interrupts = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    controller.abort(new Error(`${sig}`));
  });
}
const code = await runCli(process.argv.slice(2), controller.signal);
process.exitCode = code;
