// The fake runtime (real agent as a host process) against the shared Runtime conformance suite.
import { FakeRuntime } from '../support/fake-runtime.ts';
import { runtimeConformance } from '../support/runtime-conformance.ts';

runtimeConformance('fake', async () => {
  const runtime = new FakeRuntime();
  return { runtime, image: runtime.image, hangImage: runtime.hangImage };
});
