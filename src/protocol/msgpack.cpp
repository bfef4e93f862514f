#include "protocol/msgpack.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#include <simdjson.h>

#include "protocol/json_writer.hpp"

namespace zena::protocol {
namespace {

// ---- out: JSON to MessagePack

// Big-endian, in one append (a byte at a time costs a capacity check each).
void put_be(std::string& out, std::uint64_t v, int bytes) {
    char b[8];
    for (int i = 0; i < bytes; ++i) b[i] = static_cast<char>((v >> (8 * (bytes - 1 - i))) & 0xFFU);
    out.append(b, static_cast<std::size_t>(bytes));
}

void put_tag(std::string& out, std::uint8_t tag) { out += static_cast<char>(tag); }

// A str, array or map head: the fix form when it fits, else the 8-, 16- or 32-bit count.
void put_head(std::string& out, std::size_t n, std::uint8_t fix, std::size_t fix_max, std::uint8_t tag8,
              std::uint8_t tag16, std::uint8_t tag32) {
    if (n <= fix_max) return put_tag(out, static_cast<std::uint8_t>(fix | n));
    if (tag8 != 0 && n <= 0xFF) return put_tag(out, tag8), put_be(out, n, 1);
    if (n <= 0xFFFF) return put_tag(out, tag16), put_be(out, n, 2);
    put_tag(out, tag32);
    put_be(out, n, 4);
}

void put_str(std::string& out, std::string_view s) {
    put_head(out, s.size(), 0xa0, 31, 0xd9, 0xda, 0xdb);
    out += s;
}

void put_uint(std::string& out, std::uint64_t v) {
    if (v < 0x80) return put_tag(out, static_cast<std::uint8_t>(v));
    if (v <= 0xFF) return put_tag(out, 0xcc), put_be(out, v, 1);
    if (v <= 0xFFFF) return put_tag(out, 0xcd), put_be(out, v, 2);
    if (v <= 0xFFFFFFFFULL) return put_tag(out, 0xce), put_be(out, v, 4);
    put_tag(out, 0xcf);
    put_be(out, v, 8);
}

void put_int(std::string& out, std::int64_t v) {
    if (v >= 0) return put_uint(out, static_cast<std::uint64_t>(v));
    const auto bits = static_cast<std::uint64_t>(v);
    if (v >= -32) return put_tag(out, static_cast<std::uint8_t>(bits & 0xFFU));
    if (v >= INT8_MIN) return put_tag(out, 0xd0), put_be(out, bits, 1);
    if (v >= INT16_MIN) return put_tag(out, 0xd1), put_be(out, bits, 2);
    if (v >= INT32_MIN) return put_tag(out, 0xd2), put_be(out, bits, 4);
    put_tag(out, 0xd3);
    put_be(out, bits, 8);
}

// simdjson's count saturates at 2^24 - 1: past it, counted.
template <typename Container>
std::size_t count_of(const Container& c) {
    constexpr std::size_t k_saturated = 0xFFFFFF;
    if (c.size() < k_saturated) return c.size();
    std::size_t n = 0;
    for (auto it = c.begin(); it != c.end(); ++it) ++n;
    return n;
}

void put_element(std::string& out, simdjson::dom::element e) {
    using type = simdjson::dom::element_type;
    switch (e.type()) {
        case type::OBJECT: {
            const auto object = e.get_object().value_unsafe();
            put_head(out, count_of(object), 0x80, 15, 0, 0xde, 0xdf);
            for (const auto field : object) {
                put_str(out, field.key);
                put_element(out, field.value);
            }
            return;
        }
        case type::ARRAY: {
            const auto array = e.get_array().value_unsafe();
            put_head(out, count_of(array), 0x90, 15, 0, 0xdc, 0xdd);
            for (const auto item : array) put_element(out, item);
            return;
        }
        case type::STRING: return put_str(out, e.get_string().value_unsafe());
        case type::INT64: return put_int(out, e.get_int64().value_unsafe());
        case type::UINT64: return put_uint(out, e.get_uint64().value_unsafe());
        case type::DOUBLE:
            put_tag(out, 0xcb);
            return put_be(out, std::bit_cast<std::uint64_t>(e.get_double().value_unsafe()), 8);
        case type::BOOL: return put_tag(out, e.get_bool().value_unsafe() ? 0xc3 : 0xc2);
        case type::NULL_VALUE: return put_tag(out, 0xc0);
    }
}

// Its own parser, not thread_json_parser(): a twin is made inside a send, and the caller may
// still hold elements of the thread's parser.
simdjson::dom::parser& transcode_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

// ---- in: MessagePack to JSON, bounded

class decoder {
public:
    decoder(std::string_view in, std::string& out) : in_(in), out_(out) {}

