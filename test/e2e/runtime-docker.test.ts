// DockerRuntime and the real agent image against the shared Runtime conformance suite (the
// one the fake runs in test/unit/runtime-fake.test.ts). The image that ignores SIGTERM is built
// locally from the agent image, so no registry is needed.
import { execFileSync } from 'node:child_process';
import { imageTag } from '../../src/runtime/image.ts';
import { DockerRuntime } from '../../src/runtime/docker.ts';
import { runtimeConformance } from '../support/runtime-conformance.ts';

const HANG_IMAGE = 'hako-test-hang:1';

runtimeConformance('docker', async () => {
  const dockerfile = `FROM ${imageTag()}\nENTRYPOINT ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]\n`;
  execFileSync('docker', ['build', '--quiet', '--tag', HANG_IMAGE, '-'], { input: dockerfile, stdio: ['pipe', 'ignore', 'pipe'] });
  return { runtime: new DockerRuntime(), image: imageTag(), hangImage: HANG_IMAGE };
});
