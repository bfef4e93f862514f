#include "protocol/channel.hpp"

#include <algorithm>
#include <charconv>

namespace zena::protocol {

bool valid_channel_name(std::string_view channel) {
    if (channel.empty() || channel.size() > k_max_channel_bytes) return false;
    return std::all_of(channel.begin(), channel.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == ':' || c == '.' || c == '@' || c == '=';
    });
}

bool claims_grant(const std::vector<std::string>& claims, std::string_view channel) {
    if (!subscribable_channel(channel)) return false;
    return std::any_of(claims.begin(), claims.end(), [channel](const std::string& claim) {
        if (claim.ends_with('*')) return channel.starts_with(std::string_view(claim).substr(0, claim.size() - 1));
        return claim == channel;
    });
}

std::optional<written_position> parse_position(std::string_view text) {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 64) return std::nullopt;
    written_position out{text.substr(0, colon), 0};
    if (!std::all_of(out.epoch.begin(), out.epoch.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); })) {
        return std::nullopt;
    }
    const auto digits = text.substr(colon + 1);
    if (digits.empty() || digits.size() > 20) return std::nullopt;
    const auto* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, out.seq);
    if (ec != std::errc{} || ptr != end) return std::nullopt;
    return out;
}

}  // namespace zena::protocol
