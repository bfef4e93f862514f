#include "ws/frame.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>

#include "ws/deflate.hpp"

namespace zena::ws {

std::size_t write_header(char* out, opcode op, std::size_t payload_size, bool compressed) {
    auto* p = reinterpret_cast<unsigned char*>(out);
    p[0] = static_cast<unsigned char>(0x80U | (compressed ? 0x40U : 0U) | static_cast<unsigned>(op));
    if (payload_size < 126) {
        p[1] = static_cast<unsigned char>(payload_size);
        return 2;
    }
    if (payload_size <= 0xFFFF) {
        p[1] = 126;
        p[2] = static_cast<unsigned char>(payload_size >> 8);
        p[3] = static_cast<unsigned char>(payload_size);
        return 4;
    }
    p[1] = 127;
    const auto size = static_cast<std::uint64_t>(payload_size);
    for (int i = 0; i < 8; ++i) p[2 + i] = static_cast<unsigned char>(size >> (56 - 8 * i));
    return 10;
}

frame::frame(opcode op, std::string buffer) : bytes_(std::move(buffer)), op_(op) {
    char header[k_max_header_bytes];
    const auto n = write_header(header, op, size());
    start_ = static_cast<std::uint8_t>(k_max_header_bytes - n);
    bytes_.replace(start_, n, header, n);
}

std::shared_ptr<const frame> frame::make(opcode op, std::string_view payload) {
    std::string buffer(k_max_header_bytes, '\0');
    buffer += payload;
    return std::make_shared<const frame>(op, std::move(buffer));
}

std::string_view frame::deflated_wire() const {
    const bool data = op_ == opcode::text || op_ == opcode::binary;
    if (!data || size() < k_compress_threshold) return wire();
    std::call_once(deflate_once_, [this] {
        const auto compressed = compress_message(payload());
        if (compressed.size() >= size()) return;  // incompressible: the plain frame is smaller
        deflated_ = make_frame(op_, compressed, true);
    });
    return deflated_.empty() ? wire() : std::string_view(deflated_);
}

const std::shared_ptr<const frame>& frame::twin(twin_maker make) const {
    std::call_once(twin_once_, [this, make] { twin_ = make(*this); });
    return twin_;
}

std::string make_frame(opcode op, std::string_view payload, bool compressed) {
    std::string out(k_max_header_bytes + payload.size(), '\0');
    const auto header = write_header(out.data(), op, payload.size(), compressed);
    out.replace(header, std::string::npos, payload);
    out.resize(header + payload.size());
    return out;
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
    if (reason.size() > k_max_control_payload - 2) {
        reason = reason.substr(0, k_max_control_payload - 2);
        // Never end inside a character (a code point is at most four bytes).
        for (int i = 0; i < 3 && !valid_utf8(reason); ++i) reason.remove_suffix(1);
    }
    std::string out;
    out.reserve(2 + reason.size());
    out += static_cast<char>(code >> 8);
    out += static_cast<char>(code & 0xFFU);
    out += reason;
    return out;
}

bool valid_close_code(std::uint16_t code) {
    if (code >= 3000 && code <= 4999) return true;
    if (code < 1000 || code > 1014) return false;
    return code != 1004 && code != 1005 && code != 1006;
}

bool utf8_validator::feed(std::string_view bytes) {
    for (const char ch : bytes) {
        if (!valid_) return false;
        const auto b = static_cast<std::uint8_t>(ch);
        if (need_ > 0) {
            if (b < low_ || b > high_) {
                valid_ = false;
                return false;
            }
            --need_;
            low_ = 0x80;
            high_ = 0xBF;
            continue;
        }
        if (b < 0x80) continue;
        // Unicode Table 3-7: the lead byte fixes the length and the range of the next byte.
        if (b >= 0xC2 && b <= 0xDF) {
            need_ = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need_ = 2;
            if (b == 0xE0) low_ = 0xA0;   // no overlong three-byte forms
            if (b == 0xED) high_ = 0x9F;  // no surrogates
        } else if (b >= 0xF0 && b <= 0xF4) {
            need_ = 3;
            if (b == 0xF0) low_ = 0x90;   // no overlong four-byte forms
            if (b == 0xF4) high_ = 0x8F;  // nothing above U+10FFFF
        } else {
            valid_ = false;
            return false;
        }
    }
    return valid_;
}

bool valid_utf8(std::string_view bytes) {
    utf8_validator v;
    return v.feed(bytes) && v.complete();
}

std::string accept_key(std::string_view key) {
    static constexpr std::string_view k_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input;
    input.reserve(key.size() + k_guid.size());
    input += key;
    input += k_guid;
    std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
    std::array<unsigned char, 4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1> encoded{};
    const int n = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest.size()));
    return {reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(n)};
}

}  // namespace zena::ws
