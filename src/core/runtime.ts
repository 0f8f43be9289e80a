// The seam between the core and a container engine. The core builds a ContainerSpec
// (what to isolate and how) and a Runtime turns it into a running container; the core
// never imports an engine module directly.

export interface Mount {
  readonly host: string;
  readonly container: string;
  readonly readonly: boolean;
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

/**
 * Contract: `run` returns at once; a failure to start shows as `exited` resolving with a
 * non-zero code and the engine's message in `tail`. `stop` and `removeAll` never throw
 * for a container that is already gone. `available` returns null when usable, else a
 * sentence saying what to fix.
 */
export interface Runtime {
  readonly name: string;
  available(): Promise<string | null>;
  /** The exact engine arguments for `spec`, for the audit record and for review. */
  args(spec: ContainerSpec): readonly string[];
  run(spec: ContainerSpec, onLog?: (line: string) => void): RunningContainer;
  stop(name: string, graceMs: number): Promise<void>;
  /** Names of containers carrying all of `labels` (running or not). */
  list(labels: Readonly<Record<string, string>>): Promise<string[]>;
  remove(names: readonly string[]): Promise<void>;
}
