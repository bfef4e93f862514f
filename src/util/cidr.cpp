#include "util/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "util/text.hpp"

namespace zena::util {
namespace {

struct address {
    std::array<std::uint8_t, 16> bytes{};
    bool v6 = false;
};

// An IPv4 or IPv6 literal (no zone, no brackets); IPv4-mapped IPv6 comes back as IPv4.
bool parse_address(std::string_view text, address& out) {
    if (text.empty() || text.size() >= 64) return false;
    char buffer[64];
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    out = {};
    if (inet_pton(AF_INET, buffer, out.bytes.data()) == 1) return true;
    if (inet_pton(AF_INET6, buffer, out.bytes.data()) != 1) return false;
    static constexpr std::array<std::uint8_t, 12> k_mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (std::memcmp(out.bytes.data(), k_mapped.data(), k_mapped.size()) == 0) {
        std::memmove(out.bytes.data(), out.bytes.data() + 12, 4);
        std::memset(out.bytes.data() + 4, 0, 12);
        return true;
    }
    out.v6 = true;
    return true;
}

bool prefix_equal(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b, int bits) {
    const auto whole = static_cast<std::size_t>(bits / 8);
    if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
    const int rest = bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xFFU << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

result<cidr_set> cidr_set::parse(std::string_view list) {
    cidr_set set;
    std::string problem;
    for_each_item(list, ',', [&](std::string_view item) {
        if (item.empty()) return true;
        const auto slash = item.find('/');
        address a;
        if (!parse_address(item.substr(0, slash), a)) {
            problem = "'" + std::string{item} + "' is not an IP address or network (a.b.c.d[/n], x::y[/n])";
            return false;
        }
        const int max_bits = a.v6 ? 128 : 32;
        int prefix = max_bits;
        if (slash != std::string_view::npos) {
            const auto bits = item.substr(slash + 1);
            const auto [ptr, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
            if (ec != std::errc{} || ptr != bits.data() + bits.size() || bits.empty() || prefix < 0 ||
                prefix > max_bits) {
                problem = "'" + std::string{item} + "': the prefix length must be 0 to " + std::to_string(max_bits);
                return false;
            }
        }
        set.networks_.push_back(network{.bytes = a.bytes, .v6 = a.v6, .prefix = prefix});
        return true;
    });
    if (!problem.empty()) return error{problem};
    return set;
}

bool cidr_set::contains(std::string_view text) const {
    address a;
    if (networks_.empty() || !parse_address(text, a)) return false;
    for (const auto& n : networks_) {
        if (n.v6 == a.v6 && prefix_equal(n.bytes, a.bytes, n.prefix)) return true;
    }
    return false;
}

std::string client_address(std::string_view peer, std::string_view forwarded_for, const cidr_set& trusted) {
    if (forwarded_for.empty() || !trusted.contains(peer)) return std::string{peer};
    // Right to left: each trusted hop vouches for the entry before it; the first untrusted one
    // is the client as far as anyone we trust can tell.
    std::string_view candidate = peer;
    std::string_view rest = forwarded_for;
    for (int hops = 0; hops < 32 && !rest.empty(); ++hops) {
        const auto comma = rest.rfind(',');
        const auto entry = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
        address a;
        if (!parse_address(entry, a)) break;
        candidate = entry;
        if (!trusted.contains(entry)) break;
    }
    return std::string{candidate};
}

}  // namespace zena::util
