#include "observability/metrics.hpp"

#include <initializer_list>

namespace zena::observability {
namespace {

void write_header(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void write(std::string& out, const char* name, const char* type, const char* help, std::uint64_t value) {
    write_header(out, name, type, help);
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
}

// A value kept in integer units (`per_second` of them make a second: 1000 for ms, 1000000 for
// µs), written in seconds (Prometheus' unit) with every digit of the unit: "1.250" for 1250 ms.
void write_seconds(std::string& out, const char* name, const char* type, const char* help, std::uint64_t value,
                   std::uint64_t per_second) {
    write_header(out, name, type, help);
    const auto digits = std::to_string(per_second).size() - 1;
    const auto fraction = std::to_string(value % per_second);
    out += name;
    out += ' ';
    out += std::to_string(value / per_second) + '.' + std::string(digits - fraction.size(), '0') + fraction + '\n';
}

struct labeled {
    const char* labels;  // e.g. sink="webhook"
    std::uint64_t value;
};

void write_labeled(std::string& out, const char* name, const char* type, const char* help,
                   std::initializer_list<labeled> series) {
    write_header(out, name, type, help);
    for (const auto& s : series) {
        out += name;
        out += '{';
        out += s.labels;
        out += "} ";
        out += std::to_string(s.value);
        out += '\n';
    }
}

}  // namespace

std::string metrics::render(std::uint64_t connections, std::uint64_t users) const {
    const auto v = [](const counter& c) { return c.load(std::memory_order_relaxed); };
    std::string out;
    write(out, "zena_connections", "gauge", "Open authenticated WebSocket connections.", connections);
    write(out, "zena_users", "gauge", "Users with at least one open connection.", users);
    write(out, "zena_connections_limit", "gauge",
          "limits.max_connections: WebSocket upgrades past it are refused with 503.", v(connections_limit));
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
    const auto per_sink = [&](const char* name, const char* help, counter upstream_counters::*field) {
        write_labeled(
            out, name, "counter", help,
            {labeled{"sink=\"webhook\"", v(webhook.*field)}, labeled{"sink=\"redis_stream\"", v(redis_stream.*field)}});
    };
    per_sink("zena_upstream_delivered_total", "Client events the upstream destination accepted.",
             &upstream_counters::delivered);
    per_sink("zena_upstream_failed_total", "Client events refused by the destination or given up after every attempt.",
             &upstream_counters::failed);
    per_sink("zena_upstream_dropped_total", "Client events dropped from a full upstream queue.",
             &upstream_counters::dropped);
    write(out, "zena_client_events_unrouted_total", "counter", "Valid client events no upstream route sends anywhere.",
          v(client_events_unrouted));
    write(out, "zena_redis_publishes_total", "counter", "Publish messages read from Redis.", v(redis_publishes));
    write(out, "zena_redis_publishes_refused_total", "counter",
          "Publish messages from Redis refused (bad JSON, shape or catalog).", v(redis_publishes_refused));
    write(out, "zena_redis_ingest_gaps_total", "counter",
          "Times the Redis publish channel's subscription was lost (what is published meanwhile is lost).",
          v(redis_ingest_gaps));
    write_seconds(out, "zena_redis_ingest_gap_seconds_total", "counter",
                  "Seconds the Redis publish channel was not subscribed after a lost subscription.",
                  v(redis_ingest_gap_ms), 1000);
    write_labeled(out, "zena_handshakes_refused_total", "counter", "WebSocket handshakes refused before the upgrade.",
                  {labeled{"reason=\"origin\"", v(handshakes_refused_origin)},
                   labeled{"reason=\"capacity\"", v(handshakes_refused_capacity)},
                   labeled{"reason=\"address\"", v(handshakes_refused_address)}});
    write(out, "zena_connections_refused_user_limit_total", "counter",
          "Connections closed with 1013 for passing limits.max_connections_per_user.",
          v(connections_refused_user_limit));
    write(out, "zena_client_messages_rate_limited_total", "counter",
          "Client messages dropped over websocket.client_messages_per_second.", v(client_messages_rate_limited));
    write(out, "zena_rate_limit_closes_total", "counter",
          "Connections closed with 1008 for sending over the message rate for too long.", v(rate_limit_closes));
    write(out, "zena_frame_budget_closes_total", "counter",
          "Connections closed with 1008 for sending frames over websocket.client_frames_per_second.",
          v(frame_budget_closes));
    write(out, "zena_message_timeout_closes_total", "counter",
          "Connections closed with 1008 for a fragmented message not finished within websocket.message_timeout_ms.",
          v(message_timeout_closes));
    write(out, "zena_tokens_expired_total", "counter", "Connections closed with 1008 when their token expired.",
          v(tokens_expired));
    write(out, "zena_tokens_refreshed_total", "counter", "Tokens replaced in-band with auth.refresh.",
          v(tokens_refreshed));
    write(out, "zena_subscribes_total", "counter", "Channels taken by connections (client or server subscribes).",
          v(subscribes));
    write(out, "zena_subscribes_refused_total", "counter", "Subscribes answered with subscribe.error.",
          v(subscribes_refused));
    write_seconds(out, "zena_engine_roundtrip_seconds", "gauge",
                  "Redis engine: the last canary's trip through the real Pub/Sub path (publish to receipt), from "
                  "whichever shard it came back last; 0 with the memory engine.",
                  v(engine_roundtrip_us), 1000000);
    write(out, "zena_engine_canaries_lost_total", "counter",
          "Redis engine: canaries that did not come back through Pub/Sub within the engine timeout.",
          v(engine_canaries_lost));
    write(out, "zena_engine_gaps_total", "counter",
          "Redis engine: times a node found stored events it could neither receive nor read back from history.",
          v(engine_gaps));
    write(out, "zena_history_evicted_total", "counter",
          "Stored events dropped to keep channels.history_max_bytes (a loss for their channels).", v(history_evicted));
    write(out, "zena_offline_notifications_total", "counter",
          "user.offline_event notices sent upstream for notifyOffline events to users with no connection.",
          v(offline_notifications));
    write(out, "zena_http_requests_total", "counter", "HTTP requests received.", v(http_requests));
    write(out, "zena_api_rejections_total", "counter", "Server API calls refused with a 4xx status.",
          v(api_rejections));
    write(out, "zena_api_duplicate_publishes_total", "counter",
          "Publishes skipped on every target because their idempotency key was already published there.",
          v(api_duplicates));
    write(out, "zena_api_answers_paced_total", "counter",
          "Server API answers held until the frames queued before them were written (publisher pacing).",
          v(api_answers_paced));
    return out;
}

}  // namespace zena::observability
