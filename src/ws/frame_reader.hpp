#pragma once
// Reads the frames a client sends (RFC 6455 §5, and RSV1 of RFC 7692) from whatever bytes the
// socket gave, and hands whole messages and control frames to a handler. Every rule a server
// must enforce is enforced here, each with the close code the RFC names: masking, reserved bits
// and opcodes, minimal lengths, control frame limits, fragmentation order (1002); UTF-8 in text
// and close reasons (1007); the message size limit, checked from the header before the payload
// arrives and again after inflation (1009).
//
// Memory: an idle reader holds nothing. A frame split across reads is kept until it completes;
// a fragmented message is kept until its last fragment; both are bounded by the message limit.
// A message that arrives whole in one read is handed over from a per-thread buffer.
//
// Threading: one connection's; used from its thread only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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

    enum class status {
        more,    // every whole frame was handled; waiting for more bytes
        closed,  // a close frame was read (the handler was told); read no further
        failed,  // the client broke the protocol: close with failure_code() and failure_reason()
    };

    frame_reader(std::size_t max_message_bytes, bool deflate)
        : max_message_bytes_(max_message_bytes), deflate_(deflate) {}

    // Reads every whole frame in `data` (plus what an earlier call kept), keeping an
    // incomplete one for the next call. Once closed or failed, the reader reads nothing more.
    status feed(std::string_view data, handler& h);

    std::uint16_t failure_code() const { return failure_code_; }
    std::string_view failure_reason() const { return failure_reason_; }
    // Bytes held between calls (an incomplete frame and a fragmented message).
    std::size_t held_bytes() const { return held_ ? held_->partial.size() + held_->message.size() : 0; }

private:
    // Reads frames from the front of `in` while they are whole; returns the bytes used.
    std::size_t consume(std::string_view in, handler& h);
    // Handles the frame at the front of `in`; returns its size, or 0 when it is not all there
    // yet (or the reader stopped: see state_).
    std::size_t read_frame(std::string_view in, handler& h);
    void fail(std::uint16_t code, const char* reason);
    // A whole, unmasked ping, pong or close frame.
    void read_control(opcode op, std::string_view body, handler& h);
    // Empties what is held between reads (on a close or a failure).
    void forget_held();
    // The whole message is in `data` (unmasked, maybe compressed): check and deliver it.
    // `fragmented`: it came in several frames, whose text utf8_ has already seen.
    void deliver(std::string_view data, bool fragmented, handler& h);

    std::size_t max_message_bytes_;
    bool deflate_;
    status state_ = status::more;
    std::uint16_t failure_code_ = 0;
    const char* failure_reason_ = "";
    // What is kept between reads, made only when something is: an idle reader holds a null
    // pointer, not two empty strings.
    struct held {
        std::string partial;  // the start of a frame not yet complete
        std::string message;  // the fragments so far of a message not yet complete
    };
    held& hold() {
        if (!held_) held_ = std::make_unique<held>();
        return *held_;
    }
    // Drops the held storage once nothing is in it.
    void release_if_idle() {
        if (held_ && held_->partial.empty() && held_->message.empty()) held_.reset();
    }
    std::unique_ptr<held> held_;
    bool in_message_ = false;  // a fragmented message has started
    bool message_text_ = false;
    bool message_compressed_ = false;
    utf8_validator utf8_;  // of the held message, for uncompressed text
};

}  // namespace zena::ws
