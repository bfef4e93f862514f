#include "app/app.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <random>

#include <boost/asio/steady_timer.hpp>

#include "admin/console.hpp"
#include "api/redis_ingest.hpp"
#include "api/server_api.hpp"
#include "auth/jwt.hpp"
#include "config/config.hpp"
#include "engine/memory/memory_broker.hpp"
#include "engine/memory/memory_history.hpp"
#include "engine/memory/memory_presence.hpp"
#include "engine/redis/redis_engine.hpp"
#include "hub/hub_set.hpp"
#include "net/jwks_fetcher.hpp"
#include "net/server.hpp"
#include "observability/metrics.hpp"
#include "observability/service_notify.hpp"
#include "protocol/channel.hpp"
#include "redis/connection.hpp"
#include "session/context.hpp"
#include "session/user_presence.hpp"
#include "upstream/http_client.hpp"
#include "upstream/redis_stream.hpp"
#include "upstream/routes.hpp"
#include "upstream/subscribe_proxy.hpp"
#include "upstream/webhook.hpp"
#include "util/allocator.hpp"
#include "util/cpus.hpp"

namespace zena::app {
namespace {

// A node's id when none is configured: unique among the nodes of a deployment, readable in logs.
std::string generated_node_id() {
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
    std::random_device random;
    return std::string{host.data()} + "-" + std::to_string(::getpid()) + "-" + std::to_string(random() % 100000);
}

// The upstream notice of an event published to a user with no connection (docs/channels.md).
constexpr std::string_view k_offline_event = "user.offline_event";

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
// checked against the catalog and the destinations configured.
util::result<upstream::routes> upstream_routes(const config::settings& s, const protocol::catalog& catalog) {
    const bool webhook = s.webhook_url.value.has_value();
    const bool redis = s.redis_url.value && !s.redis_client_events_stream.empty();
    if (!s.upstream_routes.value) {
        return upstream::routes::to_all((webhook ? upstream::k_to_webhook : 0U) | (redis ? upstream::k_to_redis : 0U));
    }
    const auto& routes = *s.upstream_routes.value;
    for (const auto& type : routes.named_types()) {
        const auto* spec = catalog.client_event(type);
        // The server's own notices to the backend are routed like client events.
        if (type == k_offline_event || type == "presence.online" || type == "presence.offline") continue;
        if (!spec || spec->protocol) {
            return util::error{"upstream.routes names " + type + ", which is not a client event in the catalog"};
        }
    }
    if ((routes.used() & upstream::k_to_webhook) && !webhook) {
        return util::error{"upstream.routes sends events to webhook, but webhook.url is not set"};
    }
    if ((routes.used() & upstream::k_to_redis) && !redis) {
        return util::error{
            "upstream.routes sends events to redis, but redis.url or redis.client_events_stream is not set"};
    }
    return routes;
}

// One event loop per CPU the process may use (its affinity mask and cgroup quota), unless
// server.threads says otherwise. Loops sharing a CPU take turns on it (issue 17 measured two loops
// on one CPU delivering less than one), so an explicit count above the CPUs is warned about.
std::size_t thread_count(const config::settings& settings) {
    const auto cpus = util::usable_cpus(settings.cgroup_root);
    if (settings.threads <= 0) {
        spdlog::info("event loops threads={} reason=\"{}\"", cpus.cpus, cpus.reason);
        return cpus.cpus;
    }
    const auto threads = static_cast<std::size_t>(settings.threads);
    spdlog::info("event loops threads={} reason=\"server.threads\"", threads);
    if (threads > cpus.cpus) {
        spdlog::warn(
            "event loops threads={} exceed the CPUs this process may use cpus={} reason=\"{}\": "
            "loops will share CPUs; set server.threads=0 to match",
            threads, cpus.cpus, cpus.reason);
    }
    return threads;
}

}  // namespace

auth::jwt_settings jwt_settings_of(const config::settings& s) {
    auth::jwt_settings j;
    j.algorithm = s.jwt_algorithm.value;
    j.secret = s.jwt_secret;
    j.leeway = s.jwt_leeway;
    j.issuer = s.jwt_issuer;
    j.audience = s.jwt_audience;
    j.user_claim = s.jwt_user_claim;
    return j;
}

util::result<protocol::catalog> load_catalog(const config::settings& settings) {
    std::string error;
    auto catalog = settings.catalog_path.empty() ? protocol::catalog::parse(protocol::builtin_catalog_json(), error)
                                                 : protocol::catalog::load_file(settings.catalog_path, error);
    if (!catalog) return util::error{error};
    return std::move(*catalog);
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
    // The trust stores of the upstream HTTP client (upstream/http_client.hpp), checked before any call.
    for (const auto& [option, file] : {std::pair{"upstream.tls_ca_file", &settings.upstream_tls_ca_file},
                                       std::pair{"auth.jwks_ca_file", &settings.jwks_ca_file}}) {
        if (file->empty()) continue;
        if (auto trusted = upstream::check_ca_file(*file); !trusted) {
            spdlog::error("{}: {}", option, trusted.message());
            return 1;
        }
    }
    std::unique_ptr<net::jwks_fetcher> jwks;
    if (settings.jwks_url.value) {
        const auto& jwks_ca = settings.jwks_ca_file.empty() ? settings.upstream_tls_ca_file : settings.jwks_ca_file;
        jwks = std::make_unique<net::jwks_fetcher>(net::jwks_fetch_settings{.url = *settings.jwks_url.value,
                                                                            .refresh = settings.jwks_refresh,
                                                                            .ca_file = jwks_ca,
                                                                            .timeout = std::chrono::seconds(10)},
                                                   verifier);
        if (auto fetched = jwks->start(); !fetched) {
            spdlog::error("auth.jwks_url {}: {}", settings.jwks_url.text, fetched.message());
            return 1;
        }
    }
    observability::metrics metrics;
    metrics.connections_limit.store(static_cast<std::uint64_t>(settings.max_connections), std::memory_order_relaxed);
    // Client events go upstream from here, each type to the destinations its route names.
    const auto routes = upstream_routes(settings, catalog);
    if (!routes) {
        spdlog::error("{}", routes.message());
        return 1;
    }
    std::unique_ptr<upstream::webhook> hook;
    if (routes->used() & upstream::k_to_webhook) {
        hook = std::make_unique<upstream::webhook>(
            upstream::webhook_settings{.url = *settings.webhook_url.value,
                                       .secret = settings.webhook_secret,
                                       .ca_file = settings.upstream_tls_ca_file,
                                       .timeout = settings.webhook_timeout,
                                       .max_attempts = settings.webhook_max_attempts,
                                       .backoff = settings.webhook_backoff,
                                       .max_queue = static_cast<std::size_t>(settings.webhook_max_queue)},
            metrics);
        spdlog::info("webhook enabled url={} signed={}", settings.webhook_url.text, !settings.webhook_secret.empty());
    }
    const auto& redis_endpoint = settings.redis_url.value;
    std::unique_ptr<upstream::redis_stream> stream;
    if (routes->used() & upstream::k_to_redis) {
        stream = std::make_unique<upstream::redis_stream>(
            upstream::redis_stream_settings{
                .endpoint = *redis_endpoint,
                .stream = settings.redis_client_events_stream,
                .max_len = settings.redis_client_events_max_len,
                .max_queue = static_cast<std::size_t>(settings.redis_client_events_max_queue),
                .timeout = settings.redis_timeout},
            metrics);
    }
    auto on_client_event = [&routes, hook = hook.get(), stream = stream.get(), &metrics](
                               const session::client_event_source& source, const protocol::client_message& message) {
        spdlog::debug("client event conn={} user={} type={} payload={}", source.connection, source.user_id,
                      message.type, message.payload_json);
        const auto to = routes->of(message.type);
        if (to == 0) return observability::metrics::add(metrics.client_events_unrouted);
        auto body = upstream::client_event_body(source.user_id, source.connection, message.type, message.payload_json,
                                                auth::unix_now_ms());
        if (to & upstream::k_to_webhook) hook->submit(body);
        if (to & upstream::k_to_redis) stream->submit(message.type, source.user_id, std::move(body));
    };
    // The server's own notices to the backend (presence.online and .offline, user.offline_event)
    // go where their route says, like client events; one that no route takes is not counted as
    // an unrouted client event.
    auto send_notice = [&routes, hook = hook.get(), stream = stream.get()](std::string_view type, std::string_view user,
                                                                           std::string body) {
        const auto to = routes->of(type);
        if (to & upstream::k_to_webhook) hook->submit(body);
        if (to & upstream::k_to_redis) stream->submit(type, user, std::move(body));
    };
    if (settings.test_echo) {
        spdlog::warn(
            "TEST ECHO ENDPOINT ENABLED: /echo accepts WebSockets without a token and echoes every message. "
            "For conformance testing only; never in production (unset ZENA_TEST_ECHO).");
    }
    spdlog::info("catalog loaded source={} server_events={} client_events={} permissive={}",
                 settings.catalog_path.empty() ? "builtin" : settings.catalog_path, catalog.server_events().size(),
                 catalog.client_events().size(), settings.catalog_permissive);
    // The event loops, one per thread, and this node's delivery index: a hub per loop.
    std::vector<std::unique_ptr<session::loop>> loops;
    const auto threads = thread_count(settings);
    std::vector<hub::hub_set::post_fn> posts;
    std::string no_ring = "server.io_uring";
    std::size_t rings = 0;
    for (std::size_t i = 0; i < threads; ++i) {
        loops.push_back(std::make_unique<session::loop>(i, settings.invalid_message_log_per_second));
        if (settings.io_uring && (loops.back()->ring = ws::send_ring::open(no_ring))) {
            loops.back()->flush.use(loops.back()->ring.get());
            ++rings;
        }
        posts.emplace_back([io = &loops.back()->io](hub::hub_set::task t) { boost::asio::post(*io, std::move(t)); });
    }
    if (rings == threads) {
        spdlog::info("writes io_uring=true per_call={}", ws::send_ring::k_batch);
    } else {
        // The loops without a ring write one call per connection.
        spdlog::info("writes io_uring=false loops_with_io_uring={} reason=\"{}\"", rings, no_ring);
    }
    util::start_allocator_background_thread();
    if (const auto allocator = util::allocator_in_use(); allocator.name == "glibc") {
        spdlog::info("memory allocator=glibc");
    } else {
        spdlog::info("memory allocator={} version={} background_thread={}", allocator.name, allocator.version,
                     allocator.background_thread);
    }
    hub::user_registry registry;
    hub::hub_set hubs{std::move(posts), registry};

    // The engine: broker and history, in this process (memory) or shared by the nodes (redis).
    std::unique_ptr<engine::memory_history> memory_history;
    std::unique_ptr<engine::memory_broker> memory_broker;
    std::unique_ptr<engine::redis_engine> redis_engine;
    // This node, among the nodes: its id, and where it listens once it does (for GET /api/nodes).
    const auto node = settings.engine_node_id.empty() ? generated_node_id() : settings.engine_node_id;
    std::atomic<int> listening_port{0};
    const auto started = auth::unix_now_ms();
    if (settings.engine_type == "redis") {
        auto shards = config::redis_shards(settings);
        if (!shards) {
            spdlog::error("{}", shards.message());
            return 1;
        }
        const auto shard_count = shards->size();
        redis_engine = std::make_unique<engine::redis_engine>(
            engine::redis_engine_options{
                .shards = std::move(*shards),
                .prefix = settings.engine_prefix,
                .node_id = node,
                .timeout = settings.redis_timeout,
                .idempotency_window = settings.engine_idempotency_window,
                .metrics = &metrics,
                .self =
                    [&registry, &settings, &listening_port, started] {
                        return engine::node_info{.address = settings.host + ":" + std::to_string(listening_port.load()),
                                                 .connections = registry.connections(),
                                                 .users = registry.users(),
                                                 .started_ms = started};
                    },
                .on_user =
                    [send_notice](std::string_view user, bool online) {
                        send_notice(online ? "presence.online" : "presence.offline", user,
                                    session::user_presence::notice_body(online, user, auth::unix_now_ms()));
                    },
                .offline_grace = settings.presence_offline_grace,
                .context = &loops.front()->io},
            hubs);
        spdlog::info("engine redis node={} shards={} prefix={}", node, shard_count, settings.engine_prefix);
    } else {
        memory_history = std::make_unique<engine::memory_history>(engine::memory_history_options{
            .max_bytes = static_cast<std::size_t>(settings.channels_history_max_bytes), .metrics = &metrics});
        memory_broker = std::make_unique<engine::memory_broker>(
            hubs, *memory_history,
            engine::publish_memo_options{.window = settings.engine_idempotency_window,
                                         .max_keys = static_cast<std::size_t>(settings.engine_idempotency_max_keys)});
    }
    engine::history& history = redis_engine ? redis_engine->history() : *memory_history;
    engine::broker& broker = redis_engine ? redis_engine->broker() : *memory_broker;
    std::unique_ptr<engine::memory_presence> memory_presence;
    if (!redis_engine) memory_presence = std::make_unique<engine::memory_presence>();
    engine::presence& presence = redis_engine ? redis_engine->presence() : *memory_presence;
    // This node's interest: a user's personal channel, from their first connection here to their
    // last, and every other channel a connection here holds.
    // Who is online, for the backend. With the Redis engine the deployment decides the notices
    // (redis_engine::user_here); this node keeps its own state for /api/presence.
    session::user_presence users_online{
        [io = &loops.front()->io](std::chrono::milliseconds delay, std::function<void()> fn) {
            auto timer = std::make_shared<boost::asio::steady_timer>(*io, delay);
            timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
                if (!ec) fn();
            });
        },
        settings.presence_offline_grace, redis_engine ? session::user_presence::notify_fn{} : send_notice};
    registry.on_interest([&broker, &users_online, engine = redis_engine.get()](std::string_view user, bool present) {
        const auto channel = protocol::personal_channel(user);
        if (present) {
            broker.subscribe(channel);
        } else {
            broker.unsubscribe(channel);
        }
        users_online.on_interest(user, present);
        if (engine) engine->user_here(user, present);
    });
    registry.on_channel_interest([&broker](std::string_view channel, bool present) {
        if (present) {
            broker.subscribe(channel);
        } else {
            broker.unsubscribe(channel);
        }
    });
    // What each channel namespace keeps.
    auto history_of = [&settings](std::string_view channel) -> std::optional<engine::history_limits> {
        const auto ns = settings.of_namespace(protocol::channel_namespace(channel));
        if (ns.history_size <= 0) return std::nullopt;
        return engine::history_limits{static_cast<std::size_t>(ns.history_size), ns.history_ttl};
    };
    auto notify_offline = [send_notice](std::string_view user, std::string body) {
        send_notice(k_offline_event, user, std::move(body));
    };
    // The subscribe proxy, when configured.
    std::unique_ptr<upstream::subscribe_proxy> proxy;
    session::subscribe_proxy_fn ask_proxy;
    if (settings.subscribe_proxy_url.value) {
        proxy = std::make_unique<upstream::subscribe_proxy>(
            upstream::subscribe_proxy_settings{.url = *settings.subscribe_proxy_url.value,
                                               .secret = settings.webhook_secret,
                                               .ca_file = settings.upstream_tls_ca_file,
                                               .timeout = settings.subscribe_proxy_timeout},
            metrics);
        ask_proxy = [p = proxy.get()](const std::string& user, const std::string& channel,
                                      std::function<void(session::proxy_answer)> done) {
            p->check(user, channel, [done = std::move(done)](upstream::proxy_verdict v) {
                switch (v) {
                    case upstream::proxy_verdict::allow: return done(session::proxy_answer::allow);
                    case upstream::proxy_verdict::forbid: return done(session::proxy_answer::forbid);
                    case upstream::proxy_verdict::unavailable: return done(session::proxy_answer::unavailable);
                }
                done(session::proxy_answer::unavailable);
            });
        };
        spdlog::info("subscribe proxy enabled url={}", settings.subscribe_proxy_url.text);
    }

    // /readyz beyond draining: the Redis ingest reports to it, the HTTP sessions read it via the API.
    api::readiness readiness;
    if (redis_engine) readiness.probe([e = redis_engine.get()] { return e->trouble(); });
    api::server_api api{
        broker,
        hubs,
        metrics,
        catalog,
        settings.api_key,
        api::api_limits{.max_users_per_publish = static_cast<std::size_t>(settings.max_users_per_publish),
                        .permissive = settings.catalog_permissive,
                        .max_batch_items = static_cast<std::size_t>(settings.max_batch_items)},
        readiness,
        api::api_channels{history, history_of, notify_offline},
        api::api_presence{presence, users_online, static_cast<std::size_t>(settings.presence_max_list)},
        api::api_cluster{.nodes = redis_engine ? &redis_engine->cluster() : nullptr, .node_id = node}};
    session::shared sessions{settings,        verifier, catalog,   metrics, hubs,
                             on_client_event, history,  ask_proxy, broker,  presence};
    // The page at / (docs/admin.md): open in dev mode, else only with admin.enabled.
    std::unique_ptr<admin::console> page;
    if (dev_mode || settings.admin_enabled) {
        admin::mint_fn mint;
        if (dev_mode && !settings.jwt_secret.empty()) {
            mint = [jwt = jwt_settings_of(settings)](std::string_view user, const std::vector<std::string>& channels) {
                return auth::mint_jwt(jwt, user, std::chrono::hours(1), auth::unix_now(),
                                      auth::jwt_mint_options{.channels = channels, .channel = {}});
            };
        }
        page = std::make_unique<admin::console>(
            admin::console_settings{.dev = dev_mode,
                                    .enabled = settings.admin_enabled,
                                    .password = settings.admin_password,
                                    .secure_cookie = !settings.tls_cert_file.empty(),
                                    .session_ttl = settings.admin_session_ttl,
                                    .max_sessions = static_cast<std::size_t>(settings.admin_max_sessions),
                                    .login_attempts_per_minute = settings.admin_login_attempts_per_minute,
                                    .node = node,
                                    .cluster = redis_engine ? &redis_engine->cluster() : nullptr},
            api, settings.api_key, hubs, metrics, catalog, std::move(mint),
            [] { return observability::monotonic_ms(); });
        spdlog::info("admin page enabled path=/ login={}", dev_mode ? "none (dev mode)" : "admin.password");
    }
    net::server server{loops, sessions, api, page.get()};
    if (auto listened = server.listen(); !listened) {
        spdlog::error("{}", listened.message());
        return 1;
    }
    // Publishes through Redis; stopped (declared after the server) before the server goes.
    std::unique_ptr<api::redis_ingest> ingest;
    if (redis_endpoint && (!settings.redis_publish_channel.empty() || !settings.redis_publish_stream.empty())) {
        ingest = std::make_unique<api::redis_ingest>(
            api::redis_ingest_settings{.endpoint = *redis_endpoint,
                                       .channel = settings.redis_publish_channel,
                                       .stream = settings.redis_publish_stream,
                                       .max_message_bytes = static_cast<std::size_t>(settings.http_max_body_bytes),
                                       .timeout = settings.redis_timeout},
            api, metrics, readiness);
        spdlog::info("redis publishing enabled channel={} stream={}", settings.redis_publish_channel,
                     settings.redis_publish_stream);
    }
    listening_port.store(server.port());
    if (dev_mode) print_dev_banner(settings, server.port());
    // Type=notify units (packaging/zena-realtime.service) count the server started from here.
    observability::notify_service_manager("READY=1\nSTATUS=listening on port " + std::to_string(server.port()));
    server.run();
    return 0;
}

}  // namespace zena::app
