// EngineRuntime (the Docker Engine API over its socket) and the real agent image against the
// shared Runtime conformance suite, the one DockerRuntime and the fake pass.
import { execFileSync } from 'node:child_process';
import { imageTag } from '../../src/runtime/image.ts';
import { EngineRuntime, hostRuntime } from '../../src/runtime/engine-runtime.ts';
import { runtimeConformance } from '../support/runtime-conformance.ts';

const HANG_IMAGE = 'hako-test-hang:1';

runtimeConformance('engine api', async () => {
  const dockerfile = `FROM ${imageTag()}\nENTRYPOINT ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]\n`;
  execFileSync('docker', ['build', '--quiet', '--tag', HANG_IMAGE, '-'], { input: dockerfile, stdio: ['pipe', 'ignore', 'pipe'] });
  const runtime = await hostRuntime();
  if (!(runtime instanceof EngineRuntime)) throw new Error('the engine here is reachable through its API socket: hostRuntime must pick the API');
  return { runtime, image: imageTag(), hangImage: HANG_IMAGE };
});
