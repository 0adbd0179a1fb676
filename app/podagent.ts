// `trainyard-pod-agent fetch|upload`: the agent inside a Kubernetes step's pod
// (activities/k8s/podagent.ts). The agent image puts it on PATH.
import { runPodAgent } from '../activities/k8s/podagent.js';

process.exitCode = await runPodAgent(process.argv[2]);
