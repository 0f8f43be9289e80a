// The seam between the core and a container engine. The core builds a ContainerSpec
// (what to isolate and how) and a Runtime turns it into a running container; the core
// never imports an engine module directly.

export interface Mount {
  readonly host: string;
  readonly container: string;
  readonly readonly: boolean;
  /**
   * `device:inode` of the folder the mount policy checked (extra mounts). The runtime must
   * prove the started container got exactly this folder: the path may have been swapped
   * for a link between the check and the engine's bind mount.
   */
  readonly identity?: string;
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly mounts: readonly Mount[];
  /** Plain configuration only; a secret never belongs here (it would show in inspect). */
  readonly env: Readonly<Record<string, string>>;
  /** `uid:gid`, never root. */
  readonly user: string;
  readonly limits: { readonly memory: string; readonly cpus: string; readonly pids: number; readonly tmpfs: string };
  /** OCI runtime name (e.g. runsc); undefined = the engine's default. */
  readonly ociRuntime?: string;
}

export interface ContainerExit {
  readonly code: number | null;
  /** The last lines the container wrote to stderr, for diagnosing a crash. */
  readonly tail: string;
}

export interface RunningContainer {
  readonly name: string;
  /** Resolves once when the container has ended, however it ended. Never rejects. */
  readonly exited: Promise<ContainerExit>;
}

/** Cancels an engine call: once `signal` aborts, the call settles at once as its contract says. */
export type Cancel = { readonly signal?: AbortSignal };

/**
 * Contract: `run` returns at once; a failure to start shows as `exited` resolving with a
 * non-zero code and the engine's message in `tail`. `stop` and `remove` never throw for a
 * container that is already gone. `available` returns null when usable, else a sentence
 * saying what to fix. Every `signal` is honoured by the runtime: aborting a run kills its
 * container, aborting a stop ends its grace (the container is killed now).
 */
export interface Runtime {
  readonly name: string;
  available(opts?: Cancel): Promise<string | null>;
  /** The exact engine arguments for `spec`, for the audit record and for review. */
  args(spec: ContainerSpec): readonly string[];
  /** `onLog` gets each line the container writes (stdout and stderr); it must not throw. */
  run(spec: ContainerSpec, opts?: Cancel & { readonly onLog?: (line: string) => void }): RunningContainer;
  /**
   * Contract: called right after `run`, before the container gets any work. Resolves null
   * once every mount carrying an `identity` is seen bound to exactly that folder (looked at
   * from the host, never asked of the container), or when the container ended before it
   * ran; otherwise a sentence naming the wrong mount or why it could not be checked (an
   * abort included) — the caller then kills the container. Never rejects.
   */
  verifyMounts(spec: ContainerSpec, container: RunningContainer, opts?: Cancel): Promise<string | null>;
  /** Asks the container to end (SIGTERM), kills it after `graceMs`; resolves once it has ended. */
  stop(name: string, opts: Cancel & { readonly graceMs: number }): Promise<void>;
  /** Names of containers carrying all of `labels` (running or not). Rejects when the engine cannot answer. */
  list(labels: Readonly<Record<string, string>>, opts?: Cancel): Promise<string[]>;
  /** Kills and removes the containers; resolves once they are gone. */
  remove(names: readonly string[], opts?: Cancel): Promise<void>;
  /**
   * Contract: kills every process in the running container except its init and the
   * container's command (the agent), without trusting anything inside it; resolves with
   * how many it killed, or null when it cannot tell (another OS, a sandbox such as gVisor,
   * no permission): the caller must then not reuse the container. Never rejects.
   */
  killStrays(name: string, opts?: Cancel): Promise<number | null>;
}
