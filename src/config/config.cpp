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
#include "protocol/channel.hpp"
#include "redis/connection.hpp"
#include "upstream/routes.hpp"
#include "util/url.hpp"

namespace zena::config {
namespace {

using field =
    std::variant<std::string settings::*, std::int64_t settings::*, double settings::*, bool settings::*,
                 std::chrono::milliseconds settings::*, std::chrono::seconds settings::*,
                 parsed<auth::jwt_algorithm> settings::*, parsed<auth::origin_policy> settings::*,
                 parsed<std::optional<util::http_url>> settings::*, parsed<std::optional<redis::endpoint>> settings::*,
                 parsed<std::optional<upstream::routes>> settings::*, parsed<util::cidr_set> settings::*>;

struct option {
    std::string_view key;   // TOML key: "section.name"
    std::string_view env;   // environment variable
    std::string_view flag;  // command-line flag, without the leading "--"
    field target;
    std::string_view unit;
    std::int64_t min = 0;  // integers and durations only (in `unit`)
    std::int64_t max = 0;
    bool secret = false;  // never printed
    std::string_view help;
};

// The meaning of an option's text, for the options with a grammar; an error says what is
// wrong with it.
util::status parse_value(std::string_view text, auth::jwt_algorithm& out) {
    const auto alg = auth::parse_jwt_algorithm(text);
    if (!alg) return util::error{"must be HS256, HS384 or HS512, got '" + std::string{text} + "'"};
    out = *alg;
    return {};
}

util::status parse_value(std::string_view text, auth::origin_policy& out) {
    std::string error;
    auto policy = auth::origin_policy::parse(text, error);
    if (!policy) return util::error{error};
    out = std::move(*policy);
    return {};
}

util::status parse_value(std::string_view text, std::optional<util::http_url>& out) {
    out.reset();
    if (text.empty()) return {};
    auto url = util::parse_http_url(text);
    if (url.host.empty()) return util::error{"must be http(s)://host[:port]/path, got '" + std::string{text} + "'"};
    out = std::move(url);
    return {};
}

util::status parse_value(std::string_view text, std::optional<redis::endpoint>& out) {
    out.reset();
    if (text.empty()) return {};
    auto endpoint = redis::parse_url(text);
    if (!endpoint)
        return util::error{"must be redis://[[user]:password@]host[:port][/db] (rediss:// is not supported yet)"};
    out = std::move(*endpoint);
    return {};
}

util::status parse_value(std::string_view text, std::optional<upstream::routes>& out) {
    out.reset();
    if (text.empty()) return {};
    std::string error;
    auto routes = upstream::routes::parse(text, error);
    if (!routes) return util::error{error};
    out = std::move(*routes);
    return {};
}

util::status parse_value(std::string_view text, util::cidr_set& out) {
    auto set = util::cidr_set::parse(text);
    if (!set) return util::error{set.message()};
    out = std::move(*set);
    return {};
}

template <typename T>
struct is_parsed : std::false_type {};
template <typename T>
struct is_parsed<parsed<T>> : std::true_type {};
template <typename T>
struct is_duration : std::false_type {};
template <typename R, typename P>
struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

constexpr std::int64_t k_day_ms = 24LL * 3600 * 1000;

// The one table of options. Its order is the order of --help and of docs/configuration.md.
const std::array k_options{
    option{.key = "server.host",
           .env = "ZENA_HOST",
           .flag = "host",
           .target = &settings::host,
           .help = "Address to listen on (IPv4 or IPv6 literal)."},
    option{.key = "server.port",
           .env = "ZENA_PORT",
           .flag = "port",
           .target = &settings::port,
           .min = 0,
           .max = 65535,
           .help = "TCP port for WebSocket upgrades (/ws) and the HTTP API; 0 picks a free port (logged at start)."},
    option{.key = "server.threads",
           .env = "ZENA_THREADS",
           .flag = "threads",
           .target = &settings::threads,
           .min = 0,
           .max = 256,
           .help = "Event-loop threads, each owning its connections. 0: one per CPU the process may use, the "
                   "fewest of its affinity mask (taskset, cpuset) and its cgroup v2 CPU quota (cpu.max, rounded "
                   "up), logged at start with the reason. A count above that starts with a warning: the loops "
                   "would share CPUs."},
    option{.key = "server.cgroup_root",
           .env = "ZENA_CGROUP_ROOT",
           .flag = "cgroup-root",
           .target = &settings::cgroup_root,
           .help = "Where the cgroup v2 hierarchy is mounted: the CPU quota is read from "
                   "`<root><cgroup>/cpu.max` and its parents' (the cgroup from /proc/self/cgroup). For tests and "
                   "unusual mounts; empty: no quota is read."},
    option{.key = "server.io_uring",
           .env = "ZENA_IO_URING",
           .flag = "io-uring",
           .target = &settings::io_uring,
           .help = "Hand each event-loop turn's writes to the kernel through io_uring, 64 connections per system "
                   "call, instead of one call per connection. Where the kernel refuses it (a seccomp profile, "
                   "Linux before 5.6), the server logs why and writes one call at a time."},
    option{.key = "server.tls_cert_file",
           .env = "ZENA_TLS_CERT_FILE",
           .flag = "tls-cert-file",
           .target = &settings::tls_cert_file,
           .help = "PEM certificate chain. With tls_key_file set, the port speaks only TLS 1.2+ (wss://, https://); "
                   "SIGHUP reloads both files without dropping connections. Empty: plain TCP (behind a TLS proxy)."},
    option{.key = "server.tls_key_file",
           .env = "ZENA_TLS_KEY_FILE",
           .flag = "tls-key-file",
           .target = &settings::tls_key_file,
           .help = "PEM private key of server.tls_cert_file."},
    option{.key = "server.trusted_proxies",
           .env = "ZENA_TRUSTED_PROXIES",
           .flag = "trusted-proxies",
           .target = &settings::trusted_proxies,
           .help = "Addresses and networks of the reverse proxies in front, e.g. \"127.0.0.1, 10.0.0.0/8, ::1\". "
                   "A request from one of them is counted, limited and logged under the client its "
                   "X-Forwarded-For names (the right-most entry that is not itself a trusted proxy); from any "
                   "other peer the header is ignored. Empty: no proxy is trusted (docs/deployment.md)."},
    option{.key = "server.mode",
           .env = "ZENA_MODE",
           .flag = "mode",
           .target = &settings::mode,
           .help = "auto, dev or production. auto is dev when neither jwt_secret nor api_key is set. Dev mode "
                   "generates a secret and an API key, keeps them in dev_state_file and prints them; production "
                   "refuses to start without both."},
    option{.key = "auth.jwt_secret",
           .env = "ZENA_JWT_SECRET",
           .flag = "jwt-secret",
           .target = &settings::jwt_secret,
           .secret = true,
           .help = "HMAC secret that signs client tokens; at least as long as the hash (32 bytes for HS256)."},
    option{.key = "auth.jwks_file",
           .env = "ZENA_JWKS_FILE",
           .flag = "jwks-file",
           .target = &settings::jwks_file,
           .help =
               "A JSON Web Key Set whose public keys verify RS256, ES256 and EdDSA tokens, each key pinned to its "
               "algorithm and chosen by the token's kid (docs/security.md). With it, jwt_secret may be left empty."},
    option{.key = "auth.jwks_url",
           .env = "ZENA_JWKS_URL",
           .flag = "jwks-url",
           .target = &settings::jwks_url,
           .help = "http(s):// URL of a JSON Web Key Set, fetched at start (the server does not start without it) and "
                   "again every jwks_refresh_s; a failed refresh keeps the keys it has. Replaces jwks_file."},
    option{.key = "auth.jwks_refresh_s",
           .env = "ZENA_JWKS_REFRESH_S",
           .flag = "jwks-refresh-s",
           .target = &settings::jwks_refresh,
           .unit = "s",
           .min = 1,
           .max = 86400,
           .help = "How often auth.jwks_url is fetched again (key rotation)."},
    option{.key = "auth.jwks_ca_file",
           .env = "ZENA_JWKS_CA_FILE",
           .flag = "jwks-ca-file",
           .target = &settings::jwks_ca_file,
           .help = "PEM certificates trusted for an https jwks_url (a private CA); empty: upstream.tls_ca_file, or "
                   "the system's."},
    option{.key = "auth.jwt_algorithm",
           .env = "ZENA_JWT_ALGORITHM",
           .flag = "jwt-algorithm",
           .target = &settings::jwt_algorithm,
           .help = "The one accepted algorithm: HS256, HS384 or HS512. Tokens naming any other, none included, "
                   "are refused."},
    option{.key = "auth.jwt_leeway_s",
           .env = "ZENA_JWT_LEEWAY_S",
           .flag = "jwt-leeway-s",
           .target = &settings::jwt_leeway,
           .unit = "s",
           .min = 0,
           .max = 300,
           .help = "Clock skew tolerated when checking exp and nbf."},
    option{.key = "auth.jwt_issuer",
           .env = "ZENA_JWT_ISSUER",
           .flag = "jwt-issuer",
           .target = &settings::jwt_issuer,
           .help = "When set, the iss claim must equal it."},
    option{.key = "auth.jwt_audience",
           .env = "ZENA_JWT_AUDIENCE",
           .flag = "jwt-audience",
           .target = &settings::jwt_audience,
           .help = "When set, the aud claim must contain it."},
    option{.key = "auth.jwt_user_claim",
           .env = "ZENA_JWT_USER_CLAIM",
           .flag = "jwt-user-claim",
           .target = &settings::jwt_user_claim,
           .help = "The claim that holds the user id."},
    option{.key = "auth.api_key",
           .env = "ZENA_API_KEY",
           .flag = "api-key",
           .target = &settings::api_key,
           .secret = true,
           .help = "Key the backend presents as `Authorization: Bearer <key>` on /api/*; at least 16 bytes."},
    option{.key = "auth.dev_state_file",
           .env = "ZENA_DEV_STATE_FILE",
           .flag = "dev-state-file",
           .target = &settings::dev_state_file,
           .help = "Dev mode only: where the generated secret and API key are kept between runs."},
    option{.key = "websocket.heartbeat_interval_ms",
           .env = "ZENA_HEARTBEAT_INTERVAL_MS",
           .flag = "heartbeat-interval-ms",
           .target = &settings::heartbeat_interval,
           .unit = "ms",
           .min = 100,
           .max = k_day_ms,
           .help = "A ping is sent this often; a connection that has not answered the previous ping by the next "
                   "one is terminated."},
    option{.key = "websocket.handshake_timeout_ms",
           .env = "ZENA_HANDSHAKE_TIMEOUT_MS",
           .flag = "handshake-timeout-ms",
           .target = &settings::handshake_timeout,
           .unit = "ms",
           .min = 100,
           .max = 600000,
           .help = "Time allowed for a new connection to send its first request (the WebSocket opening handshake, "
                   "after the TLS handshake when TLS is on); a socket that says nothing is dropped then. Later "
                   "requests on a kept-alive connection have http.request_timeout_ms. The closing handshake has "
                   "websocket.close_timeout_ms."},
    option{.key = "websocket.close_timeout_ms",
           .env = "ZENA_CLOSE_TIMEOUT_MS",
           .flag = "close-timeout-ms",
           .target = &settings::close_timeout,
           .unit = "ms",
           .min = 100,
           .max = 600000,
           .help = "Once the server has sent its close frame, the TCP connection is dropped when the client's close "
                   "arrives or after this long, whichever comes first. Meanwhile what the client sends is skipped "
                   "unread, and after 4 KiB not read at all. A client answers a close within a round trip."},
    option{.key = "websocket.message_timeout_ms",
           .env = "ZENA_MESSAGE_TIMEOUT_MS",
           .flag = "message-timeout-ms",
           .target = &settings::message_timeout,
           .unit = "ms",
           .min = 100,
           .max = 600000,
           .help = "A message sent in fragments must be complete this long after its first fragment, or the "
                   "connection is closed with 1008 (checked on each read and at each heartbeat, so a silent client "
                   "is closed within this plus websocket.heartbeat_interval_ms)."},
    option{.key = "websocket.client_frames_per_second",
           .env = "ZENA_CLIENT_FRAMES_PER_SECOND",
           .flag = "client-frames-per-second",
           .target = &settings::client_frames_per_second,
           .unit = "frames/s",
           .min = 1,
           .max = 100000000,
           .help = "Frames of any kind (data, continuation, ping, pong) one connection may send a second on average, "
                   "beneath the message rate; past it and the burst, the connection is closed with 1008. Far above "
                   "what a client sends: about one frame per message, a few for a fragmented one."},
    option{.key = "websocket.client_frames_burst",
           .env = "ZENA_CLIENT_FRAMES_BURST",
           .flag = "client-frames-burst",
           .target = &settings::client_frames_burst,
           .unit = "frames",
           .min = 1,
           .max = 1000000000,
           .help = "Frames one connection may send at once before websocket.client_frames_per_second applies."},
    option{.key = "websocket.max_message_bytes",
           .env = "ZENA_MAX_MESSAGE_BYTES",
           .flag = "max-message-bytes",
           .target = &settings::max_message_bytes,
           .unit = "bytes",
           .min = 128,
           .max = 16 * 1024 * 1024,
           .help = "Largest message a client may send; a larger one closes the connection with 1009."},
    option{.key = "websocket.send_queue_max_bytes",
           .env = "ZENA_SEND_QUEUE_MAX_BYTES",
           .flag = "send-queue-max-bytes",
           .target = &settings::send_queue_max_bytes,
           .unit = "bytes",
           .min = 1024,
           .max = 1024LL * 1024 * 1024,
           .help = "Bytes that may wait to be written to one connection; past it the connection is closed with "
                   "4000 (slow_consumer) instead of growing memory."},
    option{.key = "websocket.allowed_origins",
           .env = "ZENA_ALLOWED_ORIGINS",
           .flag = "allowed-origins",
           .target = &settings::allowed_origins,
           .help =
               "Browser origins that may connect, e.g. \"https://app.example.com, https://*.example.com\"; a handshake "
               "from another origin is refused with 403 (Cross-Site WebSocket Hijacking). Requests without Origin (not "
               "browsers) are allowed. Empty or *: any origin."},
    option{.key = "websocket.client_messages_per_second",
           .env = "ZENA_CLIENT_MESSAGES_PER_SECOND",
           .flag = "client-messages-per-second",
           .target = &settings::client_messages_per_second,
           .unit = "messages/s",
           .help =
               "Client messages one connection may send a second on average; beyond it (and the burst) messages are "
               "dropped and counted, and a connection that keeps at it for about 5 s more is closed with 1008."},
    option{.key = "websocket.client_messages_burst",
           .env = "ZENA_CLIENT_MESSAGES_BURST",
           .flag = "client-messages-burst",
           .target = &settings::client_messages_burst,
           .unit = "messages",
           .min = 1,
           .max = 100000,
           .help = "Client messages one connection may send at once before the rate applies."},
    option{.key = "websocket.auth_timeout_ms",
           .env = "ZENA_AUTH_TIMEOUT_MS",
           .flag = "auth-timeout-ms",
           .target = &settings::auth_timeout,
           .unit = "ms",
           .min = 100,
           .max = 600000,
           .help =
               "A connection whose handshake carried no token must send {\"type\":\"auth\"} within this time, or it "
               "is closed with 1008."},
    option{.key = "websocket.inband_auth",
           .env = "ZENA_INBAND_AUTH",
           .flag = "inband-auth",
           .target = &settings::inband_auth,
           .help =
               "Let a connection whose handshake carried no token (query, Authorization header or subprotocol) send "
               "it as its first message, {\"type\":\"auth\"}, within websocket.auth_timeout_ms. Off by default: such "
               "a connection is closed at once with 1008 (token missing). The SDK sends its token as a subprotocol "
               "and does not need it."},
    option{.key = "websocket.permessage_deflate",
           .env = "ZENA_PERMESSAGE_DEFLATE",
           .flag = "permessage-deflate",
           .target = &settings::permessage_deflate,
           .help =
               "Negotiate permessage-deflate (RFC 7692) with clients that offer it, with the parameters browsers send. "
               "Off by default: most events are a few hundred bytes. A broadcast is compressed once for every "
               "connection, and no connection holds zlib state (docs/conformance.md)."},
    option{.key = "websocket.test_echo",
           .env = "ZENA_TEST_ECHO",
           .flag = "test-echo",
           .target = &settings::test_echo,
           .help =
               "Serve /echo, a WebSocket that needs no token and echoes every message, for conformance tools. Never "
               "in production: it is logged loudly at start."},
    option{.key = "limits.max_connections",
           .env = "ZENA_MAX_CONNECTIONS",
           .flag = "max-connections",
           .target = &settings::max_connections,
           .min = 1,
           .max = 100000000,
           .help = "WebSocket connections open at once (authenticated or not); further handshakes are answered 503."},
    option{
        .key = "limits.max_connections_per_user",
        .env = "ZENA_MAX_CONNECTIONS_PER_USER",
        .flag = "max-connections-per-user",
        .target = &settings::max_connections_per_user,
        .min = 1,
        .max = 1000000,
        .help = "Connections one user may hold; one more is closed with 1013 (try again later) after its handshake."},
    option{.key = "limits.max_connections_per_address",
           .env = "ZENA_MAX_CONNECTIONS_PER_ADDRESS",
           .flag = "max-connections-per-address",
           .target = &settings::max_connections_per_address,
           .min = 1,
           .max = 100000000,
           .help =
               "WebSocket connections one client address (an IPv6 /64) may hold; further handshakes are answered 429."},
    option{.key = "limits.handshakes_per_address_per_second",
           .env = "ZENA_HANDSHAKES_PER_ADDRESS_PER_SECOND",
           .flag = "handshakes-per-address-per-second",
           .target = &settings::handshakes_per_address_per_second,
           .unit = "handshakes/s",
           .help = "WebSocket handshakes one client address may make a second (bursts of twice that); beyond it, 429."},
    option{.key = "limits.max_tracked_addresses",
           .env = "ZENA_MAX_TRACKED_ADDRESSES",
           .flag = "max-tracked-addresses",
           .target = &settings::max_tracked_addresses,
           .min = 1000,
           .max = 100000000,
           .help =
               "Client addresses remembered for the per-address limits; when full, handshakes from new addresses get "
               "503 until idle ones are forgotten."},
    option{.key = "http.max_body_bytes",
           .env = "ZENA_HTTP_MAX_BODY_BYTES",
           .flag = "http-max-body-bytes",
           .target = &settings::http_max_body_bytes,
           .unit = "bytes",
           .min = 1024,
           .max = 64 * 1024 * 1024,
           .help = "Largest HTTP request body; larger requests get 413."},
    option{.key = "http.max_header_bytes",
           .env = "ZENA_HTTP_MAX_HEADER_BYTES",
           .flag = "http-max-header-bytes",
           .target = &settings::http_max_header_bytes,
           .unit = "bytes",
           .min = 1024,
           .max = 1024 * 1024,
           .help = "Largest HTTP request head (request line and headers); larger requests get 431."},
    option{.key = "http.request_timeout_ms",
           .env = "ZENA_HTTP_REQUEST_TIMEOUT_MS",
           .flag = "http-request-timeout-ms",
           .target = &settings::http_request_timeout,
           .unit = "ms",
           .min = 100,
           .max = 3600000,
           .help = "Time allowed to receive one HTTP request, and idle time on a keep-alive connection."},
    option{.key = "http.max_users_per_publish",
           .env = "ZENA_MAX_USERS_PER_PUBLISH",
           .flag = "max-users-per-publish",
           .target = &settings::max_users_per_publish,
           .min = 1,
           .max = 1000000,
           .help = "Most userIds one /api/broadcast call (or batch item) may name."},
    option{.key = "http.max_batch_items",
           .env = "ZENA_MAX_BATCH_ITEMS",
           .flag = "max-batch-items",
           .target = &settings::max_batch_items,
           .min = 1,
           .max = 100000,
           .help = "Most publishes one /api/batch call may carry."},
    option{.key = "catalog.path",
           .env = "ZENA_CATALOG",
           .flag = "catalog",
           .target = &settings::catalog_path,
           .help = "Event catalog file (docs/catalog.md). Empty: the catalog shipped in the repository "
                   "(catalog/events.json), compiled into the binary."},
    option{.key = "catalog.permissive",
           .env = "ZENA_CATALOG_PERMISSIVE",
           .flag = "catalog-permissive",
           .target = &settings::catalog_permissive,
           .help =
               "true: publishes of event types the catalog does not know are delivered as they are (known types are "
               "still checked). false: they are refused with 400."},
    option{.key = "webhook.url",
           .env = "ZENA_WEBHOOK_URL",
           .flag = "webhook-url",
           .target = &settings::webhook_url,
           .help = "http(s)://host[:port]/path that receives every valid client event (docs/upstream.md); empty: "
                   "none."},
    option{.key = "webhook.secret",
           .env = "ZENA_WEBHOOK_SECRET",
           .flag = "webhook-secret",
           .target = &settings::webhook_secret,
           .secret = true,
           .help = "Key of the X-Zena-Signature HMAC-SHA256 of each webhook body; empty: unsigned."},
    option{.key = "webhook.timeout_ms",
           .env = "ZENA_WEBHOOK_TIMEOUT_MS",
           .flag = "webhook-timeout-ms",
           .target = &settings::webhook_timeout,
           .unit = "ms",
           .min = 100,
           .max = 600000,
           .help = "Time allowed for one webhook call (connect, send, answer)."},
    option{.key = "webhook.max_attempts",
           .env = "ZENA_WEBHOOK_MAX_ATTEMPTS",
           .flag = "webhook-max-attempts",
           .target = &settings::webhook_max_attempts,
           .min = 1,
           .max = 100,
           .help = "Attempts per event before it is given up (counted in zena_upstream_failed_total)."},
    option{.key = "webhook.backoff_ms",
           .env = "ZENA_WEBHOOK_BACKOFF_MS",
           .flag = "webhook-backoff-ms",
           .target = &settings::webhook_backoff,
           .unit = "ms",
           .min = 1,
           .max = 600000,
           .help = "Wait before the first retry; doubled after each failed attempt."},
    option{.key = "webhook.max_queue",
           .env = "ZENA_WEBHOOK_MAX_QUEUE",
           .flag = "webhook-max-queue",
           .target = &settings::webhook_max_queue,
           .min = 1,
           .max = 10000000,
           .help = "Client events waiting for the webhook; when full the oldest waiting one is dropped and counted."},
    option{.key = "upstream.tls_ca_file",
           .env = "ZENA_UPSTREAM_TLS_CA_FILE",
           .flag = "upstream-tls-ca-file",
           .target = &settings::upstream_tls_ca_file,
           .help = "PEM certificates trusted for https:// calls to the backend (webhook.url, "
                   "channels.subscribe_proxy_url, and auth.jwks_url unless auth.jwks_ca_file is set); empty: the "
                   "system's."},
    option{.key = "upstream.routes",
           .env = "ZENA_UPSTREAM_ROUTES",
           .flag = "upstream-routes",
           .target = &settings::upstream_routes,
           .help =
               "Where each client event type goes: e.g. \"sync.request=webhook+redis,typing.start=none,*=webhook\" "
               "(destinations webhook, redis, none; * for the other types). Empty: every valid client event to every "
               "configured destination (docs/upstream.md)."},
    option{.key = "engine.type",
           .env = "ZENA_ENGINE",
           .flag = "engine",
           .target = &settings::engine_type,
           .help = "memory: one process holds every channel's publications, history and presence. redis: nodes share "
                   "them through Redis (redis.urls, or redis.url), so any node publishes and every node delivers "
                   "(docs/engine.md)."},
    option{.key = "engine.prefix",
           .env = "ZENA_ENGINE_PREFIX",
           .flag = "engine-prefix",
           .target = &settings::engine_prefix,
           .help = "With engine.type = redis: the prefix of every key and Pub/Sub channel; the nodes of one deployment "
                   "share it, two deployments on one Redis differ."},
    option{.key = "engine.node_id",
           .env = "ZENA_NODE_ID",
           .flag = "node-id",
           .target = &settings::engine_node_id,
           .help = "This node's name among the nodes (unique). Empty: the host name, the process id and a random "
                   "suffix."},
    option{.key = "engine.idempotency_window_ms",
           .env = "ZENA_ENGINE_IDEMPOTENCY_WINDOW_MS",
           .flag = "engine-idempotency-window-ms",
           .target = &settings::engine_idempotency_window,
           .unit = "ms",
           .min = 1000,
           .max = 86400000,
           .help = "How long a publish's idempotencyKey is remembered per channel: a publish repeating it within "
                   "this time is answered as a duplicate and delivers nothing (docs/api.md). Long enough for the "
                   "publishers' retries (the Node SDK's end within 41 s); the Redis engine keeps a key of about 210 "
                   "bytes per keyed publish and channel for this long."},
    option{.key = "engine.idempotency_max_keys",
           .env = "ZENA_ENGINE_IDEMPOTENCY_MAX_KEYS",
           .flag = "engine-idempotency-max-keys",
           .target = &settings::engine_idempotency_max_keys,
           .min = 1,
           .max = 100000000,
           .help = "With engine.type = memory: idempotency keys remembered at most (about 300 bytes each); past it "
                   "the oldest are forgotten before their window ends."},
    option{.key = "redis.url",
           .env = "ZENA_REDIS_URL",
           .flag = "redis-url",
           .target = &settings::redis_url,
           .secret = true,
           .help = "redis://[[user]:password@]host[:port][/db], e.g. redis://127.0.0.1:6379. Empty: no Redis (no "
                   "publishing through Redis, no client events stream)."},
    option{.key = "redis.urls",
           .env = "ZENA_REDIS_URLS",
           .flag = "redis-urls",
           .target = &settings::redis_urls,
           .secret = true,
           .help = "Comma-separated redis:// URLs of several Redis instances for engine.type = redis: channels are "
                   "spread over them by a stable hash of their name. Empty: redis.url alone."},
    option{.key = "redis.timeout_ms",
           .env = "ZENA_REDIS_TIMEOUT_MS",
           .flag = "redis-timeout-ms",
           .target = &settings::redis_timeout,
           .unit = "ms",
           .min = 100,
           .max = 600000,
           .help = "Time allowed to connect to Redis and for each command's answer."},
    option{.key = "redis.publish_channel",
           .env = "ZENA_REDIS_PUBLISH_CHANNEL",
           .flag = "redis-publish-channel",
           .target = &settings::redis_publish_channel,
           .help = "Pub/Sub channel whose messages are publishes (API bodies, docs/api.md); empty: none."},
    option{.key = "redis.publish_stream",
           .env = "ZENA_REDIS_PUBLISH_STREAM",
           .flag = "redis-publish-stream",
           .target = &settings::redis_publish_stream,
           .help = "Stream whose entries' body field is a publish, read from the newest entry on; empty: none."},
    option{.key = "redis.client_events_stream",
           .env = "ZENA_REDIS_CLIENT_EVENTS_STREAM",
           .flag = "redis-client-events-stream",
           .target = &settings::redis_client_events_stream,
           .help = "Stream that client events routed to redis are appended to (XADD); empty: none."},
    option{.key = "redis.client_events_max_len",
           .env = "ZENA_REDIS_CLIENT_EVENTS_MAX_LEN",
           .flag = "redis-client-events-max-len",
           .target = &settings::redis_client_events_max_len,
           .unit = "entries",
           .min = 1,
           .max = 1000000000,
           .help = "MAXLEN ~ of each XADD: Redis trims the client events stream to about this many entries."},
    option{.key = "redis.client_events_max_queue",
           .env = "ZENA_REDIS_CLIENT_EVENTS_MAX_QUEUE",
           .flag = "redis-client-events-max-queue",
           .target = &settings::redis_client_events_max_queue,
           .min = 1,
           .max = 10000000,
           .help = "Client events waiting for Redis; when full the oldest waiting one is dropped and counted."},
    option{.key = "channels.max_per_connection",
           .env = "ZENA_CHANNELS_MAX_PER_CONNECTION",
           .flag = "channels-max-per-connection",
           .target = &settings::channels_max_per_connection,
           .min = 0,
           .max = 100000,
           .help = "Channels one connection may hold besides its personal one; past it a subscribe answers "
                   "too_many_channels (docs/channels.md)."},
    option{.key = "channels.subscribes_per_second",
           .env = "ZENA_CHANNELS_SUBSCRIBES_PER_SECOND",
           .flag = "channels-subscribes-per-second",
           .target = &settings::channels_subscribes_per_second,
           .help = "Subscribe messages per connection per second (a token bucket); past it a subscribe answers "
                   "rate_limited."},
    option{.key = "channels.subscribes_burst",
           .env = "ZENA_CHANNELS_SUBSCRIBES_BURST",
           .flag = "channels-subscribes-burst",
           .target = &settings::channels_subscribes_burst,
           .min = 1,
           .max = 100000,
           .help = "Subscribes a connection may send at once (the bucket's size): a reconnect resubscribes its "
                   "channels together."},
    option{.key = "channels.history_size",
           .env = "ZENA_CHANNELS_HISTORY_SIZE",
           .flag = "channels-history-size",
           .target = &settings::channels_history_size,
           .unit = "events",
           .min = 0,
           .max = 1000000,
           .help = "Events kept per channel for recovery (ordered and latest ones; latest compacted per key); 0: "
                   "none, events are live only. [channels.namespaces.<name>] history_size overrides it per "
                   "namespace."},
    option{.key = "channels.history_ttl_ms",
           .env = "ZENA_CHANNELS_HISTORY_TTL_MS",
           .flag = "channels-history-ttl-ms",
           .target = &settings::channels_history_ttl,
           .unit = "ms",
           .min = 1000,
           .max = std::int64_t{366} * 24 * 3600 * 1000,
           .help = "Age past which a channel's events are no longer kept; [channels.namespaces.<name>] "
                   "history_ttl_ms overrides it per namespace."},
    option{.key = "channels.history_max_bytes",
           .env = "ZENA_CHANNELS_HISTORY_MAX_BYTES",
           .flag = "channels-history-max-bytes",
           .target = &settings::channels_history_max_bytes,
           .unit = "bytes",
           .min = std::int64_t{1} << 20U,
           .max = std::int64_t{1} << 40U,
           .help = "Memory for the history of all channels together (memory engine); past it the oldest events of "
                   "any channel go first, counted in zena_history_evicted_total."},
    option{.key = "channels.subscribe_proxy_url",
           .env = "ZENA_CHANNELS_SUBSCRIBE_PROXY_URL",
           .flag = "channels-subscribe-proxy-url",
           .target = &settings::subscribe_proxy_url,
           .help = "http(s)://host[:port]/path asked whether a user may subscribe to a channel no other grant covers "
                   "(a POST of {userId, channel} signed with webhook.secret; 200 allows, 4xx forbids); empty: none."},
    option{.key = "channels.subscribe_proxy_timeout_ms",
           .env = "ZENA_CHANNELS_SUBSCRIBE_PROXY_TIMEOUT_MS",
           .flag = "channels-subscribe-proxy-timeout-ms",
           .target = &settings::subscribe_proxy_timeout,
           .unit = "ms",
           .min = 10,
           .max = 60000,
           .help = "Time the subscribe proxy has to answer; past it the subscribe answers unavailable."},
    option{.key = "channels.presence",
           .env = "ZENA_CHANNELS_PRESENCE",
           .flag = "channels-presence",
           .target = &settings::channels_presence,
           .help = "Channel presence (presence.join, presence.leave, presence.get) for every namespace that does not "
                   "say otherwise in [channels.namespaces.<name>] (docs/presence.md)."},
    option{.key = "channels.typing",
           .env = "ZENA_CHANNELS_TYPING",
           .flag = "channels-typing",
           .target = &settings::channels_typing,
           .help = "Typing indicators relayed on every namespace's channels that does not say otherwise."},
    option{.key = "channels.receipts",
           .env = "ZENA_CHANNELS_RECEIPTS",
           .flag = "channels-receipts",
           .target = &settings::channels_receipts,
           .help = "Read receipts (thread.read) to a thread channel's subscribers, for every namespace that does not "
                   "say otherwise."},
    option{.key = "presence.offline_grace_ms",
           .env = "ZENA_PRESENCE_OFFLINE_GRACE_MS",
           .flag = "presence-offline-grace-ms",
           .target = &settings::presence_offline_grace,
           .unit = "ms",
           .min = 0,
           .max = 3600000,
           .help = "A user with no connection is offline (presence.offline upstream) only after this long: a page "
                   "reload does not flap (docs/presence.md)."},
    option{.key = "presence.max_list",
           .env = "ZENA_PRESENCE_MAX_LIST",
           .flag = "presence-max-list",
           .target = &settings::presence_max_list,
           .unit = "users",
           .min = 0,
           .max = 100000,
           .help = "presence.state lists a channel's users up to this many; past it, only their count."},
    option{.key = "typing.timeout_ms",
           .env = "ZENA_TYPING_TIMEOUT_MS",
           .flag = "typing-timeout-ms",
           .target = &settings::typing_timeout,
           .unit = "ms",
           .min = 100,
           .max = 600000,
           .help = "Silence after a typing.start before the server relays active:false by itself."},
    option{.key = "shutdown.drain_ms",
           .env = "ZENA_SHUTDOWN_DRAIN_MS",
           .flag = "shutdown-drain-ms",
           .target = &settings::shutdown_drain,
           .unit = "ms",
           .min = 0,
           .max = 600000,
           .help = "On SIGTERM/SIGINT, time allowed for close handshakes (1001) before the process exits."},
    option{.key = "admin.enabled",
           .env = "ZENA_ADMIN_ENABLED",
           .flag = "admin-enabled",
           .target = &settings::admin_enabled,
           .help = "Outside dev mode, serve the page at / (live stats, try-it console) behind a login with "
                   "admin.password; off: / and /admin/* answer 404. Dev mode serves it without a login "
                   "(docs/admin.md)."},
    option{.key = "admin.password",
           .env = "ZENA_ADMIN_PASSWORD",
           .flag = "admin-password",
           .target = &settings::admin_password,
           .secret = true,
           .help = "The page's login password, at least 12 bytes; required with admin.enabled outside dev mode."},
    option{.key = "admin.session_ttl_s",
           .env = "ZENA_ADMIN_SESSION_TTL_S",
           .flag = "admin-session-ttl-s",
           .target = &settings::admin_session_ttl,
           .unit = "s",
           .min = 60,
           .max = 604800,
           .help = "How long a login to the page lasts (its session cookie's lifetime)."},
    option{.key = "admin.max_sessions",
           .env = "ZENA_ADMIN_MAX_SESSIONS",
           .flag = "admin-max-sessions",
           .target = &settings::admin_max_sessions,
           .min = 1,
           .max = 10000,
           .help = "Logins to the page held at once; a new one past this ends the oldest. Bounds the memory "
                   "logins can take."},
    option{.key = "admin.login_attempts_per_minute",
           .env = "ZENA_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE",
           .flag = "admin-login-attempts-per-minute",
           .target = &settings::admin_login_attempts_per_minute,
           .unit = "attempts/min",
           .help = "Login attempts the page takes a minute, server-wide (bursts of as many); past it every login "
                   "answers 429 without checking the password until the budget refills, so a password cannot "
                   "be guessed quickly."},
    option{.key = "log.level",
           .env = "ZENA_LOG_LEVEL",
           .flag = "log-level",
           .target = &settings::log_level,
           .help = "trace, debug, info, warn, error or off."},
    option{.key = "log.format",
           .env = "ZENA_LOG_FORMAT",
           .flag = "log-format",
           .target = &settings::log_format,
           .help = "text: `<time> <level> <message> key=value ...` lines; json: one JSON object a line with time "
                   "(UTC), level, msg and the same key=value fields as strings, for log shippers."},
    option{.key = "log.invalid_message_per_second",
           .env = "ZENA_LOG_INVALID_MESSAGE_PER_SECOND",
           .flag = "log-invalid-message-per-second",
           .target = &settings::invalid_message_log_per_second,
           .unit = "lines/s",
           .help = "Per thread, how many invalid client messages are logged a second; the rest are counted."},
};

std::string default_text(const option& opt) {
    const settings defaults{};
    return std::visit(
        [&](auto member) -> std::string {
            const auto& value = defaults.*member;
            using type = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<type, std::string>) {
                return value;
            } else if constexpr (is_parsed<type>::value) {
                return value.text;
            } else if constexpr (is_duration<type>::value) {
                return std::to_string(value.count());
            } else if constexpr (std::is_same_v<type, bool>) {
                return value ? "true" : "false";
            } else {
                std::ostringstream out;
                out << value;
                return out.str();
            }
        },
        opt.target);
}

// Reads a whole number in [min, max] for `opt`.
util::result<std::int64_t> whole_number(const option& opt, std::string_view text) {
    std::int64_t n = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, n);
    if (ec != std::errc{} || ptr != end || text.empty()) {
        return util::error{"expected a whole number, got '" + std::string{text} + "'"};
    }
    if (n < opt.min || n > opt.max) {
        return util::error{std::to_string(n) + " is out of range [" + std::to_string(opt.min) + ", " +
                           std::to_string(opt.max) + "]"};
    }
    return n;
}

