#include "app/app.hpp"

#include <cstdio>

#include "auth/jwt.hpp"
#include "net/server.hpp"
#include "observability/metrics.hpp"
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

}  // namespace

std::optional<protocol::catalog> load_catalog(const config::settings& settings, std::string& error) {
    if (settings.catalog_path.empty()) return protocol::catalog::parse(protocol::builtin_catalog_json(), error);
    return protocol::catalog::load_file(settings.catalog_path, error);
}

int run(const config::settings& settings, const protocol::catalog& catalog, bool dev_mode) {
    const auth::jwt_verifier verifier{jwt_settings_of(settings)};
    observability::metrics metrics;
    // Client events go upstream from here: to the webhook when one is configured (every valid
    // event; per-type routing and the Redis stream are still to come).
    std::unique_ptr<upstream::webhook> hook;
    if (!settings.webhook_url.empty()) {
        hook = std::make_unique<upstream::webhook>(
            upstream::webhook_settings{settings.webhook_url, settings.webhook_secret, settings.webhook_timeout_ms,
                                       settings.webhook_max_attempts, settings.webhook_backoff_ms,
                                       static_cast<std::size_t>(settings.webhook_max_queue)},
            metrics);
        spdlog::info("webhook enabled url={} signed={}", settings.webhook_url, !settings.webhook_secret.empty());
    }
    auto on_client_event = [hook = hook.get()](const net::client_event_source& source,
                                               const protocol::client_message& message) {
        spdlog::debug("client event conn={} user={} type={} payload={}", source.connection, source.user_id,
                      message.type, message.payload_json);
        if (hook) {
            hook->submit(upstream::client_event_body(source.user_id, source.connection, message.type,
                                                     message.payload_json, auth::unix_now_ms()));
        }
    };
    spdlog::info("catalog loaded source={} server_events={} client_events={} permissive={}",
                 settings.catalog_path.empty() ? "builtin" : settings.catalog_path, catalog.server_events().size(),
                 catalog.client_events().size(), settings.catalog_permissive);
    net::server server{settings, verifier, catalog, metrics, on_client_event};
    if (auto error = server.listen(); !error.empty()) {
        spdlog::error("{}", error);
        return 1;
    }
    if (dev_mode) print_dev_banner(settings, server.port());
    server.run();
    return 0;
}

}  // namespace zena::app
