// Instance prices and EC2 billing arithmetic. Pure: the workflow-side pool and the bench
// use the same functions as the activities.
import type { InstancePrice, PriceTable } from './types.js';

/**
 * Embedded estimates, us-east-1 Linux, USD per hour (public on-demand list prices; spot as a
 * typical recent figure). Good enough for budgets and reports; set TRAINYARD_EC2_PRICES to a
 * file of your own negotiated or current prices for anything that bills.
 */
export const EMBEDDED_PRICES: PriceTable = {
  region: 'us-east-1',
  source: 'embedded estimate (us-east-1 list prices, 2025)',
  prices: {
    'g4dn.xlarge': { onDemand: 0.526, spot: 0.2 },
    'g4dn.2xlarge': { onDemand: 0.752, spot: 0.29 },
    'g4dn.12xlarge': { onDemand: 3.912, spot: 1.6 },
    'g5.xlarge': { onDemand: 1.006, spot: 0.42 },
    'g5.2xlarge': { onDemand: 1.212, spot: 0.5 },
    'g5.4xlarge': { onDemand: 1.624, spot: 0.68 },
    'g5.12xlarge': { onDemand: 5.672, spot: 2.4 },
    'g5.48xlarge': { onDemand: 16.288, spot: 6.5 },
    'g6.xlarge': { onDemand: 0.805, spot: 0.36 },
    'g6.2xlarge': { onDemand: 0.978, spot: 0.43 },
    'g6.12xlarge': { onDemand: 4.602, spot: 2.0 },
    'g6e.xlarge': { onDemand: 1.861, spot: 0.8 },
    'p3.2xlarge': { onDemand: 3.06, spot: 1.1 },
    'p4d.24xlarge': { onDemand: 21.958, spot: 9.5 },
    'p5.48xlarge': { onDemand: 55.04, spot: 25.0 },
    'm5.large': { onDemand: 0.096, spot: 0.04 },
    'm5.xlarge': { onDemand: 0.192, spot: 0.08 },
    'm7i.xlarge': { onDemand: 0.2016, spot: 0.09 },
    'c5.xlarge': { onDemand: 0.17, spot: 0.07 },
    't3.medium': { onDemand: 0.0416, spot: 0.016 },
  },
};

/** EC2 bills Linux instances per second with a one-minute minimum. */
export const MIN_BILLED_SECONDS = 60;

export function priceFor(table: PriceTable, instanceType: string, market: 'spot' | 'on-demand'): number | undefined {
  const p: InstancePrice | undefined = table.prices[instanceType];
  if (!p) return undefined;
  return market === 'spot' ? (p.spot ?? p.onDemand) : p.onDemand;
}

/** Seconds EC2 bills for an instance that ran `runSeconds` in total. */
export function billedInstanceSeconds(runSeconds: number): number {
  return Math.max(MIN_BILLED_SECONDS, Math.ceil(runSeconds));
}

export function costUsd(seconds: number, pricePerHourUsd: number): number {
  return round6((seconds * pricePerHourUsd) / 3600);
}

export function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/**
 * Parses a price file: `{ "region": "us-east-1", "prices": { "g5.xlarge": { "onDemand": 1.006, "spot": 0.42 } } }`.
 * Throws with the JSON path of the first bad entry.
 */
export function parsePriceTable(text: string, source: string): PriceTable {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw new Error(`${source}: expected an object with "region" and "prices"`);
  const region = doc.region;
  if (typeof region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    throw new Error(`${source}: "region" must be an AWS region such as us-east-1`);
  }
  if (!isObject(doc.prices))
    throw new Error(`${source}: "prices" must be an object of instance type → { onDemand, spot }`);
  const prices: Record<string, InstancePrice> = {};
  for (const [type, v] of Object.entries(doc.prices)) {
    if (!/^[a-z][a-z0-9-]*\.[a-z0-9-]+$/.test(type))
      throw new Error(`${source}: prices."${type}" is not an instance type name`);
    if (!isObject(v) || !isPrice(v.onDemand))
      throw new Error(`${source}: prices."${type}".onDemand must be a non-negative number (USD per hour)`);
    if (v.spot !== undefined && !isPrice(v.spot))
      throw new Error(`${source}: prices."${type}".spot must be a non-negative number (USD per hour)`);
    prices[type] = v.spot === undefined ? { onDemand: v.onDemand } : { onDemand: v.onDemand, spot: v.spot as number };
  }
  return { region, source, prices };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPrice(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}
