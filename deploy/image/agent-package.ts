// Builds the runner agent package of this checkout (activities/ec2/agentpackage.ts):
//   node --import tsx deploy/image/agent-package.ts OUT.tar.gz
// Prints the file, its digest, size and version. The image builds (build-local.sh,
// Dockerfile) use it; a control worker builds and publishes its own when it has none.
import { buildAgentPackage } from '../../activities/ec2/agentpackage.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node --import tsx deploy/image/agent-package.ts OUT.tar.gz\n');
  process.exit(2);
}
const r = await buildAgentPackage(out);
process.stdout.write(`${r.file} sha256:${r.sha256} ${r.bytes} bytes (trainyard ${r.version})\n`);
