// The in-memory fake channel passes the conformance suite every real channel passes.

import { channelConformance } from '../support/channel-conformance.ts';
import { FakeChannel } from '../support/fake-channel.ts';

channelConformance('fake', async () => {
  const channel = new FakeChannel({ limit: 300 });
  let refuse = false;
  const send = channel.send.bind(channel);
  channel.send = async (m) => {
    if (refuse) {
      refuse = false;
      channel.failNext();
    }
    return send(m);
  };
  return {
    channel, address: 'chat-1', limit: 300,
    sent: async () => channel.outbox.filter((o) => o.address === 'chat-1').map((o) => o.text),
    refuseNext: () => { refuse = true; },
    close: async () => {},
  };
});
