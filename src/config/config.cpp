#include "config/config.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <sstream>
#include <variant>

#include <toml++/toml.h>

#include "auth/jwt.hpp"
#include "auth/origin_policy.hpp"
#include "net/url.hpp"
#include "redis/connection.hpp"
#include "upstream/routes.hpp"

namespace zena::config {
namespace {

using field = std::variant<std::string settings::*, std::int64_t settings::*, double settings::*, bool settings::*>;

struct option {
    std::string_view key;   // TOML key: "section.name"
    std::string_view env;   // environment variable
    std::string_view flag;  // command-line flag, without the leading "--"
    field target;
    std::string_view unit;
    std::int64_t min = 0;  // integers only
    std::int64_t max = 0;
    bool secret = false;  // never printed
    std::string_view help;
};

constexpr std::int64_t k_day_ms = 24LL * 3600 * 1000;

// The one table of options. Its order is the order of --help and of docs/configuration.md.
const std::array k_options{
    option{"server.host", "ZENA_HOST", "host", &settings::host, "", 0, 0, false,
           "Address to listen on (IPv4 or IPv6 literal)."},
    option{"server.port", "ZENA_PORT", "port", &settings::port, "", 0, 65535, false,
           "TCP port for WebSocket upgrades (/ws) and the HTTP API; 0 picks a free port (logged at start)."},
    option{"server.threads", "ZENA_THREADS", "threads", &settings::threads, "", 0, 256, false,
           "Event-loop threads, each owning its connections; 0 means one per core."},
    option{"server.tls_cert_file", "ZENA_TLS_CERT_FILE", "tls-cert-file", &settings::tls_cert_file, "", 0, 0, false,
           "PEM certificate chain. With tls_key_file set, the port speaks only TLS 1.2+ (wss://, https://); "
           "SIGHUP reloads both files without dropping connections. Empty: plain TCP (behind a TLS proxy)."},
    option{"server.tls_key_file", "ZENA_TLS_KEY_FILE", "tls-key-file", &settings::tls_key_file, "", 0, 0, false,
           "PEM private key of server.tls_cert_file."},
    option{"server.mode", "ZENA_MODE", "mode", &settings::mode, "", 0, 0, false,
           "auto, dev or production. auto is dev when neither jwt_secret nor api_key is set. Dev mode "
           "generates a secret and an API key, keeps them in dev_state_file and prints them; production "
           "refuses to start without both."},
    option{"auth.jwt_secret", "ZENA_JWT_SECRET", "jwt-secret", &settings::jwt_secret, "", 0, 0, true,
           "HMAC secret that signs client tokens; at least as long as the hash (32 bytes for HS256)."},
    option{"auth.jwks_file", "ZENA_JWKS_FILE", "jwks-file", &settings::jwks_file, "", 0, 0, false,
           "A JSON Web Key Set whose public keys verify RS256, ES256 and EdDSA tokens, each key pinned to its "
           "algorithm and chosen by the token's kid (docs/security.md). With it, jwt_secret may be left empty."},
    option{"auth.jwks_url", "ZENA_JWKS_URL", "jwks-url", &settings::jwks_url, "", 0, 0, false,
           "http(s):// URL of a JSON Web Key Set, fetched at start (the server does not start without it) and "
           "again every jwks_refresh_s; a failed refresh keeps the keys it has. Replaces jwks_file."},
    option{"auth.jwks_refresh_s", "ZENA_JWKS_REFRESH_S", "jwks-refresh-s", &settings::jwks_refresh_s, "s", 1, 86400,
           false, "How often auth.jwks_url is fetched again (key rotation)."},
    option{"auth.jwks_ca_file", "ZENA_JWKS_CA_FILE", "jwks-ca-file", &settings::jwks_ca_file, "", 0, 0, false,
           "PEM certificates trusted for an https jwks_url (a private CA); empty: the system's."},
    option{"auth.jwt_algorithm", "ZENA_JWT_ALGORITHM", "jwt-algorithm", &settings::jwt_algorithm, "", 0, 0, false,
           "The one accepted algorithm: HS256, HS384 or HS512. Tokens naming any other, none included, "
           "are refused."},
    option{"auth.jwt_leeway_s", "ZENA_JWT_LEEWAY_S", "jwt-leeway-s", &settings::jwt_leeway_s, "s", 0, 300, false,
           "Clock skew tolerated when checking exp and nbf."},
    option{"auth.jwt_issuer", "ZENA_JWT_ISSUER", "jwt-issuer", &settings::jwt_issuer, "", 0, 0, false,
           "When set, the iss claim must equal it."},
    option{"auth.jwt_audience", "ZENA_JWT_AUDIENCE", "jwt-audience", &settings::jwt_audience, "", 0, 0, false,
           "When set, the aud claim must contain it."},
    option{"auth.jwt_user_claim", "ZENA_JWT_USER_CLAIM", "jwt-user-claim", &settings::jwt_user_claim, "", 0, 0, false,
           "The claim that holds the user id."},
    option{"auth.api_key", "ZENA_API_KEY", "api-key", &settings::api_key, "", 0, 0, true,
           "Key the backend presents as `Authorization: Bearer <key>` on /api/*; at least 16 bytes."},
    option{"auth.dev_state_file", "ZENA_DEV_STATE_FILE", "dev-state-file", &settings::dev_state_file, "", 0, 0, false,
           "Dev mode only: where the generated secret and API key are kept between runs."},
    option{"websocket.heartbeat_interval_ms", "ZENA_HEARTBEAT_INTERVAL_MS", "heartbeat-interval-ms",
           &settings::heartbeat_interval_ms, "ms", 100, k_day_ms, false,
           "A ping is sent this often; a connection that has not answered the previous ping by the next "
           "one is terminated."},
    option{"websocket.handshake_timeout_ms", "ZENA_HANDSHAKE_TIMEOUT_MS", "handshake-timeout-ms",
           &settings::handshake_timeout_ms, "ms", 100, 600000, false,
           "Time allowed for the WebSocket handshake and for a close handshake to finish."},
    option{"websocket.max_message_bytes", "ZENA_MAX_MESSAGE_BYTES", "max-message-bytes", &settings::max_message_bytes,
           "bytes", 128, 16 * 1024 * 1024, false,
           "Largest message a client may send; a larger one closes the connection with 1009."},
    option{"websocket.send_queue_max_bytes", "ZENA_SEND_QUEUE_MAX_BYTES", "send-queue-max-bytes",
           &settings::send_queue_max_bytes, "bytes", 1024, 1024LL * 1024 * 1024, false,
           "Bytes that may wait to be written to one connection; past it the connection is closed with "
           "4000 (slow_consumer) instead of growing memory."},
    option{"websocket.allowed_origins", "ZENA_ALLOWED_ORIGINS", "allowed-origins", &settings::allowed_origins, "", 0, 0,
           false,
           "Browser origins that may connect, e.g. \"https://app.example.com, https://*.example.com\"; a handshake "
           "from another origin is refused with 403 (Cross-Site WebSocket Hijacking). Requests without Origin (not "
           "browsers) are allowed. Empty or *: any origin."},
    option{"websocket.client_messages_per_second", "ZENA_CLIENT_MESSAGES_PER_SECOND", "client-messages-per-second",
           &settings::client_messages_per_second, "messages/s", 0, 0, false,
           "Client messages one connection may send a second on average; beyond it (and the burst) messages are "
           "dropped and counted, and a connection that keeps at it for about 5 s more is closed with 1008."},
    option{"websocket.client_messages_burst", "ZENA_CLIENT_MESSAGES_BURST", "client-messages-burst",
           &settings::client_messages_burst, "messages", 1, 100000, false,
           "Client messages one connection may send at once before the rate applies."},
    option{"websocket.auth_timeout_ms", "ZENA_AUTH_TIMEOUT_MS", "auth-timeout-ms", &settings::auth_timeout_ms, "ms",
           100, 600000, false,
           "A connection whose handshake carried no token must send {\"type\":\"auth\"} within this time, or it "
           "is closed with 1008."},
    option{"websocket.permessage_deflate", "ZENA_PERMESSAGE_DEFLATE", "permessage-deflate",
           &settings::permessage_deflate, "", 0, 0, false,
           "Negotiate permessage-deflate (RFC 7692) with clients that offer it, with the parameters browsers send. "
           "Off by default: most events are a few hundred bytes. A broadcast is compressed once for every "
           "connection, and no connection holds zlib state (docs/conformance.md)."},
    option{"websocket.test_echo", "ZENA_TEST_ECHO", "test-echo", &settings::test_echo, "", 0, 0, false,
           "Serve /echo, a WebSocket that needs no token and echoes every message, for conformance tools. Never "
           "in production: it is logged loudly at start."},
    option{"limits.max_connections", "ZENA_MAX_CONNECTIONS", "max-connections", &settings::max_connections, "", 1,
           100000000, false,
           "WebSocket connections open at once (authenticated or not); further handshakes are answered 503."},
    option{"limits.max_connections_per_user", "ZENA_MAX_CONNECTIONS_PER_USER", "max-connections-per-user",
           &settings::max_connections_per_user, "", 1, 1000000, false,
           "Connections one user may hold; one more is closed with 1013 (try again later) after its handshake."},
    option{"limits.max_connections_per_address", "ZENA_MAX_CONNECTIONS_PER_ADDRESS", "max-connections-per-address",
           &settings::max_connections_per_address, "", 1, 100000000, false,
           "WebSocket connections one client address (an IPv6 /64) may hold; further handshakes are answered 429."},
    option{"limits.handshakes_per_address_per_second", "ZENA_HANDSHAKES_PER_ADDRESS_PER_SECOND",
           "handshakes-per-address-per-second", &settings::handshakes_per_address_per_second, "handshakes/s", 0, 0,
           false, "WebSocket handshakes one client address may make a second (bursts of twice that); beyond it, 429."},
    option{"limits.max_tracked_addresses", "ZENA_MAX_TRACKED_ADDRESSES", "max-tracked-addresses",
           &settings::max_tracked_addresses, "", 1000, 100000000, false,
           "Client addresses remembered for the per-address limits; when full, handshakes from new addresses get "
           "503 until idle ones are forgotten."},
    option{"http.max_body_bytes", "ZENA_HTTP_MAX_BODY_BYTES", "http-max-body-bytes", &settings::http_max_body_bytes,
           "bytes", 1024, 64 * 1024 * 1024, false, "Largest HTTP request body; larger requests get 413."},
    option{"http.max_header_bytes", "ZENA_HTTP_MAX_HEADER_BYTES", "http-max-header-bytes",
           &settings::http_max_header_bytes, "bytes", 1024, 1024 * 1024, false,
           "Largest HTTP request head (request line and headers); larger requests get 431."},
    option{"http.request_timeout_ms", "ZENA_HTTP_REQUEST_TIMEOUT_MS", "http-request-timeout-ms",
           &settings::http_request_timeout_ms, "ms", 100, 3600000, false,
           "Time allowed to receive one HTTP request, and idle time on a keep-alive connection."},
    option{"http.max_users_per_publish", "ZENA_MAX_USERS_PER_PUBLISH", "max-users-per-publish",
           &settings::max_users_per_publish, "", 1, 1000000, false,
           "Most userIds one /api/broadcast call (or batch item) may name."},
    option{"http.max_batch_items", "ZENA_MAX_BATCH_ITEMS", "max-batch-items", &settings::max_batch_items, "", 1, 100000,
           false, "Most publishes one /api/batch call may carry."},
    option{"catalog.path", "ZENA_CATALOG", "catalog", &settings::catalog_path, "", 0, 0, false,
           "Event catalog file (docs/catalog.md). Empty: the catalog shipped in the repository "
           "(catalog/events.json), compiled into the binary."},
    option{"catalog.permissive", "ZENA_CATALOG_PERMISSIVE", "catalog-permissive", &settings::catalog_permissive, "", 0,
           0, false,
           "true: publishes of event types the catalog does not know are delivered as they are (known types are "
           "still checked). false: they are refused with 400."},
    option{"webhook.url", "ZENA_WEBHOOK_URL", "webhook-url", &settings::webhook_url, "", 0, 0, false,
           "http://host[:port]/path that receives every valid client event (docs/upstream.md); empty: none."},
    option{"webhook.secret", "ZENA_WEBHOOK_SECRET", "webhook-secret", &settings::webhook_secret, "", 0, 0, true,
           "Key of the X-Zena-Signature HMAC-SHA256 of each webhook body; empty: unsigned."},
    option{"webhook.timeout_ms", "ZENA_WEBHOOK_TIMEOUT_MS", "webhook-timeout-ms", &settings::webhook_timeout_ms, "ms",
           100, 600000, false, "Time allowed for one webhook call (connect, send, answer)."},
    option{"webhook.max_attempts", "ZENA_WEBHOOK_MAX_ATTEMPTS", "webhook-max-attempts", &settings::webhook_max_attempts,
           "", 1, 100, false, "Attempts per event before it is given up (counted in zena_upstream_failed_total)."},
    option{"webhook.backoff_ms", "ZENA_WEBHOOK_BACKOFF_MS", "webhook-backoff-ms", &settings::webhook_backoff_ms, "ms",
           1, 600000, false, "Wait before the first retry; doubled after each failed attempt."},
    option{"webhook.max_queue", "ZENA_WEBHOOK_MAX_QUEUE", "webhook-max-queue", &settings::webhook_max_queue, "", 1,
           10000000, false,
           "Client events waiting for the webhook; when full the oldest waiting one is dropped and counted."},
    option{"upstream.routes", "ZENA_UPSTREAM_ROUTES", "upstream-routes", &settings::upstream_routes, "", 0, 0, false,
           "Where each client event type goes: e.g. \"sync.request=webhook+redis,typing.start=none,*=webhook\" "
           "(destinations webhook, redis, none; * for the other types). Empty: every valid client event to every "
           "configured destination (docs/upstream.md)."},
    option{"redis.url", "ZENA_REDIS_URL", "redis-url", &settings::redis_url, "", 0, 0, true,
           "redis://[[user]:password@]host[:port][/db], e.g. redis://127.0.0.1:6379. Empty: no Redis (no "
           "publishing through Redis, no client events stream)."},
    option{"redis.timeout_ms", "ZENA_REDIS_TIMEOUT_MS", "redis-timeout-ms", &settings::redis_timeout_ms, "ms", 100,
           600000, false, "Time allowed to connect to Redis and for each command's answer."},
    option{"redis.publish_channel", "ZENA_REDIS_PUBLISH_CHANNEL", "redis-publish-channel",
           &settings::redis_publish_channel, "", 0, 0, false,
           "Pub/Sub channel whose messages are publishes (API bodies, docs/api.md); empty: none."},
    option{"redis.publish_stream", "ZENA_REDIS_PUBLISH_STREAM", "redis-publish-stream", &settings::redis_publish_stream,
           "", 0, 0, false,
           "Stream whose entries' body field is a publish, read from the newest entry on; empty: none."},
    option{"redis.client_events_stream", "ZENA_REDIS_CLIENT_EVENTS_STREAM", "redis-client-events-stream",
           &settings::redis_client_events_stream, "", 0, 0, false,
           "Stream that client events routed to redis are appended to (XADD); empty: none."},
    option{"redis.client_events_max_len", "ZENA_REDIS_CLIENT_EVENTS_MAX_LEN", "redis-client-events-max-len",
           &settings::redis_client_events_max_len, "entries", 1, 1000000000, false,
           "MAXLEN ~ of each XADD: Redis trims the client events stream to about this many entries."},
    option{"redis.client_events_max_queue", "ZENA_REDIS_CLIENT_EVENTS_MAX_QUEUE", "redis-client-events-max-queue",
           &settings::redis_client_events_max_queue, "", 1, 10000000, false,
           "Client events waiting for Redis; when full the oldest waiting one is dropped and counted."},
    option{"shutdown.drain_ms", "ZENA_SHUTDOWN_DRAIN_MS", "shutdown-drain-ms", &settings::shutdown_drain_ms, "ms", 0,
           600000, false, "On SIGTERM/SIGINT, time allowed for close handshakes (1001) before the process exits."},
    option{"log.level", "ZENA_LOG_LEVEL", "log-level", &settings::log_level, "", 0, 0, false,
           "trace, debug, info, warn, error or off."},
    option{"log.invalid_message_per_second", "ZENA_LOG_INVALID_MESSAGE_PER_SECOND", "log-invalid-message-per-second",
           &settings::invalid_message_log_per_second, "lines/s", 0, 0, false,
           "Per thread, how many invalid client messages are logged a second; the rest are counted."},
};

std::string default_text(const option& opt) {
    const settings defaults{};
    return std::visit(
        [&](auto member) -> std::string {
            const auto& value = defaults.*member;
            if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::string>) {
                return value;
            } else if constexpr (std::is_same_v<std::decay_t<decltype(value)>, bool>) {
                return value ? "true" : "false";
            } else {
                std::ostringstream out;
                out << value;
                return out.str();
            }
        },
        opt.target);
}

// Sets one option from text; returns an error message naming `source` or empty.
std::string assign(settings& s, const option& opt, std::string_view text, std::string_view source) {
    const auto where = [&] { return std::string{source} + " (" + std::string{opt.key} + ")"; };
    return std::visit(
        [&](auto member) -> std::string {
            auto& value = s.*member;
            using type = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<type, std::string>) {
                value = std::string{text};
                return {};
            } else if constexpr (std::is_same_v<type, bool>) {
                if (text == "true" || text == "1") {
                    value = true;
                } else if (text == "false" || text == "0") {
                    value = false;
                } else {
                    return where() + ": expected true or false, got '" + std::string{text} + "'";
                }
                return {};
            } else if constexpr (std::is_same_v<type, std::int64_t>) {
                std::int64_t n = 0;
                const auto* end = text.data() + text.size();
                const auto [ptr, ec] = std::from_chars(text.data(), end, n);
                if (ec != std::errc{} || ptr != end || text.empty()) {
                    return where() + ": expected a whole number, got '" + std::string{text} + "'";
                }
                if (n < opt.min || n > opt.max) {
                    return where() + ": " + std::to_string(n) + " is out of range [" + std::to_string(opt.min) + ", " +
                           std::to_string(opt.max) + "]";
                }
                value = n;
                return {};
            } else {
                char* end = nullptr;
                const std::string copy{text};
                const double d = std::strtod(copy.c_str(), &end);
                if (copy.empty() || end != copy.c_str() + copy.size() || !(d >= 0)) {
                    return where() + ": expected a non-negative number, got '" + copy + "'";
                }
                value = d;
                return {};
            }
        },
        opt.target);
}

