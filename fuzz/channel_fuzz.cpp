// libFuzzer: what a client sends about channels (protocol/channel): a position (`since`, in the
// URL or a subscribe), a channel name, and a channel against a token's claims. Each must answer
// without crashing, and what it accepts must be what the grammar says.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/channel.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace zena::protocol;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (const auto p = parse_position(input)) {
        // An accepted position round-trips: the epoch is a prefix of the input before its ':'.
        if (p->epoch.empty() || input.substr(0, p->epoch.size()) != p->epoch || input[p->epoch.size()] != ':') {
            std::abort();
        }
    }
    const bool valid = valid_channel_name(input);
    if (valid && (input.empty() || input.size() > k_max_channel_bytes)) std::abort();
    // The input split at its first newline: claims (one per line after it) and a channel.
    const auto newline = input.find('\n');
    const auto channel = input.substr(0, newline);
    std::vector<std::string> claims;
    if (newline != std::string_view::npos) {
        std::string_view rest = input.substr(newline + 1);
        while (!rest.empty()) {
            const auto end = rest.find('\n');
            claims.emplace_back(rest.substr(0, end));
            if (end == std::string_view::npos) break;
            rest.remove_prefix(end + 1);
        }
    }
    if (claims_grant(claims, channel) && !subscribable_channel(channel)) std::abort();  // never a user: channel
    return 0;
}
