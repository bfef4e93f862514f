#pragma once
// Reads the frames a client sends (RFC 6455 §5, and RSV1 of RFC 7692) from whatever bytes the
// socket gave, and hands whole messages and control frames to a handler. Every rule a server
// must enforce is enforced here, each with the close code the RFC names: masking, reserved bits
// and opcodes, minimal lengths, control frame limits, fragmentation order (1002); UTF-8 in text
// and close reasons (1007); the message size limit, checked from the header before the payload
// arrives and again after inflation (1009).
//
// What a client may make it spend (docs/security.md): every frame it reads, data, continuation,
// ping or pong, takes a token from the connection's frame budget (budget::frames), and a
// message begun by a fragment must end within budget::message_timeout; past either it fails with
// 1008 (policy violation) and says which (limit()).
//
// After the connection's own close (discard()), it reads only frame headers: payloads are
// skipped unread (never unmasked or inflated) until the client's close frame, and it gives up
// after a number of bytes.
//
// Memory: an idle reader holds nothing. A frame split across reads is kept until it completes;
// a fragmented message is kept until its last fragment, or its deadline; both are bounded by the
// message limit. A message that arrives whole in one read is handed over from a per-thread
// buffer.
//
// Threading: one connection's; used from its thread only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/token_bucket.hpp"
#include "ws/frame.hpp"

namespace zena::ws {

class frame_reader {
public:
    class handler {
    public:
        virtual void on_message(std::string_view data, bool text) = 0;
        virtual void on_ping(std::string_view payload) = 0;
        virtual void on_pong() = 0;
        // A valid close frame; nothing after it is read. No code: the frame was empty.
        virtual void on_close(std::optional<std::uint16_t> code, std::string_view reason) = 0;

    protected:
        ~handler() = default;
    };

    enum class status : std::uint8_t {
        more,    // every whole frame was handled; waiting for more bytes
        closed,  // a close frame was read (the handler was told); read no further
        failed,  // the client broke the protocol: close with failure_code() and failure_reason()
    };

    // What one connection may make its reader spend; the same for every connection of a server
    // (held by reference). The defaults are the settings' (websocket.client_frames_per_second,
    // websocket.client_frames_burst, websocket.message_timeout_ms).
    struct budget {
        util::token_rate frames{1000, 5000};               // frames of any kind, per second and burst
        std::chrono::milliseconds message_timeout{10000};  // first fragment to last
    };

    // Which limit failed the reader (failure_code() 1008); none otherwise. after_close: more
    // than discard()'s allowance came after the connection's own close.
    enum class limit : std::uint8_t { none, frames, message_timeout, after_close };

    // `limits` outlives the reader.
    frame_reader(std::size_t max_message_bytes, bool deflate, const budget& limits)
        : max_message_bytes_(max_message_bytes), budget_(&limits), frames_(limits.frames), deflate_(deflate) {}

    // Reads every whole frame in `data` (plus what an earlier call kept), keeping an
    // incomplete one for the next call. Once closed or failed, the reader reads nothing more.
    // `now_ms`: a monotonic clock in milliseconds, for the frame budget and the message deadline.
    status feed(std::string_view data, handler& h, std::int64_t now_ms);

    // The connection sent its own close: from now on frames are skipped, not read, until the
    // client's close frame (reported as on_close(nullopt, {}) from its header alone, its payload
    // unread). Fails (limit::after_close) once more than `max_bytes` have come after this call. A
    // message being put together is dropped. May be called from inside a handler call.
    void discard(std::size_t max_bytes);
    bool discarding() const { return discarding_; }

    // Whether a message begun by a fragment has outlived budget::message_timeout; feed() checks
    // it too, but a client that goes silent must be checked from elsewhere (the heartbeat).
    bool message_overdue(std::int64_t now_ms) const {
        return in_message_ && held_ && now_ms - held_->message_started_ms > budget_->message_timeout.count();
    }
    // Fails the reader as feed() would on an overdue message (1008).
    status fail_overdue_message();

    std::uint16_t failure_code() const { return failure_code_; }
    std::string_view failure_reason() const { return failure_reason_; }
    limit failed_limit() const { return failed_limit_; }
    // Bytes held between calls (an incomplete frame and a fragmented message).
    std::size_t held_bytes() const { return held_ ? held_->partial.size() + held_->message.size() : 0; }

private:
    // Reads frames from the front of `in` while they are whole; returns the bytes used.
    std::size_t consume(std::string_view in, handler& h, std::int64_t now_ms);
    // Handles the frame at the front of `in`; returns its size, or 0 when it is not all there
    // yet (or the reader stopped: see state_).
    std::size_t read_frame(std::string_view in, handler& h, std::int64_t now_ms);
    // discard(): skips what it can of the frame at the front of `in` without reading its
    // payload; returns the bytes skipped (0: its header is not all there yet, or it stopped).
    std::size_t skip_frame(std::string_view in, handler& h);
    void fail(std::uint16_t code, const char* reason);
    // A whole, unmasked ping, pong or close frame.
    void read_control(opcode op, std::string_view body, handler& h);
    // Empties what is held between reads (on a close or a failure).
    void forget_held();
    // The whole message is in `data` (unmasked, maybe compressed): check and deliver it.
    // `fragmented`: it came in several frames, whose text utf8_ has already seen.
    void deliver(std::string_view data, bool fragmented, handler& h);

    // An idle connection holds a reader: the fields are ordered to leave no padding.
    std::size_t max_message_bytes_;
    const budget* budget_;
    util::token_bucket frames_;  // budget::frames
    const char* failure_reason_ = "";
    // What is kept between reads, made only when something is: an idle reader holds a null
    // pointer, not two empty strings.
    struct held {
        std::string partial;                  // the start of a frame not yet complete
        std::string message;                  // the fragments so far of a message not yet complete
        std::int64_t message_started_ms = 0;  // when its first fragment was read
        std::uint64_t skip = 0;               // discard(): payload bytes of the frame being skipped
        std::uint64_t discard_left = 0;       // discard(): bytes still allowed before giving up
    };
    held& hold() {
        if (!held_) held_ = std::make_unique<held>();
        return *held_;
    }
    // Drops the held storage once nothing is in it.
    void release_if_idle() {
        if (held_ && !in_message_ && !discarding_ && held_->partial.empty() && held_->message.empty()) held_.reset();
    }
    std::unique_ptr<held> held_;
    std::uint16_t failure_code_ = 0;
    status state_ = status::more;
    limit failed_limit_ = limit::none;
    bool deflate_;
    bool in_message_ = false;  // a fragmented message has started
    bool message_text_ = false;
    bool message_compressed_ = false;
    bool discarding_ = false;  // discard() was called
    utf8_validator utf8_;      // of the held message, for uncompressed text
};

}  // namespace zena::ws
