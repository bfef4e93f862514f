#pragma once
// Every setting of the server, with its default. The option table in config.cpp names each one
// for the TOML file, the environment and the command line, and documents it; this struct is
// what the rest of the program reads. Settings are immutable once the server starts.

#include <cstdint>
#include <string>

namespace zena::config {

struct settings {
    // [server]
    std::string host = "0.0.0.0";
    std::int64_t port = 3000;
    std::int64_t threads = 0;   // 0: one per core
    std::string mode = "auto";  // auto | dev | production

    std::string tls_cert_file;  // PEM chain; with tls_key_file, the listener speaks TLS only
    std::string tls_key_file;

    // [auth]
    std::string jwt_secret;
    std::string jwks_file;  // public keys for RS256/ES256/EdDSA tokens; empty: none
    std::string jwks_url;   // or fetched from here, and refreshed
    std::int64_t jwks_refresh_s = 300;
    std::string jwks_ca_file;
    std::string jwt_algorithm = "HS256";
    std::int64_t jwt_leeway_s = 30;
    std::string jwt_issuer;
    std::string jwt_audience;
    std::string jwt_user_claim = "sub";
    std::string api_key;
    std::string dev_state_file = ".zena-dev.toml";

    // [websocket]
    std::int64_t heartbeat_interval_ms = 30000;
    std::int64_t handshake_timeout_ms = 10000;
    std::int64_t max_message_bytes = 64 * 1024;
    std::int64_t send_queue_max_bytes = 1024 * 1024;
    std::string allowed_origins;  // empty: any origin
    double client_messages_per_second = 20;
    std::int64_t client_messages_burst = 50;
    std::int64_t auth_timeout_ms = 5000;  // for a token sent in-band, as the first message
    bool permessage_deflate = false;      // RFC 7692, when the client offers it
    bool test_echo = false;               // /echo for conformance tools: never in production

    // [limits]: what one outsider can make the server spend
    std::int64_t max_connections = 100000;
    std::int64_t max_connections_per_user = 50;
    std::int64_t max_connections_per_address = 1000;
    double handshakes_per_address_per_second = 20;
    std::int64_t max_tracked_addresses = 100000;

    // [http]
    std::int64_t http_max_body_bytes = 1024 * 1024;
    std::int64_t http_max_header_bytes = 8 * 1024;
    std::int64_t http_request_timeout_ms = 30000;
    std::int64_t max_users_per_publish = 10000;
    std::int64_t max_batch_items = 1000;

    // [catalog]
    std::string catalog_path;  // empty: the catalog compiled into the binary
    bool catalog_permissive = false;

    // [webhook]: client events to the backend
    std::string webhook_url;  // empty: no webhook
    std::string webhook_secret;
    std::int64_t webhook_timeout_ms = 5000;
    std::int64_t webhook_max_attempts = 5;
    std::int64_t webhook_backoff_ms = 200;
    std::int64_t webhook_max_queue = 10000;

    // [upstream]: which client events go where (upstream/routes.hpp); empty: all to all
    std::string upstream_routes;

    // [redis]
    std::string redis_url;  // empty: no Redis
    std::int64_t redis_timeout_ms = 2000;
    std::string redis_publish_channel = "zena:publish";
    std::string redis_publish_stream = "zena:publish";
    std::string redis_client_events_stream = "zena:client-events";
    std::int64_t redis_client_events_max_len = 100000;
    std::int64_t redis_client_events_max_queue = 10000;

    // [shutdown]
    std::int64_t shutdown_drain_ms = 5000;

    // [log]
    std::string log_level = "info";
    double invalid_message_log_per_second = 5;
};

}  // namespace zena::config
