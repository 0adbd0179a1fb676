// deploy/compose.yaml: valid against the Compose Specification's JSON Schema (vendored in
// test/deploy/compose-spec/), the topology the docs describe, health-gated start order,
// images pinned by digest, and only environment variables Trainyard reads.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { PLATFORM_NAMES, knownEnvNames } from './envnames.js';

const composeFile = fileURLToPath(new URL('../../deploy/compose.yaml', import.meta.url));
const schemaFile = fileURLToPath(new URL('./compose-spec/compose-spec.json', import.meta.url));

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
}

const load = (text = readFileSync(composeFile, 'utf8')): { services: Record<string, Service> } => parse(text, { merge: true }) as { services: Record<string, Service> };

function validator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The schema names draft-07 by its https URL; Ajv knows draft-07 by its http one. Same meta-schema.
  const { $schema: _, ...schema } = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
  return ajv.compile(schema);
}

const describeErrors = (errors: ErrorObject[] | null | undefined): string => (errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('\n');

describe('deploy/compose.yaml', () => {
  it('is valid against the Compose Specification schema (and the schema does catch a mistake)', () => {
    const validate = validator();
    const doc = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as unknown;
    expect(validate(doc), describeErrors(validate.errors)).toBe(true);
    const broken = load();
    (broken.services.serve as Record<string, unknown>).depends_on = { temporal: { condition: 'service_ready' } };
    expect(validate(broken)).toBe(false);
  });

  it('runs Temporal on PostgreSQL with its UI, two serve replicas without workers, a control worker and a runner agent on the shared queue', () => {
    const { services } = load();
    expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgres' });
    expect(services['temporal-ui']!.environment).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233' });
    expect(services.serve!.deploy?.replicas).toBe(2);
    expect(services.serve!.command).toEqual(['serve']);
    expect(services.serve!.environment).toMatchObject({ TRAINYARD_WORKERS: 'none' });
    expect(services.worker!.command).toEqual(['worker', '--no-host']);
    expect(services.agent!.command).toEqual(['agent', '--queue', services.agent!.environment!.TRAINYARD_LOCAL_QUEUE]);
    // Every process agrees on the queues and the store.
    for (const k of ['TRAINYARD_LOCAL_QUEUE', 'TRAINYARD_CONTROL_QUEUE', 'TRAINYARD_STORE', 'TEMPORAL_ADDRESS']) {
      expect(new Set(['serve', 'worker', 'agent'].map((s) => services[s]!.environment![k])).size, k).toBe(1);
    }
  });

  it('starts each part only once what it needs is healthy, and every part has a health check', () => {
    const { services } = load();
    for (const [name, s] of Object.entries(services)) {
      expect(s.healthcheck ?? (name === 'temporal-ui' ? {} : undefined), `${name} has no healthcheck`).toBeDefined();
      for (const [dep, d] of Object.entries(s.depends_on ?? {})) {
        expect(d.condition, `${name} → ${dep}`).toBe('service_healthy');
        expect(services[dep]?.healthcheck, `${name} waits for ${dep}, which has no healthcheck`).toBeDefined();
      }
    }
    expect(Object.keys(services.temporal!.depends_on ?? {})).toEqual(['postgres']);
    for (const s of ['serve', 'worker', 'agent']) expect(Object.keys(services[s]!.depends_on ?? {})).toContain('temporal');
  });

  it('pins every image it pulls by digest; Trainyard’s own it builds', () => {
    for (const [name, s] of Object.entries(load().services)) {
      if (s.build) continue;
      expect(s.image, name).toMatch(/^[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$/);
    }
  });

  it('sets only environment variables that Trainyard’s configuration reads', () => {
    const known = knownEnvNames();
    const { services } = load();
    const unknown: string[] = [];
    for (const s of ['serve', 'worker', 'agent']) {
      for (const k of Object.keys(services[s]!.environment ?? {})) if (!known.has(k) && !PLATFORM_NAMES.has(k)) unknown.push(`${s}: ${k}`);
    }
    expect(unknown).toEqual([]);
    // The check itself: a misspelt name is caught.
    expect(known.has('TRAINYARD_WORKER')).toBe(false);
    const example = readFileSync(fileURLToPath(new URL('../../deploy/trainyard.env.example', import.meta.url)), 'utf8');
    const names = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    expect(names.filter((n) => !known.has(n))).toEqual([]);
  });
});
