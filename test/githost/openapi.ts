// Checks requests against GitHub's published OpenAPI description (@octokit/openapi):
// the route and method must exist, path and query parameters must fit their schemas (no
// unknown query parameters), and a JSON body must fit the request-body schema — made
// strict here, so a misspelt field is an error rather than silently ignored by GitHub.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema?: Obj;
  'x-multi-segment'?: boolean;
}

interface Route {
  method: string;
  template: string;
  regex: RegExp;
  pathParams: string[];
  operation: Obj;
  params: Param[];
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head'];

/** Deep copy; `#/components/...` refs point into the registered `gh` schema; object schemas outside compositions get additionalProperties: false. */
function strictify(node: Json, inComposition: boolean): Json {
  if (Array.isArray(node)) return node.map((n) => strictify(n, inComposition));
  if (node === null || typeof node !== 'object') return node;
  const out: Obj = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/')) out[k] = `gh${v}`;
    else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') out[k] = strictify(v, true);
    else if (k === 'properties' && v && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, strictify(pv, false)]));
    } else out[k] = strictify(v, inComposition);
  }
  if (!inComposition && 'properties' in node && !('additionalProperties' in node) && !('allOf' in node))
    out.additionalProperties = false;
  return out;
}

export class GitHubOpenApi {
  private readonly routes: Route[] = [];
  private readonly ajv = new Ajv({ strict: false, validateSchema: false, allErrors: true, validateFormats: false });
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly spec: Obj;

  constructor() {
    const require = createRequire(import.meta.url);
    const file = require.resolve('@octokit/openapi/generated/api.github.com.json');
    this.spec = JSON.parse(readFileSync(file, 'utf8')) as Obj;
    this.ajv.addSchema({ components: strictify(this.spec.components as Json, false) } as object, 'gh');
    for (const [template, item] of Object.entries(this.spec.paths as Obj)) {
      for (const method of METHODS) {
        const operation = (item as Obj)[method] as Obj | undefined;
        if (!operation) continue;
        const params = ((operation.parameters ?? []) as Obj[]).map((p) => this.deref(p) as unknown as Param);
        const pathParams: string[] = [];
        const pattern = template
          .split('/')
          .map((seg) => {
            const m = /^\{(.+)\}$/.exec(seg);
            if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
            pathParams.push(m[1]!);
            const multi = params.find((p) => p.name === m[1])?.['x-multi-segment'];
            return multi ? '(.+)' : '([^/]+)';
          })
          .join('/');
        this.routes.push({
          method: method.toUpperCase(),
          template,
          regex: new RegExp(`^${pattern}$`),
          pathParams,
          operation,
          params,
        });
      }
    }
    // Literal routes win over templated ones (`/repos/{o}/{r}/check-runs` vs `{…}/{id}`).
    this.routes.sort((a, b) => a.pathParams.length - b.pathParams.length || b.template.length - a.template.length);
  }

  private deref(node: Obj): Obj {
    const ref = node.$ref;
    if (typeof ref !== 'string') return node;
    let target: Json = this.spec;
    for (const part of ref.slice(2).split('/')) target = (target as Obj)[part.replace(/~1/g, '/').replace(/~0/g, '~')]!;
    return target as Obj;
  }

  private validator(key: string, schema: Json): ValidateFunction {
    let v = this.compiled.get(key);
    if (!v) {
      v = this.ajv.compile(strictify(schema, false) as object);
      this.compiled.set(key, v);
    }
    return v;
  }

  /** Problems with this request; empty when it fits the description. */
  check(
    method: string,
    rawUrl: string,
    body: unknown,
  ): { template?: string; operationId?: string; problems: string[] } {
    const url = new URL(rawUrl, 'http://x');
    const candidates = this.routes.filter((r) => r.regex.test(url.pathname));
    const route = candidates.find((r) => r.method === method);
    if (!route) {
      return {
        problems: [
          candidates.length
            ? `${method} is not an operation of ${candidates[0]!.template}`
            : `no GitHub REST route matches ${url.pathname}`,
        ],
      };
    }
    const problems: string[] = [];
    const where = `${method} ${route.template}`;
    const m = route.regex.exec(url.pathname)!;
    route.pathParams.forEach((name, i) => {
      const p = route.params.find((x) => x.name === name);
      const value = decodeURIComponent(m[i + 1]!);
      if (p?.schema) this.checkValue(`${where} path ${name}`, p.schema, value, problems);
    });
    for (const [name, value] of url.searchParams) {
      const p = route.params.find((x) => x.in === 'query' && x.name === name);
      if (!p) problems.push(`${where}: unknown query parameter ${name}`);
      else if (p.schema) this.checkValue(`${where} query ${name}`, p.schema, value, problems);
    }
    for (const p of route.params) {
      if (p.in === 'query' && p.required && !url.searchParams.has(p.name))
        problems.push(`${where}: missing query parameter ${p.name}`);
    }
    const requestBody = route.operation.requestBody ? this.deref(route.operation.requestBody as Obj) : undefined;
    const schema = ((requestBody?.content as Obj | undefined)?.['application/json'] as Obj | undefined)?.schema;
    if (body !== undefined && !schema) problems.push(`${where}: takes no JSON body`);
    if (body === undefined && requestBody?.required) problems.push(`${where}: body required`);
    if (body !== undefined && schema) {
      const v = this.validator(`${method} ${route.template}`, schema);
      if (!v(body))
        problems.push(
          ...(v.errors ?? []).map(
            (e) => `${where} body${e.instancePath} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
          ),
        );
    }
    return { template: route.template, operationId: route.operation.operationId as string, problems };
  }

  private checkValue(where: string, schema: Obj, text: string, problems: string[]): void {
    const s = this.deref(schema);
    let value: unknown = text;
    if (s.type === 'integer' || s.type === 'number') value = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
    if (s.type === 'boolean') value = text === 'true' ? true : text === 'false' ? false : text;
    const v = this.validator(`value ${JSON.stringify(s)}`, s as Json);
    if (!v(value)) problems.push(`${where}: ${JSON.stringify(text)} ${v.errors?.[0]?.message ?? 'does not fit'}`);
  }
}
