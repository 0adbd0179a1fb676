// The OpenLineage settings (TRAINYARD_OPENLINEAGE_*) of a process that runs control
// activities: `run`, `worker`, `serve`. Unset URL = no events.
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import type { OpenLineageConfig } from '../activities/lineage/openlineage.js';
import { pinoTextHooks } from '../activities/usertext.js';
import { setting, type Env } from './settings/read.js';

/** This version's home, the `producer` of every event (OpenLineage: "a git url with a given tag or sha"). */
export const PRODUCER_BASE = 'https://github.com/trainyard/trainyard';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

/**
 * The endpoint configuration, or undefined when TRAINYARD_OPENLINEAGE_URL is unset. Events
 * go to `<url>/<TRAINYARD_OPENLINEAGE_ENDPOINT>`, as OpenLineage's own clients join
 * OPENLINEAGE_URL and OPENLINEAGE_ENDPOINT. Warnings go to `log` (default: pino on stderr at
 * TRAINYARD_LOG_LEVEL). Throws SettingError naming the variable at fault.
 */
export function loadOpenLineageConfig(env: Env = process.env, log?: Logger): OpenLineageConfig | undefined {
  const url = setting(env, 'TRAINYARD_OPENLINEAGE_URL');
  const endpoint = setting(env, 'TRAINYARD_OPENLINEAGE_ENDPOINT');
  const namespace = setting(env, 'TRAINYARD_OPENLINEAGE_NAMESPACE');
  const apiKey = setting(env, 'TRAINYARD_OPENLINEAGE_API_KEY');
  if (!url) return undefined;
  return {
    endpoint: `${url}/${endpoint.replace(/^\/+/, '')}`,
    namespace,
    ...(apiKey ? { apiKey } : {}),
    producer: `${PRODUCER_BASE}/tree/v${VERSION}`,
    log:
      log ??
      pino(
        { level: setting(env, 'TRAINYARD_LOG_LEVEL'), name: 'trainyard-openlineage', hooks: pinoTextHooks },
        pino.destination(2),
      ),
  };
}