const option* find_by_key(std::string_view key) {
    for (const auto& opt : k_options) {
        if (opt.key == key) return &opt;
    }
    return nullptr;
}

const option* find_by_flag(std::string_view flag) {
    for (const auto& opt : k_options) {
        if (opt.flag == flag) return &opt;
    }
    return nullptr;
}

std::string load_toml(settings& s, const std::string& path) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        std::ostringstream out;
        out << "config file " << path << ": " << e.description() << " at line " << e.source().begin.line;
        return out.str();
    }
    for (const auto& [section_name, section_node] : root) {
        const auto* section = section_node.as_table();
        if (!section) return "config file " + path + ": '" + std::string{section_name.str()} + "' must be a [section]";
        for (const auto& [name, node] : *section) {
            const std::string key = std::string{section_name.str()} + "." + std::string{name.str()};
            const option* opt = find_by_key(key);
            if (!opt) return "config file " + path + ": unknown option '" + key + "'";
            std::string text;
            if (const auto* str = node.as_string()) {
                text = str->get();
            } else if (const auto* integer = node.as_integer()) {
                text = std::to_string(integer->get());
            } else if (const auto* boolean = node.as_boolean()) {
                text = boolean->get() ? "true" : "false";
            } else if (const auto* fp = node.as_floating_point()) {
                std::ostringstream out;
                out << fp->get();
                text = out.str();
            } else {
                return "config file " + path + ": '" + key + "' must be a string, a number or a boolean";
            }
            if (auto err = assign(s, *opt, text, "config file " + path); !err.empty()) return err;
        }
    }
    return {};
}

