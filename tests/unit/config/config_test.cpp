#include "config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

namespace zena::config {
namespace {

// The message of a failed load; empty when it loaded.
std::string error_of(const load_result& r) { return r.status ? std::string{} : r.status.message(); }

struct fake_env {
    std::map<std::string, std::string, std::less<>> vars;
    env_lookup lookup() const {
        return [this](std::string_view name) -> std::optional<std::string> {
            auto it = vars.find(name);
            if (it == vars.end()) return std::nullopt;
            return it->second;
        };
    }
};

const std::string k_secret(32, 's');
const std::string k_key(16, 'k');

TEST(Config, Defaults_AreTheSeedsValues) {
    const auto r = load({}, fake_env{}.lookup());
    ASSERT_EQ(error_of(r), "");
    EXPECT_EQ(r.values.port, 3000);
    EXPECT_EQ(r.values.heartbeat_interval, std::chrono::milliseconds(30000));
    EXPECT_TRUE(r.dev_mode) << "no secret and no key: dev mode";
}

TEST(Config, Environment_ThenFlags_Override) {
    fake_env env{{{"ZENA_PORT", "4000"},
                  {"ZENA_JWT_SECRET", k_secret},
                  {"ZENA_API_KEY", k_key},
                  {"ZENA_HEARTBEAT_INTERVAL_MS", "1000"}}};
    auto r = load({}, env.lookup());
    ASSERT_EQ(error_of(r), "");
    EXPECT_EQ(r.values.port, 4000);
    EXPECT_EQ(r.values.heartbeat_interval, std::chrono::milliseconds(1000));
    EXPECT_FALSE(r.dev_mode);
    r = load({"--port", "5000", "--heartbeat-interval-ms=2000"}, env.lookup());
    EXPECT_EQ(r.values.port, 5000);
    EXPECT_EQ(r.values.heartbeat_interval, std::chrono::milliseconds(2000));
}

TEST(Config, File_IsOverriddenByEnvironment) {
    const std::string path = ::testing::TempDir() + "zena_config_test.toml";
    std::ofstream(path) << "[server]\nport = 4100\nthreads = 3\n[auth]\njwt_secret = \"" << k_secret
                        << "\"\napi_key = \"" << k_key << "\"\n[log]\ninvalid_message_per_second = 2.5\n";
    fake_env env{{{"ZENA_CONFIG", path}, {"ZENA_THREADS", "1"}}};
    const auto r = load({}, env.lookup());
    ASSERT_EQ(error_of(r), "");
    EXPECT_EQ(r.values.port, 4100);
    EXPECT_EQ(r.values.threads, 1);
    EXPECT_DOUBLE_EQ(r.values.invalid_message_log_per_second, 2.5);
    EXPECT_FALSE(r.dev_mode);
    std::remove(path.c_str());
}

TEST(Config, BadValues_AreNamed) {
    EXPECT_NE(error_of(load({"--port", "70000"}, fake_env{}.lookup())).find("out of range"), std::string::npos);
    EXPECT_NE(error_of(load({"--port", "12ab"}, fake_env{}.lookup())).find("--port"), std::string::npos);
    EXPECT_NE(error_of(load({"--bogus", "1"}, fake_env{}.lookup())).find("unknown option --bogus"), std::string::npos);
    EXPECT_NE(error_of(load({"--port"}, fake_env{}.lookup())).find("needs a value"), std::string::npos);
    EXPECT_NE(error_of(load({"--mode", "prod"}, fake_env{}.lookup())).find("server.mode"), std::string::npos);
    EXPECT_NE(error_of(load({"--log-level", "loud"}, fake_env{}.lookup())).find("log.level"), std::string::npos);
    fake_env env{{{"ZENA_HEARTBEAT_INTERVAL_MS", "x"}}};
    EXPECT_NE(error_of(load({}, env.lookup())).find("ZENA_HEARTBEAT_INTERVAL_MS"), std::string::npos);
}

TEST(Config, UnknownFileKey_IsAnError) {
    const std::string path = ::testing::TempDir() + "zena_config_typo.toml";
    std::ofstream(path) << "[server]\nprot = 1\n";
    EXPECT_NE(error_of(load({"--config", path}, fake_env{}.lookup())).find("unknown option 'server.prot'"),
              std::string::npos);
    std::ofstream(path) << "[server\n";
    EXPECT_NE(error_of(load({"--config", path}, fake_env{}.lookup())).find("line"), std::string::npos);
    std::remove(path.c_str());
}

TEST(Config, Production_NeedsSecretAndKey) {
    EXPECT_NE(error_of(load({"--mode", "production"}, fake_env{}.lookup())).find("jwt_secret"), std::string::npos);
    fake_env only_secret{{{"ZENA_JWT_SECRET", k_secret}}};
    EXPECT_NE(error_of(load({}, only_secret.lookup())).find("api_key"), std::string::npos);
    fake_env short_secret{{{"ZENA_JWT_SECRET", "short"}, {"ZENA_API_KEY", k_key}}};
    EXPECT_NE(error_of(load({}, short_secret.lookup())).find("at least 32"), std::string::npos);
    fake_env hs512{{{"ZENA_JWT_SECRET", k_secret}, {"ZENA_API_KEY", k_key}, {"ZENA_JWT_ALGORITHM", "HS512"}}};
    EXPECT_NE(error_of(load({}, hs512.lookup())).find("at least 64"), std::string::npos);
    fake_env none{{{"ZENA_JWT_SECRET", k_secret}, {"ZENA_API_KEY", k_key}, {"ZENA_JWT_ALGORITHM", "none"}}};
    EXPECT_NE(error_of(load({}, none.lookup())).find("jwt_algorithm"), std::string::npos);
}

TEST(Config, ChannelNamespaces_OverrideTheChannelsDefaultsWhateverSetThem) {
    const std::string path = ::testing::TempDir() + "zena_config_namespaces.toml";
    std::ofstream(path) << "[channels]\nhistory_size = 500\n"
                           "[channels.namespaces.deal]\nhistory_size = 100\n"
                           "[channels.namespaces.typing]\nhistory_size = 0\nhistory_ttl_ms = 5000\n";
    fake_env env{{{"ZENA_CHANNELS_HISTORY_TTL_MS", "60000"}}};
    const auto r = load({"--config", path}, env.lookup());
    ASSERT_EQ(error_of(r), "");
    EXPECT_EQ(r.values.of_namespace("deal").history_size, 100);
    EXPECT_EQ(r.values.of_namespace("deal").history_ttl, std::chrono::milliseconds(60000)) << "from [channels]";
    EXPECT_EQ(r.values.of_namespace("typing").history_size, 0);
    EXPECT_EQ(r.values.of_namespace("typing").history_ttl, std::chrono::milliseconds(5000));
    EXPECT_EQ(r.values.of_namespace("thread").history_size, 500) << "a namespace without a table";
    EXPECT_EQ(r.values.of_namespace("").history_size, 500);

    for (const auto* bad :
         {"[channels.namespaces.deal]\nhistory_size = -1\n", "[channels.namespaces.deal]\nhistory_size = \"many\"\n",
          "[channels.namespaces.deal]\nhistory_ttl_ms = 5\n", "[channels.namespaces.deal]\ncolour = 1\n",
          "[channels.namespaces]\n\"a b\" = {}\n", "[channels]\nnamespaces = 3\n"}) {
        std::ofstream(path) << bad;
        EXPECT_NE(error_of(load({"--config", path}, fake_env{}.lookup())).find("channels.namespaces"),
                  std::string::npos)
            << bad;
    }
    std::remove(path.c_str());
}

TEST(Config, SubscribeProxyUrl_MustBeHttpOrHttps) {
    fake_env ftp{{{"ZENA_CHANNELS_SUBSCRIBE_PROXY_URL", "ftp://backend/subscribe"}}};
    EXPECT_NE(error_of(load({}, ftp.lookup())).find("channels.subscribe_proxy_url"), std::string::npos);
    fake_env https{{{"ZENA_CHANNELS_SUBSCRIBE_PROXY_URL", "https://backend/subscribe"}}};
    const auto secure = load({}, https.lookup());
    ASSERT_EQ(error_of(secure), "");
    EXPECT_TRUE(secure.values.subscribe_proxy_url.value->tls);
    fake_env http{{{"ZENA_CHANNELS_SUBSCRIBE_PROXY_URL", "http://127.0.0.1:9/subscribe"}}};
    const auto r = load({}, http.lookup());
    ASSERT_EQ(error_of(r), "");
    ASSERT_TRUE(r.values.subscribe_proxy_url.value);
    EXPECT_EQ(r.values.subscribe_proxy_url.value->port, "9");
}

TEST(Config, WebhookUrl_MustBeHttpOrHttps) {
    fake_env ftp{{{"ZENA_WEBHOOK_URL", "ftp://backend/events"}}};
    EXPECT_NE(error_of(load({}, ftp.lookup())).find("webhook.url"), std::string::npos);
    fake_env https{{{"ZENA_WEBHOOK_URL", "https://backend/events"}, {"ZENA_UPSTREAM_TLS_CA_FILE", "/tmp/ca.pem"}}};
    const auto secure = load({}, https.lookup());
    ASSERT_EQ(error_of(secure), "");
    EXPECT_TRUE(secure.values.webhook_url.value->tls);
    EXPECT_EQ(secure.values.upstream_tls_ca_file, "/tmp/ca.pem");
    fake_env http{{{"ZENA_WEBHOOK_URL", "http://127.0.0.1:4000/events"}}};
    EXPECT_EQ(error_of(load({}, http.lookup())), "");
}

TEST(Config, RedisUrlAndRoutes_AreCheckedAtLoad) {
    fake_env rediss{{{"ZENA_REDIS_URL", "rediss://cache:6380"}}};
    EXPECT_NE(error_of(load({}, rediss.lookup())).find("redis.url"), std::string::npos);
    fake_env routes{{{"ZENA_UPSTREAM_ROUTES", "sync.request"}}};
    EXPECT_NE(error_of(load({}, routes.lookup())).find("upstream.routes"), std::string::npos);
    fake_env good{{{"ZENA_REDIS_URL", "redis://127.0.0.1:6379/2"}, {"ZENA_UPSTREAM_ROUTES", "*=redis"}}};
    EXPECT_EQ(error_of(load({}, good.lookup())), "");
}

TEST(Config, ValuesWithAGrammar_AreKeptParsed) {
    fake_env env{{{"ZENA_WEBHOOK_URL", "http://127.0.0.1:4000/events"},
                  {"ZENA_ALLOWED_ORIGINS", "https://app.example.com"},
                  {"ZENA_REDIS_URL", "redis://127.0.0.1:6390/2"},
                  {"ZENA_UPSTREAM_ROUTES", "sync.request=redis,*=none"},
                  {"ZENA_JWT_ALGORITHM", "HS384"},
                  {"ZENA_JWT_SECRET", std::string(48, 's')},
                  {"ZENA_API_KEY", "an-api-key-of-16-bytes"},
                  {"ZENA_WEBHOOK_BACKOFF_MS", "350"}}};
    const auto r = load({}, env.lookup());
    ASSERT_EQ(error_of(r), "");
    const auto& s = r.values;
    ASSERT_TRUE(s.webhook_url.value);
    EXPECT_EQ(s.webhook_url.value->host, "127.0.0.1");
    EXPECT_EQ(s.webhook_url.value->port, "4000");
    EXPECT_EQ(s.webhook_url.value->target, "/events");
    EXPECT_EQ(s.webhook_url.text, "http://127.0.0.1:4000/events");
    EXPECT_TRUE(s.allowed_origins.value.allows("https://app.example.com"));
    EXPECT_FALSE(s.allowed_origins.value.allows("https://evil.example.net"));
    ASSERT_TRUE(s.redis_url.value);
    EXPECT_EQ(s.redis_url.value->port, 6390);
    EXPECT_EQ(s.redis_url.value->db, 2);
    ASSERT_TRUE(s.upstream_routes.value);
    EXPECT_EQ(s.upstream_routes.value->of("sync.request"), upstream::k_to_redis);
    EXPECT_EQ(s.upstream_routes.value->of("thread.view"), 0U);
    EXPECT_EQ(s.jwt_algorithm.value, auth::jwt_algorithm::hs384);
    EXPECT_EQ(s.webhook_backoff, std::chrono::milliseconds(350));
    // Not set: nothing parsed, and the defaults mean "none" and "any origin".
    const auto defaults = load({}, fake_env{}.lookup());
    EXPECT_FALSE(defaults.values.webhook_url.value);
    EXPECT_FALSE(defaults.values.redis_url.value);
    EXPECT_TRUE(defaults.values.allowed_origins.value.allows_any());
}

TEST(Config, Help_And_Docs_ListEveryOption) {
    EXPECT_TRUE(load({"--help"}, fake_env{}.lookup()).help);
    const auto help = help_text();
    const auto docs = markdown_reference();
    for (const auto* name : {"ZENA_PORT", "ZENA_JWT_SECRET", "ZENA_API_KEY", "ZENA_HEARTBEAT_INTERVAL_MS"}) {
        EXPECT_NE(help.find(name), std::string::npos) << name;
        EXPECT_NE(docs.find(name), std::string::npos) << name;
    }
    EXPECT_EQ(help.find(k_secret), std::string::npos);
}

TEST(Config, EveryProblem_IsReported_NotOnlyTheFirst) {
    const std::string path = ::testing::TempDir() + "zena_config_errors_test.toml";
    std::ofstream(path) << "[server]\nport = 70000\nnot_an_option = 1\n[log]\nformat = \"yaml\"\n"
                           "[websocket]\nheartbeat_interval_ms = \"soon\"\n";
    fake_env env{{{"ZENA_CONFIG", path}, {"ZENA_THREADS", "many"}}};
    const auto r =
        load({"--mode", "production", "--no-such-flag", "x", "--trusted-proxies", "10.0.0.0/33"}, env.lookup());
    std::remove(path.c_str());
    ASSERT_FALSE(r.status);
    const auto has = [&](std::string_view part) {
        return std::any_of(r.errors.begin(), r.errors.end(),
                           [&](const std::string& e) { return e.find(part) != std::string::npos; });
    };
    EXPECT_TRUE(has("server.port")) << "range";
    EXPECT_TRUE(has("unknown option 'server.not_an_option'"));
    EXPECT_TRUE(has("log.format must be text or json"));
    EXPECT_TRUE(has("websocket.heartbeat_interval_ms"));
    EXPECT_TRUE(has("ZENA_THREADS"));
    EXPECT_TRUE(has("unknown option --no-such-flag"));
    EXPECT_TRUE(has("server.trusted_proxies"));
    EXPECT_TRUE(has("auth.api_key (ZENA_API_KEY) is required")) << "the checks across values run too";
    EXPECT_FALSE(has("unexpected argument 'x'")) << "an unknown flag's value is not reported again";
    EXPECT_EQ(r.errors.size(), 9U) << ::testing::PrintToString(r.errors);
    EXPECT_EQ(r.status.message(), r.errors.front());
}

TEST(Config, TrustedProxies_AndLogFormat_AreRead) {
    fake_env env{{{"ZENA_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, ::1"}, {"ZENA_LOG_FORMAT", "json"}}};
    const auto r = load({}, env.lookup());
    ASSERT_EQ(error_of(r), "");
    EXPECT_EQ(r.values.log_format, "json");
    EXPECT_TRUE(r.values.trusted_proxies.value.contains("10.1.2.3"));
    EXPECT_TRUE(r.values.trusted_proxies.value.contains("::1"));
    EXPECT_FALSE(r.values.trusted_proxies.value.contains("192.168.0.1"));
    EXPECT_TRUE(load({}, fake_env{}.lookup()).values.trusted_proxies.value.empty()) << "default: none trusted";
}

}  // namespace
}  // namespace zena::config
