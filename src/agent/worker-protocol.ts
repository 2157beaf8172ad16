/** What the engine worker is started with. */
export interface WorkerInit {
  readonly repoPath: string;
  readonly credential: { readonly passphrase: string } | { readonly keyFileBytes: Uint8Array };
  readonly agentName: string;
  readonly program: string;
}

/** Messages to the engine worker. */
export type ToWorker =
  | { readonly type: 'run'; readonly id: number; readonly op: 'backup' | 'restore' | 'check'; readonly spec: unknown }
  | { readonly type: 'cancel'; readonly id: number; readonly reason: string };

/** An error as it crosses from the worker: enough to rebuild the CairnError. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly hint?: string;
  readonly retryable: boolean;
  /** Whether the worker threw a CairnError (only then does `code` name one). */
  readonly cairn: boolean;
  readonly stack?: string;
}

/** Messages from the engine worker. */
export type FromWorker =
  | { readonly type: 'progress'; readonly id: number; readonly files: number; readonly bytes: number }
  | { readonly type: 'total'; readonly id: number; readonly files: number; readonly bytes: number }
  | { readonly type: 'skipped'; readonly id: number; readonly path: string; readonly message: string }
  | { readonly type: 'done'; readonly id: number; readonly result: unknown }
  | { readonly type: 'failed'; readonly id: number; readonly error: WireError };
