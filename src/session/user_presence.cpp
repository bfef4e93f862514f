#include "session/user_presence.hpp"

#include <mutex>
#include <unordered_map>

#include "auth/jwt.hpp"
#include "protocol/json_writer.hpp"
#include "util/string_hash.hpp"

namespace zena::session {

struct user_presence::state {
    struct entry {
        bool connected = false;
        bool online = false;
        std::uint64_t generation = 0;  // bumped by each transition: a grace timer of an older one does nothing
        std::int64_t last_seen = 0;    // 0: not since this server started
    };
    using string_hash = util::string_hash;

    after_fn after;
    std::chrono::milliseconds grace{0};
    notify_fn notify;
    std::size_t max_remembered = 0;
    mutable std::mutex mutex;
    std::unordered_map<std::string, entry, string_hash, std::equal_to<>> users;

    // Under mutex: forgets offline users past the bound (a few per call).
    void trim() {
        if (users.size() <= max_remembered) return;
        std::size_t dropped = 0;
        for (auto it = users.begin(); it != users.end() && dropped < 64 && users.size() > max_remembered;) {
            if (!it->second.online) {
                it = users.erase(it);
                ++dropped;
            } else {
                ++it;
            }
        }
    }
};

user_presence::user_presence(after_fn after, std::chrono::milliseconds grace, notify_fn notify,
                             std::size_t max_remembered)
    : state_(std::make_shared<state>()) {
    state_->after = std::move(after);
    state_->grace = grace;
    state_->notify = std::move(notify);
    state_->max_remembered = max_remembered;
}

user_presence::~user_presence() = default;

void user_presence::on_interest(std::string_view user, bool present) {
    auto s = state_;
    std::unique_lock lock{s->mutex};
    auto [it, fresh] = s->users.try_emplace(std::string{user});
    auto& e = it->second;
    const auto generation = ++e.generation;
    e.connected = present;
    if (present) {
        if (!e.online) {
            e.online = true;
            if (s->notify) s->notify("presence.online", user, notice_body(true, user, auth::unix_now_ms()));
        }
        if (fresh) s->trim();
        return;
    }
    e.last_seen = auth::unix_now_ms();
    lock.unlock();
    // Offline once the grace has passed with no connection (a newer transition cancels it).
    s->after(s->grace, [s, name = std::string{user}, generation] {
        std::lock_guard relock{s->mutex};
        const auto found = s->users.find(name);
        if (found == s->users.end()) return;
        auto& now = found->second;
        if (now.generation != generation || now.connected || !now.online) return;
        now.online = false;
        if (s->notify) s->notify("presence.offline", name, notice_body(false, name, auth::unix_now_ms()));
    });
}

std::string user_presence::notice_body(bool online, std::string_view user, std::int64_t at_ms) {
    return protocol::json_object()
        .add("type", online ? "presence.online" : "presence.offline")
        .add("userId", user)
        .add("at", at_ms)
        .str();
}

user_presence::user_state user_presence::state_of(std::string_view user) const {
    std::lock_guard lock{state_->mutex};
    const auto it = state_->users.find(user);
    if (it == state_->users.end()) return {};
    user_state out{it->second.online, std::nullopt};
    if (it->second.last_seen != 0 && !it->second.connected) out.last_seen = it->second.last_seen;
    return out;
}

}  // namespace zena::session