std::size_t min_secret_bytes(std::string_view algorithm) {
    if (algorithm == "HS384") return 48;
    if (algorithm == "HS512") return 64;
    return 32;
}

}  // namespace

std::optional<std::string> process_env(std::string_view name) {
    // Read at start only, before any thread exists.
    const char* value = std::getenv(std::string{name}.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (!value) return std::nullopt;
    return std::string{value};
}

load_result load(const std::vector<std::string>& args, const env_lookup& env) {
    load_result result;
    settings& s = result.values;

    // The config file is named first, by flag or environment, so the rest can override it.
    std::optional<std::string> config_path = env("ZENA_CONFIG");
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--help" || args[i] == "-h") {
            result.help = true;
            return result;
        }
        if (args[i] == "--config") {
            if (i + 1 >= args.size()) {
                result.error = "--config needs a file path";
                return result;
            }
            config_path = args[i + 1];
        } else if (args[i].starts_with("--config=")) {
            config_path = args[i].substr(9);
        }
    }
    if (config_path && !config_path->empty()) {
        if (auto err = load_toml(s, *config_path); !err.empty()) {
            result.error = err;
            return result;
        }
    }

    for (const auto& opt : k_options) {
        if (const auto value = env(opt.env)) {
            if (auto err = assign(s, opt, *value, "environment variable " + std::string{opt.env}); !err.empty()) {
                result.error = err;
                return result;
            }
        }
    }

    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (!arg.starts_with("--")) {
            result.error = "unexpected argument '" + std::string{arg} + "' (see --help)";
            return result;
        }
        arg.remove_prefix(2);
        std::string_view name = arg;
        std::optional<std::string> value;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = std::string{arg.substr(eq + 1)};
        }
        if (name == "config") {
            if (!value) ++i;
            continue;
        }
        const option* opt = find_by_flag(name);
        if (!opt) {
            result.error = "unknown option --" + std::string{name} + " (see --help)";
            return result;
        }
        if (!value) {
            if (i + 1 >= args.size()) {
                result.error = "--" + std::string{name} + " needs a value";
                return result;
            }
            value = args[++i];
        }
        if (auto err = assign(s, *opt, *value, "--" + std::string{name}); !err.empty()) {
            result.error = err;
            return result;
        }
    }

    if (s.mode != "auto" && s.mode != "dev" && s.mode != "production") {
        result.error = "server.mode must be auto, dev or production, got '" + s.mode + "'";
        return result;
    }
    result.dev_mode = s.mode == "dev" || (s.mode == "auto" && s.jwt_secret.empty() && s.jwks_file.empty() &&
                                          s.jwks_url.empty() && s.api_key.empty());
    result.error = validate(s, result.dev_mode);
    return result;
}

