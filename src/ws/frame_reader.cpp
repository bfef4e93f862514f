#include "ws/frame_reader.hpp"

#include <algorithm>

#include "ws/close_codes.hpp"
#include "ws/deflate.hpp"

namespace zena::ws {

namespace {

constexpr auto k_protocol_error = static_cast<std::uint16_t>(close_code::protocol_error);
constexpr auto k_invalid_payload = static_cast<std::uint16_t>(close_code::invalid_payload);
constexpr auto k_too_big = static_cast<std::uint16_t>(close_code::message_too_big);
constexpr auto k_policy = static_cast<std::uint16_t>(close_code::policy_violation);

// XORs `n` bytes of `in` with the 4-byte mask into `out`.
void unmask(const char* in, std::size_t n, const unsigned char* mask, char* out) {
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<char>(static_cast<unsigned char>(in[i]) ^ mask[i & 3U]);
    }
}

std::string& thread_buffer() {
    thread_local std::string buffer;
    return buffer;
}

std::string& thread_inflated() {
    thread_local std::string buffer;
    return buffer;
}

}  // namespace

void frame_reader::fail(std::uint16_t code, const char* reason) {
    state_ = status::failed;
    failure_code_ = code;
    failure_reason_ = reason;
    forget_held();
}

std::size_t frame_reader::consume(std::string_view in, handler& h, std::int64_t now_ms) {
    std::size_t used = 0;
    while (used < in.size()) {
        // A handler may call discard(): the frames after that one are skipped.
        const auto n = discarding_ ? skip_frame(in.substr(used), h) : read_frame(in.substr(used), h, now_ms);
        if (n == 0 || state_ != status::more) break;
        used += n;
    }
    return used;
}

frame_reader::status frame_reader::feed(std::string_view data, handler& h, std::int64_t now_ms) {
    if (state_ != status::more) return state_;
    if (message_overdue(now_ms)) return fail_overdue_message();
    if (!held_ || held_->partial.empty()) {
        const auto used = consume(data, h, now_ms);
        if (state_ == status::more && used < data.size()) hold().partial.assign(data.substr(used));
        return state_;
    }
    auto& partial = held_->partial;
    partial.append(data);
    const auto used = consume(partial, h, now_ms);
    if (state_ == status::more) {
        partial.erase(0, used);
        if (partial.empty()) {
            std::string{}.swap(partial);
            release_if_idle();  // an idle reader holds nothing
        }
    }
    return state_;
}

frame_reader::status frame_reader::fail_overdue_message() {
    failed_limit_ = limit::message_timeout;
    fail(k_policy, "message not finished in time");
    return state_;
}

void frame_reader::discard(std::size_t max_bytes) {
    if (discarding_ || state_ != status::more) return;
    discarding_ = true;
    in_message_ = false;
    auto& kept = hold();
    // Freed, not only cleared: no handler call reads it (a finished message is moved out before
    // it is delivered), and a closing connection has no use for it. `partial` may be the bytes
    // being read, and stays.
    std::string{}.swap(kept.message);
    kept.skip = 0;
    kept.discard_left = max_bytes;
}

std::size_t frame_reader::skip_frame(std::string_view in, handler& h) {
    auto& kept = *held_;  // made by discard()
    const auto charge = [&](std::size_t n) -> std::size_t {
        if (n > kept.discard_left) {
            failed_limit_ = limit::after_close;
            return fail(k_policy, "too much data after the close"), 0;
        }
        kept.discard_left -= n;
        return n;
    };
    if (kept.skip > 0) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kept.skip, in.size()));
        kept.skip -= n;
        return charge(n);
    }
    // The header only, as far as finding the next one needs: the connection is ending anyway.
    if (in.size() < 2) return 0;
    const auto b0 = static_cast<unsigned char>(in[0]);
    const auto b1 = static_cast<unsigned char>(in[1]);
    std::uint64_t length = b1 & 0x7FU;
    std::size_t header = 2;
    if (length == 126) {
        if (in.size() < 4) return 0;
        length =
            (static_cast<std::uint64_t>(static_cast<unsigned char>(in[2])) << 8) | static_cast<unsigned char>(in[3]);
        header = 4;
    } else if (length == 127) {
        if (in.size() < 10) return 0;
        length = 0;
        for (int i = 0; i < 8; ++i) length = (length << 8) | static_cast<unsigned char>(in[2 + i]);
        header = 10;
    }
    if ((b1 & 0x80U) != 0) header += 4;
    if (in.size() < header) return 0;
    if (static_cast<opcode>(b0 & 0x0FU) == opcode::close) {
        // The client's answer: its code and reason are not worth reading now.
        state_ = status::closed;
        forget_held();
        h.on_close(std::nullopt, {});
        return 0;
    }
    const auto body = static_cast<std::size_t>(std::min<std::uint64_t>(length, in.size() - header));
    kept.skip = length - body;
    return charge(header + body);
}

