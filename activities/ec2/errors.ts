// What an EC2 error means for the launch fallback chain.
import type { ProvisionAttempt } from '../../model/hosttypes.js';

export type LaunchErrorKind =
  /** No room for this type here now: try the next subnet / type / market. */
  | Exclude<ProvisionAttempt['outcome'], 'launched' | 'error'>
  /** Network hiccup, throttling, EC2 internal error: the same call again may succeed. */
  | 'transient'
  /** Configuration or permission problem: trying other candidates cannot help. */
  | 'fatal';

const CAPACITY = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientHostCapacity',
  'InsufficientCapacity',
  'InsufficientCapacityOnHost',
  'InsufficientReservedInstanceCapacity',
  'InsufficientFreeAddressesInSubnet',
  'MaxSpotInstanceCountExceeded',
  'SpotCapacityNotAvailable',
  // vCPU quotas differ per market and instance family, so another candidate may still fit.
  'VcpuLimitExceeded',
  'InstanceLimitExceeded',
]);
const PRICE = new Set(['SpotMaxPriceTooLow']);
const UNSUPPORTED = new Set(['Unsupported', 'UnsupportedInstanceType', 'UnsupportedOperation']);
const TRANSIENT = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'Unavailable',
  'RequestTimeout',
  'TimeoutError',
]);
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
]);

export interface ErrorInfo {
  code: string;
  message: string;
  kind: LaunchErrorKind;
}

export function describeAwsError(err: unknown): ErrorInfo {
  const e = err as {
    name?: string;
    Code?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const code = e?.Code ?? e?.name ?? e?.code ?? 'Error';
  const message = e?.message ?? String(err);
  return { code, message, kind: classify(code, message, e?.$metadata?.httpStatusCode, e?.code) };
}

function classify(
  code: string,
  message: string,
  status: number | undefined,
  sysCode: string | undefined,
): LaunchErrorKind {
  if (CAPACITY.has(code)) return 'capacity';
  if (PRICE.has(code)) return 'price';
  if (UNSUPPORTED.has(code)) return 'unsupported';
  // EC2 reports "instance type not supported in this AZ" under a generic code on some paths.
  if (
    code === 'InvalidParameterValue' &&
    /not supported in (your requested|the requested|this) availability zone/i.test(message)
  ) {
    return 'unsupported';
  }
  if (TRANSIENT.has(code)) return 'transient';
  if (sysCode && NETWORK_CODES.has(sysCode)) return 'transient';
  if (status === undefined && /socket|network|ECONNRESET|timeout/i.test(message)) return 'transient';
  if (status !== undefined && status >= 500) return 'transient';
  return 'fatal';
}
