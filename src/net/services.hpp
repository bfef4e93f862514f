#pragma once
// What the network layer shares across its threads, passed in (never global): the client
// sessions' shared context, the server API, and the listener's own admission state (origins,
// per-address limits, the socket count, draining). And the ticket by which an admitted
// WebSocket holds its share of those limits.
//
// Threading: `services` is shared by all threads and only read after start (its counters are
// atomic; address_limits locks).

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "admin/console.hpp"
#include "api/server_api.hpp"
#include "auth/origin_policy.hpp"
#include "net/address_limits.hpp"
#include "session/context.hpp"
#include "ws/endpoint.hpp"

namespace zena::net {

struct services {
    session::shared& sessions;
    api::server_api& api;
    admin::console* admin;                 // the page at / (docs/admin.md); null: none
    auth::origin_policy origins;           // websocket.allowed_origins
    address_limits addresses;              // limits.*_per_address
    ws::endpoint::limits endpoint_limits;  // every WebSocket connection's (held by reference)
    std::atomic<bool> draining{false};
    std::atomic<std::int64_t> open_sockets{0};  // WebSockets admitted and not yet destroyed

    const config::settings& settings() const { return sessions.settings; }
    observability::metrics& metrics() const { return sessions.metrics; }
};

// A WebSocket's share of the limits (limits.max_connections, the per-address ones), taken at
// the upgrade and given back when the session that holds it is destroyed, however it ended.
class admission {
public:
    admission() = default;
    // `address_key` was admitted by services.addresses; open_sockets was counted.
    admission(services& s, std::string address_key) : services_(&s), key_(std::move(address_key)) {}
    admission(admission&& other) noexcept
        : services_(std::exchange(other.services_, nullptr)), key_(std::move(other.key_)) {}
    admission& operator=(admission&&) = delete;
    admission(const admission&) = delete;
    admission& operator=(const admission&) = delete;
    ~admission() {
        if (!services_) return;
        services_->addresses.release(key_);
        services_->open_sockets.fetch_sub(1, std::memory_order_relaxed);
    }

private:
    services* services_ = nullptr;
    std::string key_;
};

// A session that holds its admission ticket for as long as it lives.
template <typename Session>
class admitted final : public Session {
public:
    template <typename... Args>
    explicit admitted(admission ticket, Args&&... args)
        : Session(std::forward<Args>(args)...), ticket_(std::move(ticket)) {}

private:
    admission ticket_;
};

}  // namespace zena::net
