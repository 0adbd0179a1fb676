// `trainyard-pod-agent fetch|upload`: the agent inside a Kubernetes step's pod
// (activities/k8s/podagent.ts). The agent image puts it on PATH.
import { runPodAgent } from '../activities/k8s/podagent.js';
import { s3Endpoint } from './config.js';
import { s3Settings } from './store.js';

// Exit explicitly once the work is done: anything the store client leaves behind (a socket
// or timer) would keep the upload sidecar alive until the pod's grace time ends in SIGKILL,
// and the runner would then read "exited with code 137" instead of the outcome.
process.exit(await runPodAgent(process.argv[2], process.env, s3Settings({ s3Endpoint: s3Endpoint(process.env) })));
