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
