#pragma once
// The HTTP server API the backend calls: publish to users or to everyone, connection counts,
// and disconnecting a user. Transport-free: the HTTP session hands it a parsed request and
// sends back whatever it answers, so every route is unit-tested without sockets.
//
// Threading: `handle` may be called on any event-loop thread, concurrently. `reply` is called
// exactly once, on the calling thread or on another event-loop thread (after a publish has
// crossed every thread); the caller must hop back to its own executor.
//
// Every publish is checked whole before anything is delivered: a bad request gets a 4xx JSON
// error that names the field, and nothing is half-delivered.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/readiness.hpp"
#include "engine/broker.hpp"
#include "engine/cluster.hpp"
#include "engine/history.hpp"
#include "engine/presence.hpp"
#include "hub/hub_set.hpp"
#include "observability/metrics.hpp"
#include "protocol/catalog.hpp"
#include "session/user_presence.hpp"

namespace simdjson::dom {
class object;  // protocol/json_reader.hpp: only the files that parse include simdjson
}

namespace zena::api {

struct http_request {
    std::string_view method;  // "GET", "POST", ...
    std::string_view target;  // path and query, as received
    std::string_view authorization;
    std::string_view body;
};

struct http_response {
    int status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type (always JSON)
};

struct api_limits {
    std::size_t max_users_per_publish = 10000;
    bool permissive = false;  // deliver event types the catalog does not know (catalog.permissive)
    std::size_t max_batch_items = 1000;
};

// What the API needs of the channels (docs/channels.md): their history, what each namespace keeps,
// and where the notices for offline users go.
struct api_channels {
    engine::history& history;
    // The history kept for `channel` (by its namespace); nullopt: none, its events are live only.
    std::function<std::optional<engine::history_limits>(std::string_view channel)> history_of;
    // A user.offline_event body for `user`, to send upstream (by upstream.routes); empty: none.
    std::function<void(std::string_view user, std::string body)> notify_offline;
};

// What the API needs of presence (docs/presence.md): channel presence, and whether each user is
// online (with the grace after their last connection).
struct api_presence {
    engine::presence& channels;
    const session::user_presence& users;
    std::size_t max_list = 100;  // presence.max_list
};

// The nodes the API speaks for (docs/engine.md): counts, disconnects, server-side subscriptions,
// stats and user presence ask every node through the engine's cluster; null: this process alone.
struct api_cluster {
    engine::cluster* nodes = nullptr;
    std::string node_id = "local";
    std::string address;  // where this node listens, for GET /api/nodes
};

// Longest event type name accepted.
inline constexpr std::size_t k_max_type_bytes = 128;

class server_api {
public:
    // Publishes are checked against `catalog` and go out through `broker`; `hubs` answers the
    // counts and closes a user's connections. `ready` is only held, for /readyz (the HTTP
    // sessions reach it through the API they are given). Each must outlive the API.
    server_api(engine::broker& broker, hub::hub_set& hubs, observability::metrics& metrics,
               const protocol::catalog& catalog, std::string api_key, api_limits limits, const readiness& ready,
               api_channels channels, api_presence presence, api_cluster cluster = {});

    // What /readyz reports besides draining (the Redis publish channel, when configured).
    const readiness& ready() const { return ready_; }

    // True for the paths this API owns (/api/...).
    static bool owns(std::string_view path) { return path == "/api" || path.starts_with("/api/"); }

    void handle(const http_request& request, std::function<void(http_response)> reply);

    using refusal_fn = std::function<void(const http_response&)>;
    // A publish that came another way than HTTP (a Redis channel or stream): one /api/broadcast
    // body, with "all": true for everyone, or a /api/batch body `{"items": [...]}`. Checked and
    // delivered exactly as over HTTP. `on_refused` is called for each refused publish (the whole
    // message, or one batch item) on the calling thread, before this returns. `done` is called
    // once, on any thread, when the delivery has crossed every thread.
    void publish_message(std::string_view body, const refusal_fn& on_refused, std::function<void()> done);

private:
    // /api/broadcast (`all` false), /api/broadcast-all (`all` true) and /api/publish, the body
    // parsed.
    void publish(simdjson::dom::object object, bool all, std::function<void(http_response)> reply);
    // A parsed publication's history (by its channels' namespace) and, after the publish, the
    // offline notices of its personal channels.
    void set_history(engine::publication& p) const;
    void notify_offline(const engine::publication& p, const engine::publish_outcome& outcome) const;
    void history(const std::string& channel, std::string_view target, std::function<void(http_response)> reply);
    void users_presence(std::string_view target, const std::function<void(http_response)>& reply);
    void channel_presence(const std::string& channel, std::function<void(http_response)> reply);
    void subscriptions(std::string user, std::string channel, bool subscribe, std::function<void(http_response)> reply);
    void batch(simdjson::dom::object object, std::function<void(http_response)> reply, const refusal_fn& on_refused);
    void disconnect_user(std::string user, std::function<void(http_response)> reply);
    void stats(std::function<void(http_response)> reply);
    void nodes(std::function<void(http_response)> reply);
    // This node's answer to a request from any node of the cluster (engine::cluster).
    void answer(std::string_view kind, std::string_view args, engine::cluster::answer_fn reply);
    // This node's own figures for /api/stats, as a JSON object.
    std::string local_stats() const;
    bool authorized(std::string_view authorization) const;

    engine::broker& broker_;
    hub::hub_set& hubs_;
    observability::metrics& metrics_;
    const protocol::catalog& catalog_;
    std::string api_key_;
    api_limits limits_;
    const readiness& ready_;
    api_channels channels_;
    api_presence presence_;
    api_cluster cluster_info_;
    engine::local_cluster local_;
    engine::cluster& cluster_;
    std::int64_t started_ms_;
};

// {"error": message, "field": field, "event": event}; field and event omitted when empty.
http_response error_response(int status, std::string_view message, std::string_view field = {},
                             std::string_view event = {});

}  // namespace zena::api
