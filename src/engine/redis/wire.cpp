#include "engine/redis/wire.hpp"

#include <charconv>

namespace zena::engine::wire {
namespace {

constexpr std::uint8_t k_version = 1;
constexpr std::uint8_t k_everyone = 1;
constexpr std::uint8_t k_ordered = 2;

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7F) | 0x80));
        v >>= 7U;
    }
    out.push_back(static_cast<char>(v));
}

void put_string(std::string& out, std::string_view s) {
    put_varint(out, s.size());
    out.append(s);
}

struct reader {
    std::string_view in;
    bool ok = true;

    std::uint8_t byte() {
        if (in.empty()) {
            ok = false;
            return 0;
        }
        const auto b = static_cast<std::uint8_t>(in.front());
        in.remove_prefix(1);
        return b;
    }
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            const auto b = byte();
            if (!ok) return 0;
            v |= static_cast<std::uint64_t>(b & 0x7FU) << shift;
            if ((b & 0x80U) == 0) return v;
        }
        ok = false;  // longer than 10 bytes
        return 0;
    }
    std::string string() {
        const auto n = varint();
        if (!ok || n > in.size()) {
            ok = false;
            return {};
        }
        std::string s{in.substr(0, n)};
        in.remove_prefix(n);
        return s;
    }
};

}  // namespace

std::string encode(const body& b) {
    std::string out;
    out.reserve(32 + b.origin.size() + b.except_user.size() + b.type.size() + b.payload.size());
    out.push_back(static_cast<char>(k_version));
    out.push_back(static_cast<char>((b.everyone ? k_everyone : 0U) | (b.ordered ? k_ordered : 0U)));
    out.push_back(static_cast<char>(b.delivery));
    put_varint(out, b.latest_key);
    put_string(out, b.origin);
    put_varint(out, b.token);
    put_varint(out, b.index);
    put_string(out, b.except_user);
    put_varint(out, b.except_connection);
    put_string(out, b.type);
    put_string(out, b.payload);
    return out;
}

std::optional<body> decode_body(std::string_view bytes) {
    reader r{bytes};
    body b;
    if (r.byte() != k_version || !r.ok) return std::nullopt;
    const auto flags = r.byte();
    if ((flags & ~static_cast<unsigned>(k_everyone | k_ordered)) != 0) return std::nullopt;
    b.everyone = (flags & k_everyone) != 0;
    b.ordered = (flags & k_ordered) != 0;
    const auto delivery = r.byte();
    if (delivery > static_cast<std::uint8_t>(ws::delivery_class::ephemeral)) return std::nullopt;
    b.delivery = static_cast<ws::delivery_class>(delivery);
    b.latest_key = r.varint();
    b.origin = r.string();
    b.token = r.varint();
    const auto index = r.varint();
    if (index > UINT32_MAX) return std::nullopt;
    b.index = static_cast<std::uint32_t>(index);
    b.except_user = r.string();
    b.except_connection = r.varint();
    b.type = r.string();
    b.payload = r.string();
    if (!r.ok || !r.in.empty()) return std::nullopt;
    return b;
}

std::optional<message> decode_message(std::string_view bytes) {
    const auto space = bytes.find(' ');
    const auto newline = bytes.find('\n');
    if (space == std::string_view::npos || newline == std::string_view::npos || newline < space) return std::nullopt;
    message m;
    const auto seq = bytes.substr(0, space);
    auto [ptr, ec] = std::from_chars(seq.data(), seq.data() + seq.size(), m.seq);
    if (ec != std::errc{} || ptr != seq.data() + seq.size()) return std::nullopt;
    m.epoch = std::string{bytes.substr(space + 1, newline - space - 1)};
    if ((m.seq == 0) != m.epoch.empty()) return std::nullopt;
    auto b = decode_body(bytes.substr(newline + 1));
    if (!b) return std::nullopt;
    m.body = std::move(*b);
    return m;
}

}  // namespace zena::engine::wire
