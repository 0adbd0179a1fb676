// The default store location, apart from the store classes: reading the configuration must
// not load the AWS SDK (`trainyard --help` and `validate` start in milliseconds).
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** `$TRAINYARD_STORE`, else `${XDG_DATA_HOME:-~/.local/share}/trainyard/store`. */
export function defaultStoreLocation(): string {
  if (process.env.TRAINYARD_STORE) return process.env.TRAINYARD_STORE;
  const xdg = process.env.XDG_DATA_HOME;
  // the XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored
  const dataHome = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share');
  return join(dataHome, 'trainyard', 'store');
}