// Sets one option from text; an error names `source` and the option.
util::status assign(settings& s, const option& opt, std::string_view text, std::string_view source) {
    const auto failed = [&](const std::string& why) {
        return util::error{std::string{source} + " (" + std::string{opt.key} + "): " + why};
    };
    return std::visit(
        [&](auto member) -> util::status {
            auto& value = s.*member;
            using type = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<type, std::string>) {
                value = std::string{text};
                return {};
            } else if constexpr (is_parsed<type>::value) {
                if (auto status = parse_value(text, value.value); !status) return failed(status.message());
                value.text = std::string{text};
                return {};
            } else if constexpr (std::is_same_v<type, bool>) {
                if (text == "true" || text == "1") {
                    value = true;
                } else if (text == "false" || text == "0") {
                    value = false;
                } else {
                    return failed("expected true or false, got '" + std::string{text} + "'");
                }
                return {};
            } else if constexpr (std::is_same_v<type, std::int64_t> || is_duration<type>::value) {
                auto n = whole_number(opt, text);
                if (!n) return failed(n.message());
                value = type{*n};
                return {};
            } else {
                char* end = nullptr;
                const std::string copy{text};
                const double d = std::strtod(copy.c_str(), &end);
                if (copy.empty() || end != copy.c_str() + copy.size() || !(d >= 0)) {
                    return failed("expected a non-negative number, got '" + copy + "'");
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

// [channels.namespaces.<name>]: history_size and history_ttl_ms, each optional (the [channels]
// value otherwise, whichever source set it).
util::status load_namespaces(settings& s, const toml::node& node, const std::string& path) {
    const auto fail = [&](const std::string& what) {
        return util::error{"config file " + path + ": channels.namespaces" + what};
    };
    const auto* table = node.as_table();
    if (!table) return fail(" must be a table of [channels.namespaces.<name>] tables");
    for (const auto& [ns_name, ns_node] : *table) {
        const std::string ns{ns_name.str()};
        if (ns.empty() || ns.find(':') != std::string::npos || !protocol::valid_channel_name(ns)) {
            return fail("." + ns + ": a namespace is 1-255 of letters, digits and _ - . @ = (no ':')");
        }
        const auto* fields = ns_node.as_table();
        if (!fields) return fail("." + ns + " must be a table");
        namespace_overrides o;
        for (const auto& [field_name, value] : *fields) {
            const auto* integer = value.as_integer();
            const std::string where = "." + ns + "." + std::string{field_name.str()};
            if (field_name.str() == "history_size") {
                if (!integer || integer->get() < 0 || integer->get() > 1000000) {
                    return fail(where + " must be an integer from 0 to 1000000");
                }
                o.history_size = integer->get();
            } else if (field_name.str() == "history_ttl_ms") {
                if (!integer || integer->get() < 1000) return fail(where + " must be an integer of at least 1000");
                o.history_ttl = std::chrono::milliseconds(integer->get());
            } else if (field_name.str() == "presence" || field_name.str() == "typing" ||
                       field_name.str() == "receipts") {
                const auto* boolean = value.as_boolean();
                if (!boolean) return fail(where + " must be true or false");
                auto& target = field_name.str() == "presence" ? o.presence
                               : field_name.str() == "typing" ? o.typing
                                                              : o.receipts;
                target = boolean->get();
            } else {
                return fail(where + ": unknown option (history_size, history_ttl_ms, presence, typing, receipts)");
            }
        }
        s.channel_namespace_overrides[ns] = o;
    }
    return {};
}

// Reads the file into `s`; every problem goes to `errors` and the rest of the file is still read
// (a file that does not parse stops there).
void load_toml(settings& s, const std::string& path, std::vector<std::string>& errors) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        std::ostringstream out;
        out << "config file " << path << ": " << e.description() << " at line " << e.source().begin.line;
        errors.push_back(out.str());
        return;
    }
    for (const auto& [section_name, section_node] : root) {
        const auto* section = section_node.as_table();
        if (!section) {
            errors.push_back("config file " + path + ": '" + std::string{section_name.str()} + "' must be a [section]");
            continue;
        }
        for (const auto& [name, node] : *section) {
            if (section_name.str() == "channels" && name.str() == "namespaces") {
                if (auto status = load_namespaces(s, node, path); !status) errors.push_back(status.message());
                continue;
            }
            const std::string key = std::string{section_name.str()} + "." + std::string{name.str()};
            const option* opt = find_by_key(key);
            if (!opt) {
                errors.push_back("config file " + path + ": unknown option '" + key + "'");
                continue;
            }
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
                errors.push_back("config file " + path + ": '" + key + "' must be a string, a number or a boolean");
                continue;
            }
            if (auto status = assign(s, *opt, text, "config file " + path); !status) {
                errors.push_back(status.message());
            }
        }
    }
}

std::size_t min_secret_bytes(auth::jwt_algorithm algorithm) {
    switch (algorithm) {
        case auth::jwt_algorithm::hs256: return 32;
        case auth::jwt_algorithm::hs384: return 48;
        case auth::jwt_algorithm::hs512: return 64;
    }
    return 64;
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
    auto& errors = result.errors;
    // Every problem is collected (check-config shows them all); `status` is the first.
    const auto done = [&]() -> load_result& {
        if (!errors.empty()) result.status = util::error{errors.front()};
        return result;
    };

    // The config file is named first, by flag or environment, so the rest can override it.
    std::optional<std::string> config_path = env("ZENA_CONFIG");
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--help" || args[i] == "-h") {
            result.help = true;
            return result;
        }
        if (args[i] == "--config") {
            if (i + 1 >= args.size()) {
                errors.emplace_back("--config needs a file path");
                return done();
            }
            config_path = args[i + 1];
        } else if (args[i].starts_with("--config=")) {
            config_path = args[i].substr(9);
        }
    }
    if (config_path && !config_path->empty()) load_toml(s, *config_path, errors);

    for (const auto& opt : k_options) {
        if (const auto value = env(opt.env)) {
            if (auto status = assign(s, opt, *value, "environment variable " + std::string{opt.env}); !status) {
                errors.push_back(status.message());
            }
        }
    }

    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (!arg.starts_with("--")) {
            errors.push_back("unexpected argument '" + std::string{arg} + "' (see --help)");
            continue;
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
            errors.push_back("unknown option --" + std::string{name} + " (see --help)");
            // Its value, if it has one, is not an argument of its own.
            if (!value && i + 1 < args.size() && !args[i + 1].starts_with("--")) ++i;
            continue;
        }
        if (!value) {
            if (i + 1 >= args.size()) {
                errors.push_back("--" + std::string{name} + " needs a value");
                continue;
            }
            value = args[++i];
        }
        if (auto status = assign(s, *opt, *value, "--" + std::string{name}); !status) {
            errors.push_back(status.message());
        }
    }

    if (s.mode != "auto" && s.mode != "dev" && s.mode != "production") {
        errors.push_back("server.mode must be auto, dev or production, got '" + s.mode + "'");
    }
    result.dev_mode = s.mode == "dev" || (s.mode == "auto" && s.jwt_secret.empty() && s.jwks_file.empty() &&
                                          !s.jwks_url.value && s.api_key.empty());
    for (auto& problem : validate_all(s, result.dev_mode)) errors.push_back(std::move(problem));
    return done();
}

