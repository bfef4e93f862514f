#include "ws/deflate.hpp"

#include <zlib.h>

#include <array>
#include <charconv>

#include "util/text.hpp"

namespace zena::ws {

namespace {

constexpr int k_window_bits = 15;
constexpr int k_level = 6;
constexpr int k_mem_level = 8;
constexpr std::array<unsigned char, 4> k_tail{0x00, 0x00, 0xFF, 0xFF};

// A window-bits value: 8 to 15, possibly quoted (§7.1.2.1, §7.1.2.2).
std::optional<int> window_bits(std::string_view value) {
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    int bits = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), bits);
    if (ec != std::errc{} || end != value.data() + value.size() || value.empty() || bits < 8 || bits > 15) {
        return std::nullopt;
    }
    return bits;
}

// One offer, "permessage-deflate; p1; p2=v": the agreement, or nullopt to decline it.
std::optional<deflate_agreement> accept_offer(std::string_view offer) {
    bool first = true;
    bool name_ok = false;
    bool seen_server_nct = false;
    bool seen_client_nct = false;
    bool seen_client_bits = false;
    std::optional<int> server_bits;
    const bool ok = util::for_each_item(offer, ';', [&](std::string_view item) {
        if (first) {
            first = false;
            name_ok = item == "permessage-deflate";
            return name_ok;
        }
        const auto eq = item.find('=');
        const auto name = util::trim(item.substr(0, eq));
        const auto value = eq == std::string_view::npos ? std::string_view{} : util::trim(item.substr(eq + 1));
        const bool has_value = eq != std::string_view::npos;
        if (name == "server_no_context_takeover" && !has_value && !seen_server_nct) return seen_server_nct = true;
        if (name == "client_no_context_takeover" && !has_value && !seen_client_nct) return seen_client_nct = true;
        if (name == "server_max_window_bits" && has_value && !server_bits) {
            server_bits = window_bits(value);
            return server_bits.has_value();
        }
        if (name == "client_max_window_bits" && !seen_client_bits) {
            seen_client_bits = true;
            return !has_value || window_bits(value).has_value();
        }
        return false;  // unknown, repeated or malformed: decline this offer
    });
    if (!ok || !name_ok) return std::nullopt;
    deflate_agreement agreement;
    agreement.response = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    if (server_bits) {
        agreement.response += "; server_max_window_bits=" + std::to_string(*server_bits);
        agreement.compress_outgoing = *server_bits >= k_window_bits;
    }
    return agreement;
}

// The calling thread's zlib streams, made on first use and reset for each message.
struct deflater {
    z_stream stream{};
    deflater() { deflateInit2(&stream, k_level, Z_DEFLATED, -k_window_bits, k_mem_level, Z_DEFAULT_STRATEGY); }
    ~deflater() { deflateEnd(&stream); }
    deflater(const deflater&) = delete;
    deflater& operator=(const deflater&) = delete;
};

struct inflater {
    z_stream stream{};
    inflater() { inflateInit2(&stream, -k_window_bits); }
    ~inflater() { inflateEnd(&stream); }
    inflater(const inflater&) = delete;
    inflater& operator=(const inflater&) = delete;
};

}  // namespace

std::optional<deflate_agreement> negotiate_deflate(std::string_view extensions_header) {
    std::optional<deflate_agreement> agreement;
    util::for_each_item(extensions_header, ',', [&](std::string_view offer) {
        agreement = accept_offer(offer);
        return !agreement;
    });
    return agreement;
}

std::string compress_message(std::string_view payload) {
    thread_local deflater d;
    auto& z = d.stream;
    deflateReset(&z);
    std::string out(deflateBound(&z, payload.size()) + 16, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
    z.avail_in = static_cast<uInt>(payload.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_SYNC_FLUSH);  // the bound leaves room for all of it and the flush marker
    out.resize(out.size() - z.avail_out);
    if (out.size() >= k_tail.size()) out.resize(out.size() - k_tail.size());
    return out;
}

inflate_status inflate_message(std::string_view compressed, std::size_t max_bytes, std::string& out) {
    thread_local inflater i;
    auto& z = i.stream;
    inflateReset(&z);
    out.clear();
    std::array<char, 16384> chunk{};
    // The message, then the tail the sender removed.
    for (const std::string_view input :
         {compressed, std::string_view(reinterpret_cast<const char*>(k_tail.data()), k_tail.size())}) {
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
        z.avail_in = static_cast<uInt>(input.size());
        do {
            z.next_out = reinterpret_cast<Bytef*>(chunk.data());
            z.avail_out = static_cast<uInt>(chunk.size());
            const int rc = inflate(&z, Z_SYNC_FLUSH);
            const auto produced = chunk.size() - z.avail_out;
            if (out.size() + produced > max_bytes) return inflate_status::too_large;
            out.append(chunk.data(), produced);
            if (rc == Z_STREAM_END) {
                // A final block ends the stream; only the tail may follow it.
                return z.avail_in == 0 || input.data() != compressed.data() ? inflate_status::ok
                                                                            : inflate_status::corrupt;
            }
            if (rc == Z_BUF_ERROR && produced == 0) {
                if (z.avail_in > 0) return inflate_status::corrupt;  // input left and no progress
                break;
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR) return inflate_status::corrupt;
        } while (z.avail_in > 0 || z.avail_out == 0);
    }
    return inflate_status::ok;
}

}  // namespace zena::ws
