// The order in which a machine class is tried: preferred instance types first, each in
// every subnet (AZ) before the next type, all on spot first when the class asks for spot,
// then the same on on-demand when the class allows the fallback.
import type { Ec2MachineSpec } from '../../pipeline/types.js';

export interface LaunchCandidate {
  instanceType: string;
  subnetId?: string;
  market: 'spot' | 'on-demand';
}

export function launchCandidates(
  spec: Pick<Ec2MachineSpec, 'instance' | 'spot' | 'on_demand_fallback'>,
  subnetIds: string[],
): LaunchCandidate[] {
  const markets: LaunchCandidate['market'][] = spec.spot
    ? spec.on_demand_fallback
      ? ['spot', 'on-demand']
      : ['spot']
    : ['on-demand'];
  const subnets: (string | undefined)[] = subnetIds.length > 0 ? subnetIds : [undefined];
  const out: LaunchCandidate[] = [];
  for (const market of markets) {
    for (const instanceType of spec.instance) {
      for (const subnetId of subnets) out.push({ instanceType, subnetId, market });
    }
  }
  return out;
}
