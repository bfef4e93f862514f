// A raw WebSocket client for the conformance suite: it writes frames byte by byte as the case
// needs them (unmasked, reserved bits, bad lengths, split UTF-8), which no well-behaved client
// library can be made to send, and reads the server's frames as they are on the wire.
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { once } from 'node:events';

export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };

export function acceptKey(key) {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** Encodes one frame. `length16`/`length64` force the longer length forms. */
export function frame({ fin = true, rsv = 0, opcode, payload = Buffer.alloc(0), mask = true, lengthForm } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const form = lengthForm ?? (data.length < 126 ? 7 : data.length < 65536 ? 16 : 64);
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode) & 0xff];
  const maskBit = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (form === 7) head.push(maskBit | data.length);
  else if (form === 16) { head.push(maskBit | 126); ext = Buffer.alloc(2); ext.writeUInt16BE(data.length); }
  else { head.push(maskBit | 127); ext = Buffer.alloc(8); ext.writeBigUInt64BE(BigInt(data.length)); }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, data]);
  const key = randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ key[i % 4]));
  return Buffer.concat([Buffer.from(head), ext, key, masked]);
}

export function closePayload(code, reason = '') {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.isBuffer(reason) ? reason : Buffer.from(reason)]);
}

export class RawSocket {
  /** Connects and sends `request` (a string); resolves once the response head arrived. */
  static async handshake(port, request) {
    const s = new RawSocket();
    s.socket = connect(port, '127.0.0.1');
    s.buffer = Buffer.alloc(0);
    s.ended = false;
    s.waiters = [];
    s.socket.on('data', (d) => { s.buffer = Buffer.concat([s.buffer, d]); s.wake(); });
    s.socket.on('close', () => { s.ended = true; s.wake(); });
    s.socket.on('error', () => {});
    await once(s.socket, 'connect');
    s.socket.write(request);
    await s.until(() => s.buffer.indexOf('\r\n\r\n') >= 0 || s.ended);
    const end = s.buffer.indexOf('\r\n\r\n');
    if (end < 0) throw new Error('connection closed before a response');
    const head = s.buffer.subarray(0, end).toString();
    s.buffer = s.buffer.subarray(end + 4);
    const [statusLine, ...lines] = head.split('\r\n');
    s.status = Number(statusLine.split(' ')[1]);
    s.headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    return s;
  }

  /** A valid upgrade to `path`, with `extra` header lines. */
  static async open(port, { path = '/echo', extra = [], key = randomBytes(16).toString('base64') } = {}) {
    const request = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', ...extra, '', ''].join('\r\n');
    const s = await RawSocket.handshake(port, request);
    s.key = key;
    return s;
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  async until(predicate, timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the server');
      await new Promise((resolve) => { this.waiters.push(resolve); setTimeout(resolve, 50); });
    }
  }

  send(...frames) { this.socket.write(Buffer.concat(frames)); }

  /** The next frame from the server, or null once the connection has ended without one. */
  async read(timeoutMs = 3000) {
    let parsed;
    await this.until(() => (parsed = this.tryParse()) !== undefined || this.ended, timeoutMs);
    return parsed ?? null;
  }

  tryParse() {
    const b = this.buffer;
    if (b.length < 2) return undefined;
    let length = b[1] & 0x7f;
    let offset = 2;
    let form = 7;
    if (length === 126) { if (b.length < 4) return undefined; length = b.readUInt16BE(2); offset = 4; form = 16; }
    else if (length === 127) { if (b.length < 10) return undefined; length = Number(b.readBigUInt64BE(2)); offset = 10; form = 64; }
    const masked = (b[1] & 0x80) !== 0;
    if (masked) offset += 4;
    if (b.length < offset + length) return undefined;
    const f = { fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, masked, form,
      payload: Buffer.from(b.subarray(offset, offset + length)) };
    this.buffer = b.subarray(offset + length);
    return f;
  }

  /** Reads frames until a close frame; returns { code, reason } (code null: none) or null when dropped. */
  async readClose(timeoutMs = 3000) {
    for (;;) {
      const f = await this.read(timeoutMs);
      if (!f) return null;
      if (f.opcode !== OP.close) continue;
      return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null, reason: f.payload.subarray(2).toString() };
    }
  }

  destroy() { this.socket.destroy(); }
}
