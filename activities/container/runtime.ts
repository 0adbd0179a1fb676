// The docker/podman implementation of ContainerRuntime, the engine interface the host runner uses.
import { ensureImage, removeContainers, runContainer } from './run.js';
import type { ContainerCliConfig, ContainerRuntime } from './types.js';

/** ContainerRuntime over the docker-compatible CLI `cli` (activities/container/run.ts does the work). */
export function cliRuntime(cli: ContainerCliConfig): ContainerRuntime {
  return {
    ensureImage: (image) => ensureImage(cli, image),
    run: (req) => runContainer(cli, req),
    removeContainers: (labels) => removeContainers(cli, labels),
  };
}
