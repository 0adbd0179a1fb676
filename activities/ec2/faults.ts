// A fault-injecting layer for the EC2 client. moto never runs out of capacity, so tests
// (and the compute bench) put this between the SDK and the endpoint: matching requests
// get the exact error response EC2 would send (the SDK parses it like a real one), or the
// request goes through and its response is lost on the way back (what ClientToken is for).
import { Readable } from 'node:stream';
import type { EC2Client } from '@aws-sdk/client-ec2';

export interface FaultMatch {
  /** EC2 API action, default RunInstances. */
  action?: string;
  instanceType?: string;
  subnetId?: string;
  market?: 'spot' | 'on-demand';
}

export type FaultEffect =
  | { error: string; message?: string; status?: number }
  /** Forward the request, then fail as if the connection dropped before the response arrived. */
  | { dropResponse: true };

export interface FaultRule extends FaultMatch {
  effect: FaultEffect;
  /** How many matching requests it applies to (default: all). */
  times?: number;
}

export interface FaultHit {
  action: string;
  instanceType?: string;
  subnetId?: string;
  market: 'spot' | 'on-demand';
  effect: string;
}

/** HTTP status EC2 uses for these codes (server-side capacity errors are 5xx). */
const STATUS: Record<string, number> = {
  InsufficientInstanceCapacity: 500,
  InsufficientHostCapacity: 500,
  InsufficientReservedInstanceCapacity: 500,
  InternalError: 500,
  Unavailable: 503,
  RequestLimitExceeded: 503,
};

const MESSAGES: Record<string, string> = {
  InsufficientInstanceCapacity:
    'We currently do not have sufficient {type} capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity.',
  SpotMaxPriceTooLow: 'Your Spot request price is lower than the minimum required Spot request fulfillment price.',
  Unsupported: 'Your requested instance type ({type}) is not supported in your requested Availability Zone.',
  MaxSpotInstanceCountExceeded: 'Max spot instance count exceeded',
};

interface Rule extends FaultRule {
  left: number;
}

export class Ec2FaultInjector {
  private readonly rules: Rule[] = [];
  /** Every request a rule applied to, in order. */
  readonly hits: FaultHit[] = [];
  /** Every RunInstances request seen (faulted or not), for asserting the order of candidates. */
  readonly launches: {
    instanceType?: string;
    subnetId?: string;
    market: 'spot' | 'on-demand';
    clientToken?: string;
  }[] = [];

  add(rule: FaultRule): this {
    this.rules.push({ ...rule, left: rule.times ?? Number.POSITIVE_INFINITY });
    return this;
  }

  clear(): void {
    this.rules.length = 0;
    this.hits.length = 0;
    this.launches.length = 0;
  }

  /** Install on a client; every request of that client passes through the rules. */
  attach(client: EC2Client): EC2Client {
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { body?: unknown; headers?: Record<string, string> };
        const params = typeof req.body === 'string' ? new URLSearchParams(req.body) : new URLSearchParams();
        const action = params.get('Action') ?? '';
        const seen = {
          action,
          instanceType: params.get('InstanceType') ?? undefined,
          subnetId: params.get('SubnetId') ?? undefined,
          market: (params.get('InstanceMarketOptions.MarketType') === 'spot' ? 'spot' : 'on-demand') as
            'spot' | 'on-demand',
        };
        if (action === 'RunInstances') {
          this.launches.push({ ...seen, clientToken: params.get('ClientToken') ?? undefined });
        }
        const rule = this.rules.find((r) => r.left > 0 && matches(r, seen));
        if (!rule) return next(args);
        rule.left -= 1;
        if ('dropResponse' in rule.effect) {
          this.hits.push({ ...seen, effect: 'dropResponse' });
          await next(args);
          throw Object.assign(new Error('socket hang up (fault injected after the request reached EC2)'), {
            code: 'ECONNRESET',
          });
        }
        const { error } = rule.effect;
        this.hits.push({ ...seen, effect: error });
        const message = (rule.effect.message ?? MESSAGES[error] ?? error).replace('{type}', seen.instanceType ?? '');
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${xml(error)}</Code><Message>${xml(message)}</Message></Error></Errors><RequestID>fault-${this.hits.length}</RequestID></Response>`;
        const response = {
          statusCode: rule.effect.status ?? STATUS[error] ?? 400,
          reason: undefined,
          headers: { 'content-type': 'text/xml;charset=UTF-8' },
          body: Readable.from([Buffer.from(body)]),
        };
        return { response, output: undefined as never };
      },
      // Inside the deserializer: the SDK parses the faked response as EC2's own.
      { step: 'deserialize', priority: 'low', name: 'trainyardFaultInjector' },
    );
    return client;
  }
}

function matches(
  r: FaultMatch,
  seen: { action: string; instanceType?: string; subnetId?: string; market: string },
): boolean {
  return (
    (r.action ?? 'RunInstances') === seen.action &&
    (r.instanceType === undefined || r.instanceType === seen.instanceType) &&
    (r.subnetId === undefined || r.subnetId === seen.subnetId) &&
    (r.market === undefined || r.market === seen.market)
  );
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
