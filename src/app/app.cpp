#include "app/app.hpp"

#include <cstdio>

#include "api/redis_ingest.hpp"
#include "auth/jwt.hpp"
#include "net/jwks_fetcher.hpp"
#include "net/server.hpp"
#include "observability/metrics.hpp"
#include "redis/connection.hpp"
#include "upstream/redis_stream.hpp"
#include "upstream/routes.hpp"
#include "upstream/webhook.hpp"

namespace zena::app {
namespace {

auth::jwt_settings jwt_settings_of(const config::settings& s) {
    auth::jwt_settings j;
    j.algorithm = *auth::parse_jwt_algorithm(s.jwt_algorithm);  // validated at load
    j.secret = s.jwt_secret;
    j.leeway = std::chrono::seconds(s.jwt_leeway_s);
    j.issuer = s.jwt_issuer;
    j.audience = s.jwt_audience;
    j.user_claim = s.jwt_user_claim;
    return j;
}

void print_dev_banner(const config::settings& s, std::uint16_t port) {
    const auto token = auth::mint_jwt(jwt_settings_of(s), "alice", std::chrono::hours(24), auth::unix_now());
    std::printf(
        "\n"
        "  zena-realtime is running in DEV MODE: credentials were generated and kept in %s.\n"
        "  Never use dev mode in production (set ZENA_JWT_SECRET and ZENA_API_KEY).\n\n"
        "  API key:        %s\n"
        "  Token (alice):  %s\n"
        "  More tokens:    zena-realtime token --user <id>\n\n"
        "  Connect:   wscat -c \"ws://localhost:%u/ws?token=%s\"\n"
        "  Publish:   curl -H \"Authorization: Bearer %s\" -H 'Content-Type: application/json' \\\n"
        "               -d '{\"userId\":\"alice\",\"type\":\"thread.new\",\"payload\":{\"threadId\":\"t1\","
        "\"accountId\":\"a1\"}}' \\\n"
        "               http://localhost:%u/api/broadcast\n"
        "  Stats:     curl -H \"Authorization: Bearer %s\" http://localhost:%u/api/stats\n\n",
        s.dev_state_file.c_str(), s.api_key.c_str(), token.c_str(), port, token.c_str(), s.api_key.c_str(), port,
        s.api_key.c_str(), port);
    (void)std::fflush(stdout);
}

// The routes of client events (upstream.routes, or all to every configured destination),
// checked against the catalog and the destinations configured; nullopt with `error` set.
std::optional<upstream::routes> upstream_routes(const config::settings& s, const protocol::catalog& catalog,
                                                std::string& error) {
    const bool webhook = !s.webhook_url.empty();
    const bool redis = !s.redis_url.empty() && !s.redis_client_events_stream.empty();
    if (s.upstream_routes.empty()) {
        return upstream::routes::to_all((webhook ? upstream::k_to_webhook : 0U) | (redis ? upstream::k_to_redis : 0U));
    }
    auto routes = upstream::routes::parse(s.upstream_routes, error);  // syntax checked at load
    if (!routes) return std::nullopt;
    for (const auto& type : routes->named_types()) {
        const auto* spec = catalog.client_event(type);
        if (!spec || spec->protocol) {
            error = "upstream.routes names " + type + ", which is not a client event in the catalog";
            return std::nullopt;
        }
    }
    if ((routes->used() & upstream::k_to_webhook) && !webhook) {
        error = "upstream.routes sends events to webhook, but webhook.url is not set";
        return std::nullopt;
    }
    if ((routes->used() & upstream::k_to_redis) && !redis) {
        error = "upstream.routes sends events to redis, but redis.url or redis.client_events_stream is not set";
        return std::nullopt;
    }
    return routes;
}

}  // namespace

std::optional<protocol::catalog> load_catalog(const config::settings& settings, std::string& error) {
    if (settings.catalog_path.empty()) return protocol::catalog::parse(protocol::builtin_catalog_json(), error);
    return protocol::catalog::load_file(settings.catalog_path, error);
}

int run(const config::settings& settings, const protocol::catalog& catalog, bool dev_mode) {
    std::shared_ptr<const auth::key_set> keys;
    if (!settings.jwks_file.empty()) {
        std::string jwks_error;
        auto loaded = auth::key_set::load_file(settings.jwks_file, jwks_error);
        if (!loaded) {
            spdlog::error("auth.jwks_file: {}", jwks_error);
            return 1;
        }
        spdlog::info("jwks loaded file={} keys={}", settings.jwks_file, loaded->size());
        keys = std::make_shared<const auth::key_set>(std::move(*loaded));
    }
    const auth::jwt_verifier verifier{jwt_settings_of(settings), {}, std::move(keys)};
    std::unique_ptr<net::jwks_fetcher> jwks;
    if (!settings.jwks_url.empty()) {
        jwks = std::make_unique<net::jwks_fetcher>(
            net::jwks_fetch_settings{settings.jwks_url, settings.jwks_refresh_s, settings.jwks_ca_file, 10000},
            verifier);
        if (auto error = jwks->start(); !error.empty()) {
            spdlog::error("auth.jwks_url {}: {}", settings.jwks_url, error);
            return 1;
        }
    }
    observability::metrics metrics;
    // Client events go upstream from here, each type to the destinations its route names.
    std::string error;
    const auto routes = upstream_routes(settings, catalog, error);
    if (!routes) {
        spdlog::error("{}", error);
        return 1;
    }
    std::unique_ptr<upstream::webhook> hook;
    if (routes->used() & upstream::k_to_webhook) {
        hook = std::make_unique<upstream::webhook>(
            upstream::webhook_settings{settings.webhook_url, settings.webhook_secret, settings.webhook_timeout_ms,
                                       settings.webhook_max_attempts, settings.webhook_backoff_ms,
                                       static_cast<std::size_t>(settings.webhook_max_queue)},
            metrics);
        spdlog::info("webhook enabled url={} signed={}", settings.webhook_url, !settings.webhook_secret.empty());
    }
    const auto redis_endpoint = settings.redis_url.empty() ? std::nullopt : redis::parse_url(settings.redis_url);
    std::unique_ptr<upstream::redis_stream> stream;
    if (routes->used() & upstream::k_to_redis) {
        stream = std::make_unique<upstream::redis_stream>(
            upstream::redis_stream_settings{
                *redis_endpoint, settings.redis_client_events_stream, settings.redis_client_events_max_len,
                static_cast<std::size_t>(settings.redis_client_events_max_queue), settings.redis_timeout_ms},
            metrics);
    }
    auto on_client_event = [&routes, hook = hook.get(), stream = stream.get(), &metrics](
                               const net::client_event_source& source, const protocol::client_message& message) {
        spdlog::debug("client event conn={} user={} type={} payload={}", source.connection, source.user_id,
                      message.type, message.payload_json);
        const auto to = routes->of(message.type);
        if (to == 0) return observability::metrics::add(metrics.client_events_unrouted);
        auto body = upstream::client_event_body(source.user_id, source.connection, message.type, message.payload_json,
                                                auth::unix_now_ms());
        if (to & upstream::k_to_webhook) hook->submit(body);
        if (to & upstream::k_to_redis) stream->submit(message.type, source.user_id, std::move(body));
    };
    if (settings.test_echo) {
        spdlog::warn(
            "TEST ECHO ENDPOINT ENABLED: /echo accepts WebSockets without a token and echoes every message. "
            "For conformance testing only; never in production (unset ZENA_TEST_ECHO).");
    }
    spdlog::info("catalog loaded source={} server_events={} client_events={} permissive={}",
                 settings.catalog_path.empty() ? "builtin" : settings.catalog_path, catalog.server_events().size(),
                 catalog.client_events().size(), settings.catalog_permissive);
    net::server server{settings, verifier, catalog, metrics, on_client_event};
    if (auto listen_error = server.listen(); !listen_error.empty()) {
        spdlog::error("{}", listen_error);
        return 1;
    }
    // Publishes through Redis; stopped (declared after the server) before the server goes.
    std::unique_ptr<api::redis_ingest> ingest;
    if (redis_endpoint && (!settings.redis_publish_channel.empty() || !settings.redis_publish_stream.empty())) {
        ingest = std::make_unique<api::redis_ingest>(
            api::redis_ingest_settings{*redis_endpoint, settings.redis_publish_channel, settings.redis_publish_stream,
                                       static_cast<std::size_t>(settings.http_max_body_bytes),
                                       settings.redis_timeout_ms},
            server.api(), metrics);
        spdlog::info("redis publishing enabled channel={} stream={}", settings.redis_publish_channel,
                     settings.redis_publish_stream);
    }
    if (dev_mode) print_dev_banner(settings, server.port());
    server.run();
    return 0;
}

}  // namespace zena::app
