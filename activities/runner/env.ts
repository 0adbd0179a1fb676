// The environment every runner (local container, EC2 host, Kubernetes pod) gives a step, so a
// step sees the same variables wherever it runs (DESIGN.md: the same /workspace, /inputs,
// /outputs, params and env on every machine).
import { paramEnvName } from '../../pipeline/names.js';
import type { ExecSpec } from '../../model/contracts.js';

/**
 * The step's `env:`, then its secrets (name → value; the parser keeps their names apart from
 * env, PARAM_* and TRAINYARD_* names), then Trainyard's own variables and one `PARAM_<NAME>`
 * per param. Paths are those inside the container.
 */
export function stepEnvironment(
  spec: ExecSpec,
  attempt: number,
  secrets: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {
    ...spec.env,
    ...secrets,
    TRAINYARD_RUN_STEP: spec.step,
    TRAINYARD_PIPELINE: spec.pipeline,
    TRAINYARD_COMMIT: spec.source.commit,
    TRAINYARD_ATTEMPT: String(attempt),
    TRAINYARD_PARAMS_FILE: '/trainyard/params.json',
    TRAINYARD_INPUTS: '/inputs',
    TRAINYARD_OUTPUTS: '/outputs',
  };
  for (const [k, v] of Object.entries(spec.params)) env[paramEnvName(k)] = String(v);
  return env;
}
