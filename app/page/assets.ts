// The run page's static files, served by `trainyard serve` itself so the page works without
// the internet: its HTML shell, script and style sheet (app/page/assets/), and the Mermaid
// and Chart.js builds from node_modules. The shell holds no run data (the page's script
// fetches it), so it is the same file for every run, and the Content-Security-Policy can
// allow scripts from this server only.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';

export const ASSETS_PREFIX = '/assets/';

/**
 * Scripts and connections to this server only, no inline script, no plugins, no framing.
 * Inline styles are allowed: Mermaid puts a <style> element in the SVG it draws.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const require = createRequire(import.meta.url);
const here = fileURLToPath(new URL('./assets/', import.meta.url));

/** Served files by name: where each is read from and its type. */
const FILES: Record<string, { path: () => string; type: string }> = {
  'run.html': { path: () => join(here, 'run.html'), type: 'text/html; charset=utf-8' },
  'run.js': { path: () => join(here, 'run.js'), type: 'text/javascript; charset=utf-8' },
  'run.css': { path: () => join(here, 'run.css'), type: 'text/css; charset=utf-8' },
  'mermaid.min.js': {
    path: () => require.resolve('mermaid/dist/mermaid.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  // chart.js exports no ./dist/* paths: its UMD build sits next to the CommonJS entry.
  'chart.umd.min.js': {
    path: () => join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
};

const cache = new Map<string, Promise<Buffer>>();

function load(name: string): Promise<Buffer> | undefined {
  const f = FILES[name];
  if (!f) return undefined;
  let p = cache.get(name);
  if (!p) {
    p = readFile(f.path());
    p.catch(() => cache.delete(name));
    cache.set(name, p);
  }
  return p;
}

/** Headers every page response carries (the shell and the JSON alike). */
export function pageHeaders(type: string, length: number): Record<string, string | number> {
  return {
    'content-type': type,
    'content-length': length,
    'content-security-policy': PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };
}

/** Sends a static file; false when `name` is not one of them. Throws when a file cannot be read (a broken install). */
export async function sendAsset(res: ServerResponse, name: string, opts: { noStore?: boolean } = {}): Promise<boolean> {
  const body = await load(name);
  if (!body) return false;
  const headers = pageHeaders(FILES[name]!.type, body.length);
  headers['cache-control'] = opts.noStore ? 'no-store' : 'public, max-age=300';
  res.writeHead(200, headers);
  res.end(body);
  return true;
}

/** GET /assets/<name>: the page's scripts and style sheet. */
export async function assetHandler(res: ServerResponse, path: string): Promise<void> {
  const name = path.slice(ASSETS_PREFIX.length);
  if (name === 'run.html' || !(await sendAsset(res, name))) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
    res.end('not found\n');
  }
}
