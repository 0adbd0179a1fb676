#!/usr/bin/env node
// The pod agent of Kubernetes steps, from the TypeScript sources (tsx): `trainyard-pod-agent fetch|upload`.
import { register } from 'tsx/esm/api';

register();
await import('../app/podagent.ts');
