#pragma once
// Whether each user is online, for the backend (docs/presence.md): online from their first
// connection to their last, and offline only after a grace period with none, so that a page
// reload does not flap. Each transition goes upstream (presence.online, presence.offline), and
// the API asks for a user's state (GET /api/presence).
//
// Threading: on_interest is called by hub::user_registry's interest callback, on any thread,
// under the user's stripe lock (so the calls for one user come in the order of their
// transitions); it never blocks. state_of may be called on any thread. The grace timers are the
// app's (`after`, an event loop's timer); their callbacks hold the shared state, not this object.
// When full: at most `max_remembered` users are remembered; past it, the offline ones are
// forgotten first (their lastSeen is lost, never their online state).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace zena::session {

class user_presence {
public:
    // A presence.online or presence.offline notice for `user`, its body ready (JSON).
    using notify_fn = std::function<void(std::string_view type, std::string_view user, std::string body)>;
    struct user_state {
        bool online = false;                    // connected, or within the grace after the last connection
        std::optional<std::int64_t> last_seen;  // Unix ms the last connection closed (when known)
    };

    // Calls `fn` once, `delay` from now, on a thread of the app's (any thread may schedule).
    using after_fn = std::function<void(std::chrono::milliseconds delay, std::function<void()> fn)>;

    user_presence(after_fn after, std::chrono::milliseconds grace, notify_fn notify,
                  std::size_t max_remembered = 1'000'000);
    ~user_presence();
    user_presence(const user_presence&) = delete;
    user_presence& operator=(const user_presence&) = delete;

    // `present`: the user's first connection on this node arrived (true) or their last left.
    void on_interest(std::string_view user, bool present);
    // The body of a presence.online (online) or presence.offline notice for `user` at `at_ms`
    // (Unix ms): also for the Redis engine, which decides the notices for the deployment (then
    // this object is built with no notify_fn and keeps only the node's state for state_of).
    static std::string notice_body(bool online, std::string_view user, std::int64_t at_ms);
    user_state state_of(std::string_view user) const;

private:
    struct state;
    std::shared_ptr<state> state_;
};

}  // namespace zena::session