std::string validate(const settings& s, bool dev_mode) {
    if (!auth::parse_jwt_algorithm(s.jwt_algorithm)) {
        return "auth.jwt_algorithm must be HS256, HS384 or HS512, got '" + s.jwt_algorithm + "'";
    }
    if (s.jwt_user_claim.empty()) return "auth.jwt_user_claim must not be empty";
    if (!dev_mode) {
        if (s.jwt_secret.empty() && s.jwks_file.empty() && s.jwks_url.empty()) {
            return "auth.jwt_secret (ZENA_JWT_SECRET), auth.jwks_file or auth.jwks_url is required outside dev "
                   "mode; set one, or run with --mode dev on a development machine";
        }
        if (s.api_key.empty()) {
            return "auth.api_key (ZENA_API_KEY) is required outside dev mode; set it, or run with --mode dev "
                   "on a development machine";
        }
    }
    if (!s.jwt_secret.empty() && s.jwt_secret.size() < min_secret_bytes(s.jwt_algorithm)) {
        return "auth.jwt_secret is " + std::to_string(s.jwt_secret.size()) + " bytes; " + s.jwt_algorithm +
               " needs at least " + std::to_string(min_secret_bytes(s.jwt_algorithm)) + " (RFC 7518 section 3.2)";
    }
    if (!s.api_key.empty() && s.api_key.size() < 16) return "auth.api_key must be at least 16 bytes";
    if (s.host.empty()) return "server.host must not be empty";
    if (!s.jwks_url.empty() && net::parse_http_url(s.jwks_url).host.empty()) {
        return "auth.jwks_url must be http(s)://host[:port]/path, got '" + s.jwks_url + "'";
    }
    if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
        return "server.tls_cert_file and server.tls_key_file go together: set both or neither";
    }
    if (std::string origin_error; !auth::origin_policy::parse(s.allowed_origins, origin_error)) {
        return "websocket.allowed_origins: " + origin_error;
    }
    if (!(s.client_messages_per_second > 0) || !(s.handshakes_per_address_per_second > 0)) {
        return "websocket.client_messages_per_second and limits.handshakes_per_address_per_second must be above 0";
    }
    if (!s.redis_url.empty() && !redis::parse_url(s.redis_url)) {
        return "redis.url must be redis://[[user]:password@]host[:port][/db] (rediss:// is not supported yet)";
    }
    std::string routes_error;
    if (!upstream::routes::parse(s.upstream_routes, routes_error)) return "upstream.routes: " + routes_error;
    if (!s.webhook_url.empty() &&
        (net::parse_http_url(s.webhook_url).host.empty() || net::parse_http_url(s.webhook_url).tls)) {
        return "webhook.url must be http://host[:port]/path (https is not supported yet), got '" + s.webhook_url + "'";
    }
    static constexpr std::array k_levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find(k_levels.begin(), k_levels.end(), s.log_level) == k_levels.end()) {
        return "log.level must be one of trace, debug, info, warn, error, critical, off; got '" + s.log_level + "'";
    }
    if (s.send_queue_max_bytes < s.max_message_bytes) {
        return "websocket.send_queue_max_bytes must be at least websocket.max_message_bytes";
    }
    return {};
}

