// What the WhatsApp Web channel uses of a Baileys socket: the real `makeWASocket` result
// satisfies it, and so does the recording socket of the tests. Types only: importing this
// module loads nothing of Baileys.

import type { AnyMessageContent, BaileysEventMap, Contact, MiscMessageGenerationOptions, WAMessage, WAPresence } from 'baileys';

export type { BaileysEventMap, WAMessage };

export interface WaSocket {
  readonly ev: {
    on<T extends keyof BaileysEventMap>(event: T, listener: (arg: BaileysEventMap[T]) => void): void;
  };
  /** The linked account (`id` in phone-number form with a device, `lid` in LID form); undefined before pairing. */
  readonly user: Contact | undefined;
  readonly authState: { readonly creds: { readonly registered: boolean } };
  sendMessage(jid: string, content: AnyMessageContent, options?: MiscMessageGenerationOptions): Promise<WAMessage | undefined>;
  sendPresenceUpdate(type: WAPresence, toJid?: string): Promise<void>;
  requestPairingCode(phoneNumber: string): Promise<string>;
  /** Closes the connection; Baileys then emits `connection.update` close and drops its listeners. */
  end(error: Error | undefined): void | Promise<void>;
}

/**
 * Contract: makes a new socket that starts connecting at once, with the same auth state
 * each time (Baileys needs a fresh socket after every close). May throw (the channel then
 * waits and tries again).
 */
export type SocketFactory = () => WaSocket;

/**
 * Contract: the decrypted bytes of the media in `msg`; rejects with a `TooBig` when they
 * are over `maxBytes` (stopping the download there), or with the reason it failed.
 */
export type MediaDownload = (msg: WAMessage, maxBytes: number) => Promise<Uint8Array>;

export class TooBig extends Error {
  override name = 'TooBig';
}
