#pragma once
// Channel names, positions and grants (docs/channels.md). Every event travels on a channel; each
// user has a personal one, `user:<userId>`, that each of their connections holds by itself and
// that broadcastToUser publishes to. The `user:` namespace is the server's: no client subscribes
// to it.
//
// Threading: free functions; no state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zena::protocol {

inline constexpr std::string_view k_personal_prefix = "user:";
// The longest channel name a client or the API may name (a personal channel, built by the
// server from a user id of up to 256 bytes, may be longer).
inline constexpr std::size_t k_max_channel_bytes = 255;

// user:<user>
inline std::string personal_channel(std::string_view user) {
    std::string channel;
    channel.reserve(k_personal_prefix.size() + user.size());
    channel.append(k_personal_prefix).append(user);
    return channel;
}

// The user of a personal channel; nullopt for any other channel.
inline std::optional<std::string_view> personal_channel_user(std::string_view channel) {
    if (!channel.starts_with(k_personal_prefix)) return std::nullopt;
    return channel.substr(k_personal_prefix.size());
}

// 1-255 bytes of ASCII letters, digits and _ - : . @ =
bool valid_channel_name(std::string_view channel);

// A channel a client may ask for: a valid name outside the user: namespace.
inline bool subscribable_channel(std::string_view channel) {
    return valid_channel_name(channel) && !channel.starts_with(k_personal_prefix);
}

// The part before the first ':' ("deal" for "deal:123"); empty for a name without one.
inline std::string_view channel_namespace(std::string_view channel) {
    const auto colon = channel.find(':');
    return colon == std::string_view::npos ? std::string_view{} : channel.substr(0, colon);
}

// Whether a token's `channels` claim grants `channel`: an item equal to it, or an item ending in
// '*' whose part before the '*' begins it. Never a user: channel, whatever the claim says.
bool claims_grant(const std::vector<std::string>& claims, std::string_view channel);

// A position as a client writes it: "<epoch>:<seq>", the epoch 1-64 characters of [0-9a-z], the
// seq a decimal number. nullopt for anything else.
struct written_position {
    std::string_view epoch;
    std::uint64_t seq = 0;
};
std::optional<written_position> parse_position(std::string_view text);

}  // namespace zena::protocol
