#include "observability/metrics.hpp"

namespace zena::observability {
namespace {

void write(std::string& out, const char* name, const char* type, const char* help, std::uint64_t value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
}

}  // namespace

std::string metrics::render(std::uint64_t connections, std::uint64_t users) const {
    const auto v = [](const counter& c) { return c.load(std::memory_order_relaxed); };
    std::string out;
    write(out, "zena_connections", "gauge", "Open authenticated WebSocket connections.", connections);
    write(out, "zena_users", "gauge", "Users with at least one open connection.", users);
    write(out, "zena_connections_opened_total", "counter", "Authenticated connections opened.", v(connections_opened));
    write(out, "zena_connections_closed_total", "counter", "Authenticated connections closed.", v(connections_closed));
    write(out, "zena_auth_failures_total", "counter", "Upgrades refused for a bad or missing token.", v(auth_failures));
    write(out, "zena_client_messages_total", "counter", "Valid client events received.", v(client_messages_valid));
    write(out, "zena_client_messages_invalid_total", "counter", "Client messages ignored as invalid.",
          v(client_messages_invalid));
    write(out, "zena_events_published_total", "counter", "Publishes accepted by the server API.", v(events_published));
    write(out, "zena_messages_delivered_total", "counter", "Messages queued to connections.", v(messages_delivered));
    write(out, "zena_slow_consumer_closes_total", "counter", "Connections closed for a full send queue.",
          v(slow_consumer_closes));
    write(out, "zena_messages_coalesced_total", "counter",
          "Latest-class messages that replaced an older queued one (same key).", v(messages_coalesced));
    write(out, "zena_messages_dropped_ephemeral_total", "counter",
          "Ephemeral messages dropped for a connection that was behind.", v(messages_dropped_ephemeral));
    write(out, "zena_heartbeat_timeouts_total", "counter", "Connections terminated for not answering a ping.",
          v(heartbeat_timeouts));
    write(out, "zena_upstream_delivered_total", "counter", "Client events the webhook accepted.",
          v(upstream_delivered));
    write(out, "zena_upstream_failed_total", "counter", "Client events given up after every webhook attempt.",
          v(upstream_failed));
    write(out, "zena_upstream_dropped_total", "counter", "Client events dropped from a full upstream queue.",
          v(upstream_dropped));
    write(out, "zena_http_requests_total", "counter", "HTTP requests received.", v(http_requests));
    write(out, "zena_api_rejections_total", "counter", "Server API calls refused with a 4xx status.",
          v(api_rejections));
    return out;
}

}  // namespace zena::observability
