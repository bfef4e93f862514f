#pragma once
// What every network session needs, passed in (never global), and the per-thread worker that
// owns a share of the connections.
//
// Threading: `services` is shared by all threads and only read after start (its counters are
// atomic). A `worker` belongs to one event-loop thread; only that thread touches its hub,
// limiter and timers.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>

#include "api/server_api.hpp"
#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "hub/hub.hpp"
#include "net/beast_fwd.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "protocol/catalog.hpp"
#include "protocol/client_message.hpp"

namespace zena::net {

// Who sent a client event.
struct client_event_source {
    hub::connection_id connection;
    std::string_view user_id;
};

// Where valid client events go. Today they are logged and counted; the upstream (webhook,
// Redis stream) plugs in here.
using client_event_handler = std::function<void(const client_event_source&, const protocol::client_message&)>;

struct services {
    const config::settings& settings;
    const auth::jwt_verifier& verifier;
    const protocol::catalog& catalog;
    api::server_api& api;
    observability::metrics& metrics;
    hub::user_registry& registry;
    client_event_handler on_client_event;
    std::atomic<bool> draining{false};
    std::atomic<std::uint64_t> next_connection_id{1};
};

struct worker {
    worker(std::size_t index, hub::hub& hub, double invalid_log_per_second)
        : index(index), hub(hub), invalid_message_log(invalid_log_per_second), heartbeat_timer(io) {}

    boost::asio::io_context io{1};
    std::size_t index;
    hub::hub& hub;
    observability::log_limiter invalid_message_log;
    boost::asio::steady_timer heartbeat_timer;
};

}  // namespace zena::net
