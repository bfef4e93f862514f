#pragma once
// Channel names. Every event travels on a channel; each user has a personal one,
// `user:<userId>`, that each of their connections joins by itself and that broadcastToUser
// publishes to. The `user:` namespace is the server's: no client subscribes to it.
//
// Threading: free functions; no state.

#include <optional>
#include <string>
#include <string_view>

namespace zena::protocol {

inline constexpr std::string_view k_personal_prefix = "user:";

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

}  // namespace zena::protocol
