#pragma once
// Every setting of the server, with its default. The option table in config.cpp names each one
// for the TOML file, the environment and the command line, and documents it; this struct is
// what the rest of the program reads. Settings are immutable once the server starts.
//
// Values are typed once, when they are loaded: durations are std::chrono durations, and what
// has a grammar (URLs, the origin policy, the upstream routes, the JWT algorithm) is kept parsed
// beside the text it came from (`parsed`). Nothing reads the text again to find its meaning.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "auth/jwt.hpp"
#include "auth/origin_policy.hpp"
#include "redis/connection.hpp"
#include "upstream/routes.hpp"
#include "util/cidr.hpp"
#include "util/url.hpp"

namespace zena::config {

// A value read from text at load: the text as the operator wrote it (for messages and the
// generated docs; empty for "not set") and what it means, checked.
template <typename T>
struct parsed {
    std::string text;
    T value{};
};

// What a channel namespace (the part of a name before its first ':') keeps: [channels] gives
// the defaults, [channels.namespaces.<name>] a namespace's own (TOML only). docs/channels.md.
struct namespace_settings {
    std::int64_t history_size = 1000;  // events kept per channel; 0: live only, no epoch/seq
    std::chrono::milliseconds history_ttl{std::chrono::hours(24)};
    bool presence = true;  // presence.join / leave / get (docs/presence.md)
    bool typing = true;    // typing.start relayed
    bool receipts = true;  // thread.read to the channel's subscribers
};
// What a [channels.namespaces.<name>] table sets; the rest comes from [channels].
struct namespace_overrides {
    std::optional<std::int64_t> history_size;
    std::optional<std::chrono::milliseconds> history_ttl;
    std::optional<bool> presence;
    std::optional<bool> typing;
    std::optional<bool> receipts;
};

struct settings {
    // [server]
    std::string host = "0.0.0.0";
    std::int64_t port = 3000;
    std::int64_t threads = 0;                    // 0: one per CPU the process may use (util/cpus.hpp)
    std::string cgroup_root = "/sys/fs/cgroup";  // where cgroup v2 is mounted; empty: no cpu.max read
    std::string mode = "auto";                   // auto | dev | production
    bool io_uring = true;                        // a turn's writes batched through io_uring (ws::send_ring)

    std::string tls_cert_file;  // PEM chain; with tls_key_file, the listener speaks TLS only
    std::string tls_key_file;
    // Peers whose X-Forwarded-For names the client (for the per-address limits and the logs);
    // empty: none, the socket's peer is the client.
    parsed<util::cidr_set> trusted_proxies;

    // [auth]
    std::string jwt_secret;
    std::string jwks_file;                           // public keys for RS256/ES256/EdDSA tokens; empty: none
    parsed<std::optional<util::http_url>> jwks_url;  // or fetched from here, and refreshed
    std::chrono::seconds jwks_refresh{300};
    std::string jwks_ca_file;
    parsed<auth::jwt_algorithm> jwt_algorithm{"HS256", auth::jwt_algorithm::hs256};
    std::chrono::seconds jwt_leeway{30};
    std::string jwt_issuer;
    std::string jwt_audience;
    std::string jwt_user_claim = "sub";
    std::string api_key;
    std::string dev_state_file = ".zena-dev.toml";

    // [websocket]
    std::chrono::milliseconds heartbeat_interval{30000};
    std::chrono::milliseconds handshake_timeout{10000};
    std::chrono::milliseconds close_timeout{1000};     // our close sent: the client's answer, then the TCP goes
    std::chrono::milliseconds message_timeout{10000};  // a fragmented message, first fragment to last
    std::int64_t client_frames_per_second = 1000;      // every frame: data, continuation, ping, pong
    std::int64_t client_frames_burst = 5000;
    std::int64_t max_message_bytes = 64 * 1024;
    std::int64_t send_queue_max_bytes = 1024 * 1024;
    parsed<auth::origin_policy> allowed_origins;  // empty: any origin
    double client_messages_per_second = 20;
    std::int64_t client_messages_burst = 50;
    std::chrono::milliseconds auth_timeout{5000};  // for a token sent in-band, as the first message
    bool inband_auth = false;                      // no token in the handshake: wait for an `auth` message
    bool permessage_deflate = false;               // RFC 7692, when the client offers it
    bool test_echo = false;                        // /echo for conformance tools: never in production

    // [limits]: what one outsider can make the server spend
    std::int64_t max_connections = 100000;
    std::int64_t max_connections_per_user = 50;
    std::int64_t max_connections_per_address = 1000;
    double handshakes_per_address_per_second = 20;
    std::int64_t max_tracked_addresses = 100000;

