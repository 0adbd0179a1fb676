// A machine class names its AMI as an id or as an SSM parameter (AWS publishes the
// current Deep Learning AMI ids under /aws/service/deeplearning/…). Resolving here, not
// with `resolve:ssm:` in RunInstances, puts the concrete AMI id into the lineage.
// The SDK's command class is loaded when an AMI is resolved: reading the compute settings
// (every CLI start) must not load the AWS SDK.
import type { SSMClient } from '@aws-sdk/client-ssm';

const AMI_ID = /^ami-[0-9a-f]{8,17}$/;
const SSM_NAME = /^(resolve:ssm:)?\/[A-Za-z0-9_.\-/]{1,1010}$/;

export function isAmiReference(v: string): boolean {
  return AMI_ID.test(v) || SSM_NAME.test(v);
}

export async function resolveAmi(ssm: SSMClient, ref: string): Promise<string> {
  if (AMI_ID.test(ref)) return ref;
  if (!SSM_NAME.test(ref))
    throw new Error(`AMI "${ref}" is neither an AMI id (ami-…) nor an SSM parameter name (/aws/service/…)`);
  const name = ref.replace(/^resolve:ssm:/, '');
  let value: string | undefined;
  const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
  try {
    value = (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (e) {
    const err = e as { name?: string; message?: string };
    throw new Error(
      `AMI parameter ${name}: ${err.name === 'ParameterNotFound' ? 'no such SSM parameter in this region' : err.message}`,
    );
  }
  if (!value || !AMI_ID.test(value)) throw new Error(`AMI parameter ${name} holds "${value ?? ''}", not an AMI id`);
  return value;
}