util::result<std::vector<redis::endpoint>> redis_shards(const settings& s) {
    std::vector<redis::endpoint> out;
    std::string_view list = s.redis_urls;
    while (!list.empty()) {
        const auto comma = list.find(',');
        auto item = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item.empty()) continue;
        auto endpoint = redis::parse_url(item);
        if (!endpoint) return util::error{"redis.urls holds '" + std::string{item} + "', not a redis:// URL"};
        out.push_back(std::move(*endpoint));
    }
    if (out.empty() && s.redis_url.value) out.push_back(*s.redis_url.value);
    if (out.empty()) return util::error{"engine.type = redis needs redis.urls or redis.url"};
    return out;
}

util::status validate(const settings& s, bool dev_mode) {
    auto problems = validate_all(s, dev_mode);
    if (problems.empty()) return {};
    return util::error{std::move(problems.front())};
}

std::vector<std::string> validate_all(const settings& s, bool dev_mode) {
    // Each value was checked alone as it was read; these are the checks across values. Every
    // one runs: check-config reports them all.
    std::vector<std::string> problems;
    const auto fail = [&](std::string message) { problems.push_back(std::move(message)); };
    if (s.jwt_user_claim.empty()) fail("auth.jwt_user_claim must not be empty");
    if (!dev_mode) {
        if (s.jwt_secret.empty() && s.jwks_file.empty() && !s.jwks_url.value) {
            fail(
                "auth.jwt_secret (ZENA_JWT_SECRET), auth.jwks_file or auth.jwks_url is required outside dev "
                "mode; set one, or run with --mode dev on a development machine");
        }
        if (s.api_key.empty()) {
            fail(
                "auth.api_key (ZENA_API_KEY) is required outside dev mode; set it, or run with --mode dev "
                "on a development machine");
        }
    }
    const auto algorithm = s.jwt_algorithm.value;
    if (!s.jwt_secret.empty() && s.jwt_secret.size() < min_secret_bytes(algorithm)) {
        fail("auth.jwt_secret is " + std::to_string(s.jwt_secret.size()) + " bytes; " +
             std::string{auth::to_string(algorithm)} + " needs at least " +
             std::to_string(min_secret_bytes(algorithm)) + " (RFC 7518 section 3.2)");
    }
    if (!s.api_key.empty() && s.api_key.size() < 16) fail("auth.api_key must be at least 16 bytes");
    if (s.host.empty()) fail("server.host must not be empty");
    if (s.tls_cert_file.empty() != s.tls_key_file.empty()) {
        fail("server.tls_cert_file and server.tls_key_file go together: set both or neither");
    }
    if (!(s.client_messages_per_second > 0) || !(s.handshakes_per_address_per_second > 0)) {
        fail("websocket.client_messages_per_second and limits.handshakes_per_address_per_second must be above 0");
    }
    static constexpr std::array k_levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find(k_levels.begin(), k_levels.end(), s.log_level) == k_levels.end()) {
        fail("log.level must be one of trace, debug, info, warn, error, critical, off; got '" + s.log_level + "'");
    }
    if (s.engine_type != "memory" && s.engine_type != "redis") {
        fail("engine.type must be memory or redis; got '" + s.engine_type + "'");
    }
    if (s.engine_type == "redis") {
        auto shards = redis_shards(s);
        if (!shards) fail(shards.message());
    }
    if (s.engine_prefix.empty() || s.engine_prefix.find_first_of("{} \t\n") != std::string::npos) {
        fail("engine.prefix must be non-empty, without spaces or braces");
    }
    if (s.engine_node_id.size() > 128 || s.engine_node_id.find_first_of(" \t\n\r") != std::string::npos) {
        fail("engine.node_id must be at most 128 bytes, without spaces");
    }
    if (!dev_mode && s.admin_enabled && s.admin_password.size() < 12) {
        fail("admin.enabled needs admin.password (ZENA_ADMIN_PASSWORD) of at least 12 bytes outside dev mode");
    }
    if (!(s.admin_login_attempts_per_minute > 0)) fail("admin.login_attempts_per_minute must be above 0");
    if (s.send_queue_max_bytes < s.max_message_bytes) {
        fail("websocket.send_queue_max_bytes must be at least websocket.max_message_bytes");
    }
    if (s.log_format != "text" && s.log_format != "json") {
        fail("log.format must be text or json, got '" + s.log_format + "'");
    }
    return problems;
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
           "  zena-realtime config-docs               print docs/configuration.md\n"
           "  zena-realtime check-config [options]    load the configuration (--config FILE, the\n"
           "                                          environment, flags) and the catalog; print every\n"
           "                                          problem and exit 2, or a summary and exit 0\n"
           "  zena-realtime --version                 print the version\n\n"
           "Options (flag, then environment variable; flags override the environment, which overrides\n"
           "the config file, which overrides the defaults):\n"
           "  --config PATH  (ZENA_CONFIG)\n      TOML file with [server], [auth], [websocket], [http], "
           "[catalog], [limits], [webhook], [upstream], [redis], [shutdown], [admin], [log] sections.\n";
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