    msgpack_error run() {
        if (auto e = value(0); e != msgpack_error::none) return e;
        return pos_ == in_.size() ? msgpack_error::none : msgpack_error::trailing_bytes;
    }

private:
    std::size_t left() const { return in_.size() - pos_; }

    bool take(std::size_t n, std::string_view& bytes) {
        if (left() < n) return false;
        bytes = in_.substr(pos_, n);
        pos_ += n;
        return true;
    }

    bool take_be(int n, std::uint64_t& v) {
        std::string_view b;
        if (!take(static_cast<std::size_t>(n), b)) return false;
        v = 0;
        for (const char c : b) v = (v << 8U) | static_cast<unsigned char>(c);
        return true;
    }

    template <typename T>
    void put_number(T v) {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, r.ptr);
    }

    msgpack_error str(std::size_t n) {
        std::string_view s;
        if (!take(n, s)) return msgpack_error::truncated;
        if (!ws::valid_utf8(s)) return msgpack_error::invalid_utf8;
        append_json_string(out_, s);
        return msgpack_error::none;
    }

    // `n` values (2n for a map): each takes a byte at least, so a count past the bytes left is
    // refused before the loop.
    msgpack_error container(std::size_t n, bool map, std::size_t depth) {
        if (depth >= k_max_msgpack_depth) return msgpack_error::too_deep;
        if (n > left() / (map ? 2 : 1)) return msgpack_error::truncated;
        out_ += map ? '{' : '[';
        for (std::size_t i = 0; i < n; ++i) {
            if (i > 0) out_ += ',';
            if (map) {
                if (auto e = key(); e != msgpack_error::none) return e;
                out_ += ':';
            }
            if (auto e = value(depth + 1); e != msgpack_error::none) return e;
        }
        out_ += map ? '}' : ']';
        return msgpack_error::none;
    }

    msgpack_error key() {
        std::string_view t;
        if (!take(1, t)) return msgpack_error::truncated;
        const auto tag = static_cast<std::uint8_t>(t[0]);
        std::uint64_t n = 0;
        if ((tag & 0xe0U) == 0xa0U) return str(tag & 0x1fU);
        if (tag == 0xd9 || tag == 0xda || tag == 0xdb) {
            if (!take_be(1 << (tag - 0xd9), n)) return msgpack_error::truncated;
            return str(n);
        }
        return msgpack_error::key_not_string;
    }

    // The shortest form that reads back as the same value, as a JSON number every parser takes:
    // -0 keeps its sign as -0.0 (a bare -0 may read as the integer 0), and an integer-looking
    // form past 64 bits (1.8446744073709552e19 is shortest as 18446744073709552000) is written
    // in scientific notation instead, which simdjson and others read as a double.
    template <typename T>
    msgpack_error floating(T v) {
        if (!std::isfinite(v)) return msgpack_error::not_finite;
        if (v == 0 && std::signbit(v)) {
            out_ += "-0.0";
            return msgpack_error::none;
        }
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        constexpr T k_wide = 1e18;
        if (std::fabs(v) >= k_wide && std::string_view(buf, r.ptr).find_first_of(".e") == std::string_view::npos) {
            r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
        }
        out_.append(buf, r.ptr);
        return msgpack_error::none;
    }

