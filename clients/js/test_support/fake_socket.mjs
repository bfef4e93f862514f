// The in-memory socket the client's tests hand to connect() as its WebSocket, one class per test
// file: it records what the client sends (`sent` decoded, `raw` as sent) and plays the server's
// side (welcome, messages, close). `welcome` holds the welcome's payload fields of that file;
// `codec` the wire format (JSON text, or MessagePack binary frames for msgpack.test.mjs).
// Outside test/, so that `node --test test/` does not run it as a test file.

export const json = { encode: (m) => JSON.stringify(m), decode: (data) => JSON.parse(data) };

export function fakeSocket({ welcome = {}, codec = json } = {}) {
  return class FakeSocket {
    static all = [];
    constructor(url, protocols) {
      this.url = new URL(url);
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.raw = [];
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      FakeSocket.all.push(this);
    }
    send(data) {
      this.raw.push(data);
      this.sent.push(codec.decode(data));
    }
    close() { this.readyState = 3; }
    // Server side of the fake:
    welcome(extra = {}) {
      this.readyState = 1;
      this.message({ type: 'connected', payload: { connectionId: '1', userId: 'alice', serverTime: 0, ...welcome, ...extra } });
    }
    message(m) { this.onmessage?.({ data: codec.encode(m) }); }
    subscribed(channel, seq = 0) { this.message({ type: 'subscribed', payload: { channel, epoch: 'e1', seq } }); }
    drop(code = 1006, reason = '') { this.readyState = 3; this.onclose?.({ code, reason }); }
    sentOf(type) { return this.sent.filter((m) => m.type === type); }
  };
}
