#include "session/typing_board.hpp"

namespace zena::session {

std::string typing_board::key(std::string_view channel, std::string_view user) {
    std::string k;
    k.reserve(channel.size() + 1 + user.size());
    k.append(channel).push_back('\0');  // no channel name holds a NUL
    k.append(user);
    return k;
}

typing_board::started typing_board::start(std::string_view channel, std::string_view user, std::uint64_t conn,
                                          std::int64_t now_ms) {
    std::lock_guard lock{mutex_};
    auto [it, fresh] = typing_.try_emplace(key(channel, user));
    auto& e = it->second;
    started out{relay::none, ++generations_};
    if (fresh || now_ms - e.relayed_ms >= k_throttle_ms) {
        e.relayed_ms = now_ms;
        out.what = relay::start;
    }
    e.generation = out.generation;
    e.last_conn = conn;
    return out;
}

typing_board::relay typing_board::stop(std::string_view channel, std::string_view user) {
    std::lock_guard lock{mutex_};
    return typing_.erase(key(channel, user)) > 0 ? relay::stop : relay::none;
}

typing_board::relay typing_board::expire(std::string_view channel, std::string_view user, std::uint64_t generation) {
    std::lock_guard lock{mutex_};
    const auto it = typing_.find(key(channel, user));
    if (it == typing_.end() || it->second.generation != generation) return relay::none;
    typing_.erase(it);
    return relay::stop;
}

typing_board::relay typing_board::leave(std::string_view channel, std::string_view user, std::uint64_t conn) {
    std::lock_guard lock{mutex_};
    const auto it = typing_.find(key(channel, user));
    if (it == typing_.end() || it->second.last_conn != conn) return relay::none;
    typing_.erase(it);
    return relay::stop;
}

std::size_t typing_board::typists() const {
    std::lock_guard lock{mutex_};
    return typing_.size();
}

}  // namespace zena::session