    // [http]
    std::int64_t http_max_body_bytes = 1024 * 1024;
    std::int64_t http_max_header_bytes = 8 * 1024;
    std::chrono::milliseconds http_request_timeout{30000};
    std::int64_t max_users_per_publish = 10000;
    std::int64_t max_batch_items = 1000;

    // [catalog]
    std::string catalog_path;  // empty: the catalog compiled into the binary
    bool catalog_permissive = false;

    // [webhook]: client events to the backend
    parsed<std::optional<util::http_url>> webhook_url;  // not set: no webhook
    std::string webhook_secret;
    std::chrono::milliseconds webhook_timeout{5000};
    std::int64_t webhook_max_attempts = 5;
    std::chrono::milliseconds webhook_backoff{200};
    std::int64_t webhook_max_queue = 10000;

    // [upstream]: which client events go where (upstream/routes.hpp); empty: all to all
    parsed<std::optional<upstream::routes>> upstream_routes;
    std::string upstream_tls_ca_file;  // PEM CAs for https webhook, subscribe proxy, JWKS; empty: the system's

    // [engine]: where channels' publications, history and presence live (docs/engine.md)
    std::string engine_type = "memory";                          // memory (one process) or redis (many nodes)
    std::string engine_prefix = "zena";                          // of the Redis engine's keys and Pub/Sub channels
    std::string engine_node_id;                                  // empty: <hostname>-<pid>-<random>
    std::chrono::milliseconds engine_idempotency_window{60000};  // a publish's idempotencyKey is remembered
    std::int64_t engine_idempotency_max_keys = 100000;           // the memory engine's bound on them

    // [redis]
    parsed<std::optional<redis::endpoint>> redis_url;  // not set: no Redis
    std::string redis_urls;  // comma-separated redis:// URLs: the Redis engine's shards (empty: redis.url)
    std::chrono::milliseconds redis_timeout{2000};
    std::string redis_publish_channel = "zena:publish";
    std::string redis_publish_stream = "zena:publish";
    std::string redis_client_events_stream = "zena:client-events";
    std::int64_t redis_client_events_max_len = 100000;
    std::int64_t redis_client_events_max_queue = 10000;

    // [channels]
    std::int64_t channels_max_per_connection = 128;
    double channels_subscribes_per_second = 10;
    std::int64_t channels_subscribes_burst = 50;
    std::int64_t channels_history_size = 1000;
    std::chrono::milliseconds channels_history_ttl{std::chrono::hours(24)};
    std::int64_t channels_history_max_bytes = std::int64_t{256} << 20U;
    parsed<std::optional<util::http_url>> subscribe_proxy_url;  // not set: no subscribe proxy
    std::chrono::milliseconds subscribe_proxy_timeout{2000};
    bool channels_presence = true;  // the namespaces' defaults (docs/presence.md)
    bool channels_typing = true;
    bool channels_receipts = true;
    // [channels.namespaces.<name>]: each namespace's own; the others take the [channels] defaults.
    std::map<std::string, namespace_overrides, std::less<>> channel_namespace_overrides;

    // The settings of channel namespace `ns` (protocol::channel_namespace).
    namespace_settings of_namespace(std::string_view ns) const {
        namespace_settings out{.history_size = channels_history_size,
                               .history_ttl = channels_history_ttl,
                               .presence = channels_presence,
                               .typing = channels_typing,
                               .receipts = channels_receipts};
        if (const auto it = channel_namespace_overrides.find(ns); it != channel_namespace_overrides.end()) {
            const auto& o = it->second;
            out.history_size = o.history_size.value_or(out.history_size);
            out.history_ttl = o.history_ttl.value_or(out.history_ttl);
            out.presence = o.presence.value_or(out.presence);
            out.typing = o.typing.value_or(out.typing);
            out.receipts = o.receipts.value_or(out.receipts);
        }
        return out;
    }

    // [presence]
    std::chrono::milliseconds presence_offline_grace{5000};
    std::int64_t presence_max_list = 100;
    // [typing]
    std::chrono::milliseconds typing_timeout{6000};

    // [shutdown]
    std::chrono::milliseconds shutdown_drain{5000};

    // [admin]: the page at / (docs/admin.md); always open in dev mode
    bool admin_enabled = false;                     // outside dev mode: serve it, behind admin.password
    std::string admin_password;                     // at least 12 bytes when admin.enabled
    std::chrono::seconds admin_session_ttl{28800};  // a login lasts this long
    std::int64_t admin_max_sessions = 32;           // logins held at once; the oldest goes first
    double admin_login_attempts_per_minute = 10;    // login attempts a minute, server-wide

    // [log]
    std::string log_level = "info";
    std::string log_format = "text";  // text | json
    double invalid_message_log_per_second = 5;
};

}  // namespace zena::config
