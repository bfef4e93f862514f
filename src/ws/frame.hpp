#pragma once
// RFC 6455 framing, the parts that need no socket: server frame headers, the shared outgoing
// frame, close payloads, UTF-8 validation and the handshake's accept key. The reader of client
// frames is frame_reader.
//
// Threading: free functions and value types. A `frame` is immutable once built and shared by
// every connection on every thread; its compressed form, and its twin in another encoding, are
// made once, by the first thread that asks (std::call_once).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace zena::ws {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

// The largest header a server frame has (2 + 8 bytes; server frames are never masked).
inline constexpr std::size_t k_max_header_bytes = 10;
// Control frames carry at most 125 bytes (RFC 6455 §5.5).
inline constexpr std::size_t k_max_control_payload = 125;

// Writes the header of one final (FIN) unmasked frame of `payload_size` bytes to `out`, which has
// room for k_max_header_bytes; `compressed` sets RSV1 (permessage-deflate). Returns its length.
std::size_t write_header(char* out, opcode op, std::size_t payload_size, bool compressed = false);

// A whole unmasked frame: header and payload.
std::string make_frame(opcode op, std::string_view payload, bool compressed = false);

// One outgoing WebSocket message: the frame header and the payload in one buffer, built once and
// handed to every target connection, whichever thread it is on.
class frame {
public:
    // `buffer` holds k_max_header_bytes of room, then the payload.
    frame(opcode op, std::string buffer);

    static std::shared_ptr<const frame> make(opcode op, std::string_view payload);

    opcode op() const { return op_; }
    // The message as the application sees it (the JSON text of an event).
    std::string_view payload() const { return std::string_view(bytes_).substr(k_max_header_bytes); }
    // Header and payload, as written to a connection without permessage-deflate.
    std::string_view wire() const { return std::string_view(bytes_).substr(start_); }
    // The same message for a connection with permessage-deflate: compressed (RSV1) by the first
    // thread that asks, once for every connection; wire() for control frames and small ones.
    std::string_view deflated_wire() const;
    // The same message in the other encoding a connection may speak (the binary MessagePack of a
    // JSON text frame, protocol::make_msgpack_frame): made by `make` from this frame by the first
    // thread that asks, once for every connection, and kept with this frame (so a stored event's
    // twin is kept with its history). Null when `make` gives none. One other encoding per frame:
    // every caller passes the same `make`. A process without such connections never calls it.
    using twin_maker = std::shared_ptr<const frame> (*)(const frame&);
    const std::shared_ptr<const frame>& twin(twin_maker make) const;
    // Payload bytes.
    std::size_t size() const { return bytes_.size() - k_max_header_bytes; }
    // What its buffer holds on the heap (its capacity: builders reserve ahead), for the budgets
    // that count memory.
    std::size_t buffer_bytes() const { return bytes_.capacity(); }

private:
    std::string bytes_;
    std::uint8_t start_;
    opcode op_;
    mutable std::once_flag deflate_once_;
    mutable std::string deflated_;  // empty: wire() is sent instead
    mutable std::once_flag twin_once_;
    mutable std::shared_ptr<const frame> twin_;
};

// The bytes of one message, shared read-only across threads and connections.
using shared_frame = std::shared_ptr<const frame>;

// The payload of a close frame: the code in network order and the reason, cut at a character
// boundary so that the frame stays within the control limit.
std::string close_payload(std::uint16_t code, std::string_view reason);

// Whether a close code may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2 and the
// IANA registry): 1000-1003, 1007-1014 and 3000-4999.
bool valid_close_code(std::uint16_t code);

// Validates UTF-8 incrementally: text arrives in fragments and a code point may be split
// between two of them. Rejects overlong forms, surrogates and values above U+10FFFF as soon as
// the offending byte is seen.
class utf8_validator {
public:
    // False once the bytes so far cannot start valid UTF-8 (and from then on).
    bool feed(std::string_view bytes);
    // Whether the bytes so far end on a character boundary.
    bool complete() const { return need_ == 0 && valid_; }
    void reset() { *this = utf8_validator{}; }

private:
    bool valid_ = true;
    std::uint8_t need_ = 0;    // continuation bytes still expected
    std::uint8_t low_ = 0x80;  // bounds of the next continuation byte (narrowed after a lead byte)
    std::uint8_t high_ = 0xBF;
};

bool valid_utf8(std::string_view bytes);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
std::string accept_key(std::string_view key);

}  // namespace zena::ws