std::string help_text() {
    std::ostringstream out;
    out << "zena-realtime: real-time WebSocket gateway (ws://HOST:PORT/ws?token=<JWT>)\n\n"
           "Usage:\n"
           "  zena-realtime [options]                 run the server\n"
           "  zena-realtime token --user ID [--ttl S] [options]\n"
           "                                          print a token for ID signed with the configured\n"
           "                                          (or dev) secret, valid S seconds (default 3600)\n"
           "  zena-realtime codes                     print the close-code table as JSON\n"
           "  zena-realtime catalog [options]         print the event catalog in effect\n"
           "  zena-realtime config-docs               print docs/configuration.md\n\n"
           "Options (flag, then environment variable; flags override the environment, which overrides\n"
           "the config file, which overrides the defaults):\n"
           "  --config PATH  (ZENA_CONFIG)\n      TOML file with [server], [auth], [websocket], [http], "
           "[catalog], [limits], [webhook], [upstream], [redis], [shutdown], [log] sections.\n";
    for (const auto& opt : k_options) {
        out << "  --" << opt.flag << "  (" << opt.env << ")\n      " << opt.help;
        if (!opt.unit.empty()) out << " Unit: " << opt.unit << '.';
        if (!opt.secret) {
            const auto def = default_text(opt);
            out << " Default: " << (def.empty() ? "(empty)" : def) << '.';
        }
        out << '\n';
    }
    out << "  --help\n      This text.\n";
    return out.str();
}

std::string markdown_reference() {
    std::ostringstream out;
    out << "# Configuration reference\n\n"
           "Generated by `zena-realtime config-docs` from the option table in `src/config/config.cpp`; a test "
           "checks that this file matches it.\n\n"
           "Each option can be set in the TOML file given by `--config` (or `ZENA_CONFIG`), by its environment "
           "variable, or by its flag. Flags win over the environment, which wins over the file, which wins over "
           "the default. Every value is checked at start; a bad one stops the server with a message that names "
           "it. See `config/zena-realtime.toml` for a commented sample.\n\n"
           "| TOML key | Environment | Flag | Default | Unit | Meaning |\n"
           "|---|---|---|---|---|---|\n";
    for (const auto& opt : k_options) {
        const auto def = opt.secret ? std::string{"(none)"} : default_text(opt);
        out << "| `" << opt.key << "` | `" << opt.env << "` | `--" << opt.flag << "` | "
            << (def.empty() ? std::string{"(empty)"} : "`" + def + "`") << " | " << opt.unit << " | " << opt.help
            << " |\n";
    }
    return out.str();
}

}  // namespace zena::config