    msgpack_error value(std::size_t depth) {
        std::string_view t;
        if (!take(1, t)) return msgpack_error::truncated;
        const auto tag = static_cast<std::uint8_t>(t[0]);
        std::uint64_t n = 0;
        if (tag < 0x80) return put_number(tag), msgpack_error::none;
        if (tag >= 0xe0) return put_number(static_cast<int>(static_cast<std::int8_t>(tag))), msgpack_error::none;
        if ((tag & 0xf0U) == 0x80U) return container(tag & 0x0fU, true, depth);
        if ((tag & 0xf0U) == 0x90U) return container(tag & 0x0fU, false, depth);
        if ((tag & 0xe0U) == 0xa0U) return str(tag & 0x1fU);
        switch (tag) {
            case 0xc0: out_ += "null"; return msgpack_error::none;
            case 0xc2: out_ += "false"; return msgpack_error::none;
            case 0xc3: out_ += "true"; return msgpack_error::none;
            case 0xca: {
                if (!take_be(4, n)) return msgpack_error::truncated;
                // Its own shortest digits (1.1f, not 1.100000023841858).
                return floating(std::bit_cast<float>(static_cast<std::uint32_t>(n)));
            }
            case 0xcb:
                if (!take_be(8, n)) return msgpack_error::truncated;
                return floating(std::bit_cast<double>(n));
            case 0xcc:
            case 0xcd:
            case 0xce:
            case 0xcf:
                if (!take_be(1 << (tag - 0xcc), n)) return msgpack_error::truncated;
                put_number(n);
                return msgpack_error::none;
            case 0xd0:
            case 0xd1:
            case 0xd2:
            case 0xd3: {
                const int bytes = 1 << (tag - 0xd0);
                if (!take_be(bytes, n)) return msgpack_error::truncated;
                // Sign-extend from the value's width.
                const int shift = 64 - 8 * bytes;
                put_number(static_cast<std::int64_t>(n << shift) >> shift);
                return msgpack_error::none;
            }
            case 0xd9:
            case 0xda:
            case 0xdb:
                if (!take_be(1 << (tag - 0xd9), n)) return msgpack_error::truncated;
                return str(n);
            case 0xdc:
            case 0xdd:
                if (!take_be(tag == 0xdc ? 2 : 4, n)) return msgpack_error::truncated;
                return container(n, false, depth);
            case 0xde:
            case 0xdf:
                if (!take_be(tag == 0xde ? 2 : 4, n)) return msgpack_error::truncated;
                return container(n, true, depth);
            default: return msgpack_error::unsupported_type;  // 0xc1, bin, ext, fixext
        }
    }

    std::string_view in_;
    std::string& out_;
    std::size_t pos_ = 0;
};

}  // namespace

bool json_to_msgpack(std::string_view json, std::string& out) {
    simdjson::dom::element root;
    if (transcode_parser().parse(json.data(), json.size()).get(root) != simdjson::SUCCESS) return false;
    put_element(out, root);
    return true;
}

ws::shared_frame make_msgpack_frame(const ws::frame& json_frame) {
    std::string out(ws::k_max_header_bytes, '\0');
    // MessagePack of minified JSON is rarely longer than the JSON (a str head per string, where
    // JSON has two quotes).
    out.reserve(ws::k_max_header_bytes + json_frame.size() + 16);
    if (!json_to_msgpack(json_frame.payload(), out)) return nullptr;
    return std::make_shared<const ws::frame>(ws::opcode::binary, std::move(out));
}

ws::outbound as_msgpack(const ws::outbound& message) {
    auto out = message;
    // A frame that has no twin (none the server builds) goes as JSON text: the SDK reads both.
    if (const auto& twin = message.frame->twin(&make_msgpack_frame)) out.frame = twin;
    return out;
}

std::string_view to_string(msgpack_error error) {
    switch (error) {
        case msgpack_error::none: return "none";
        case msgpack_error::truncated: return "truncated";
        case msgpack_error::trailing_bytes: return "trailing_bytes";
        case msgpack_error::too_deep: return "too_deep";
        case msgpack_error::unsupported_type: return "unsupported_type";
        case msgpack_error::key_not_string: return "key_not_string";
        case msgpack_error::invalid_utf8: return "invalid_utf8";
        case msgpack_error::not_finite: return "not_finite";
    }
    return "unknown";
}

msgpack_error msgpack_to_json(std::string_view bytes, std::string& out) { return decoder(bytes, out).run(); }

}  // namespace zena::protocol
