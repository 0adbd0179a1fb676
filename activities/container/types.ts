/** A docker-compatible CLI (`docker` or `podman`) and the flags this host needs. */
export interface ContainerCliConfig {
  /** Executable name or path. */
  command: string;
  /** Extra flags for every `run`, e.g. `--runtime runc` and ulimits that fit this host. */
  runFlags: string[];
  /** Which CLI dialect it speaks (GPU flags differ); detected from `--version` when resolved. */
  kind?: 'docker' | 'podman';
  /**
   * The environment the CLI runs with (PATH, XDG_RUNTIME_DIR, DOCKER_HOST …): the one it was
   * resolved in, given by app/. Never logged: it may hold secrets.
   */
  env: NodeJS.ProcessEnv;
}

export interface ContainerRunRequest {
  /** Container name; also used to find and remove leftovers of a killed worker. */
  name: string;
  /** Labels put on the container (`trainyard.exec=<id>` at least). */
  labels: Record<string, string>;
  image: string;
  /** argv inside the container. */
  command: string[];
  env: Record<string, string>;
  /** host path → container path */
  mounts: { host: string; container: string; readOnly: boolean }[];
  workdir: string;
  gpus: boolean;
  timeoutMs: number;
  /** Every stdout/stderr line, in order, as they arrive. */
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Aborting kills and removes the container. */
  signal: AbortSignal;
}

export interface ContainerRunResult {
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
}

/**
 * A container engine as the host runner uses it (activities/runner/runstep.ts): make sure an
 * image is local, run one step's container to completion, remove containers by label.
 * `cliRuntime(cli)` (container/runtime.ts) drives docker or podman; a test may pass another.
 */
export interface ContainerRuntime {
  /** Makes sure `image` is local (pulling it if needed); its id. Throws ContainerImageError when it cannot be had. */
  ensureImage(image: string): Promise<string>;
  /** Runs the container to completion, its timeout or an abort, and removes it (exitCode null when stopped by us). */
  run(req: ContainerRunRequest): Promise<ContainerRunResult>;
  /** Force-removes every container carrying all these labels; their names. */
  removeContainers(labels: Record<string, string>): Promise<string[]>;
}