std::size_t frame_reader::read_frame(std::string_view in, handler& h, std::int64_t now_ms) {
    if (in.size() < 2) return 0;
    const auto b0 = static_cast<unsigned char>(in[0]);
    const auto b1 = static_cast<unsigned char>(in[1]);
    const bool fin = (b0 & 0x80U) != 0;
    const bool rsv1 = (b0 & 0x40U) != 0;
    const auto op = static_cast<opcode>(b0 & 0x0FU);
    const bool control = (b0 & 0x08U) != 0;

    if ((b0 & 0x30U) != 0) return fail(k_protocol_error, "reserved bits set"), 0;
    switch (op) {
        case opcode::continuation:
        case opcode::text:
        case opcode::binary:
        case opcode::close:
        case opcode::ping:
        case opcode::pong: break;
        default: return fail(k_protocol_error, "reserved opcode"), 0;
    }
    if ((b1 & 0x80U) == 0) return fail(k_protocol_error, "client frames must be masked"), 0;
    if (rsv1 && (!deflate_ || control || op == opcode::continuation)) {
        return fail(k_protocol_error, "RSV1 set where no extension allows it"), 0;
    }
    std::uint64_t length = b1 & 0x7FU;
    std::size_t header = 2;
    if (control && (!fin || length > k_max_control_payload)) {
        return fail(k_protocol_error, "control frames are whole and at most 125 bytes"), 0;
    }
    if (length == 126) {
        if (in.size() < 4) return 0;
        length =
            (static_cast<std::uint64_t>(static_cast<unsigned char>(in[2])) << 8) | static_cast<unsigned char>(in[3]);
        if (length < 126) return fail(k_protocol_error, "frame length not in its shortest form"), 0;
        header = 4;
    } else if (length == 127) {
        if (in.size() < 10) return 0;
        length = 0;
        for (int i = 0; i < 8; ++i) length = (length << 8) | static_cast<unsigned char>(in[2 + i]);
        if ((length >> 63) != 0) return fail(k_protocol_error, "frame length with its top bit set"), 0;
        if (length <= 0xFFFF) return fail(k_protocol_error, "frame length not in its shortest form"), 0;
        header = 10;
    }
    if (!control) {
        if (op == opcode::continuation && !in_message_) {
            return fail(k_protocol_error, "continuation frame without a message"), 0;
        }
        if (op != opcode::continuation && in_message_) {
            return fail(k_protocol_error, "new message before the last one ended"), 0;
        }
        const std::size_t so_far = held_ ? held_->message.size() : 0;
        if (length > max_message_bytes_ - so_far) return fail(k_too_big, "message too big"), 0;
    }
    const std::size_t total = header + 4 + static_cast<std::size_t>(length);
    if (in.size() < total) return 0;
    // Every whole frame costs a token, whatever it carries: empty continuations and unasked
    // pongs cost as much to read as any other frame.
    if (!frames_.take(budget_->frames, now_ms)) {
        failed_limit_ = limit::frames;
        return fail(k_policy, "too many frames"), 0;
    }

    const auto* mask = reinterpret_cast<const unsigned char*>(in.data() + header);
    const char* masked = in.data() + header + 4;
    const auto n = static_cast<std::size_t>(length);

    if (control) {
        char payload[k_max_control_payload];
        unmask(masked, n, mask, payload);
        read_control(op, std::string_view(payload, n), h);
        return state_ == status::failed ? 0 : total;
    }

    if (op != opcode::continuation) {
        message_text_ = op == opcode::text;
        message_compressed_ = rsv1;
        utf8_.reset();
        if (!fin) hold().message_started_ms = now_ms;  // its deadline runs from here
    }
    const bool check_utf8 = message_text_ && !message_compressed_;
    if (fin && !in_message_) {
        // The common case, a message in one frame: no copy kept on the connection.
        auto& buffer = thread_buffer();
        buffer.resize(n);
        unmask(masked, n, mask, buffer.data());
        deliver(buffer, false, h);
        return state_ == status::more ? total : 0;
    }
    auto& message = hold().message;
    const auto start = message.size();
    message.resize(start + n);
    unmask(masked, n, mask, message.data() + start);
    if (check_utf8 && !utf8_.feed(std::string_view(message).substr(start))) {
        return fail(k_invalid_payload, "text is not UTF-8"), 0;
    }
    in_message_ = !fin;
    if (fin) {
        std::string whole = std::move(message);
        message.clear();
        release_if_idle();
        deliver(whole, true, h);
    }
    return state_ == status::more ? total : 0;
}

void frame_reader::forget_held() {
    // Cleared, not freed: the bytes being read may be the held ones.
    if (held_) {
        held_->partial.clear();
        held_->message.clear();
    }
}

void frame_reader::read_control(opcode op, std::string_view body, handler& h) {
    if (op == opcode::ping) return h.on_ping(body);
    if (op == opcode::pong) return h.on_pong();
    if (body.size() == 1) return fail(k_protocol_error, "close payload of one byte");
    std::optional<std::uint16_t> code;
    std::string_view reason;
    if (body.size() >= 2) {
        code = static_cast<std::uint16_t>((static_cast<unsigned>(static_cast<unsigned char>(body[0])) << 8) |
                                          static_cast<unsigned char>(body[1]));
        reason = body.substr(2);
        if (!valid_close_code(*code)) return fail(k_protocol_error, "invalid close code");
        if (!valid_utf8(reason)) return fail(k_invalid_payload, "close reason is not UTF-8");
    }
    state_ = status::closed;
    forget_held();
    h.on_close(code, reason);
}

void frame_reader::deliver(std::string_view data, bool fragmented, handler& h) {
    std::string_view message = data;
    if (message_compressed_) {
        auto& inflated = thread_inflated();
        switch (inflate_message(data, max_message_bytes_, inflated)) {
            case inflate_status::ok: break;
            case inflate_status::too_large: return fail(k_too_big, "message too big");
            case inflate_status::corrupt: return fail(k_invalid_payload, "compressed data is corrupt");
        }
        message = inflated;
        if (message_text_ && !valid_utf8(message)) return fail(k_invalid_payload, "text is not UTF-8");
    } else if (message_text_) {
        // The fragments of a fragmented message were checked as they came.
        if (fragmented ? !utf8_.complete() : !valid_utf8(message)) return fail(k_invalid_payload, "text is not UTF-8");
    }
    h.on_message(message, message_text_);
}

}  // namespace zena::ws
