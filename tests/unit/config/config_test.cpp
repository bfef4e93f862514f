#include "config/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

namespace zena::config {
namespace {

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
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.values.port, 3000);
    EXPECT_EQ(r.values.heartbeat_interval_ms, 30000);
    EXPECT_TRUE(r.dev_mode) << "no secret and no key: dev mode";
}

TEST(Config, Environment_ThenFlags_Override) {
    fake_env env{{{"ZENA_PORT", "4000"},
                  {"ZENA_JWT_SECRET", k_secret},
                  {"ZENA_API_KEY", k_key},
                  {"ZENA_HEARTBEAT_INTERVAL_MS", "1000"}}};
    auto r = load({}, env.lookup());
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.values.port, 4000);
    EXPECT_EQ(r.values.heartbeat_interval_ms, 1000);
    EXPECT_FALSE(r.dev_mode);
    r = load({"--port", "5000", "--heartbeat-interval-ms=2000"}, env.lookup());
    EXPECT_EQ(r.values.port, 5000);
    EXPECT_EQ(r.values.heartbeat_interval_ms, 2000);
}

TEST(Config, File_IsOverriddenByEnvironment) {
    const std::string path = ::testing::TempDir() + "zena_config_test.toml";
    std::ofstream(path) << "[server]\nport = 4100\nthreads = 3\n[auth]\njwt_secret = \"" << k_secret
                        << "\"\napi_key = \"" << k_key << "\"\n[log]\ninvalid_message_per_second = 2.5\n";
    fake_env env{{{"ZENA_CONFIG", path}, {"ZENA_THREADS", "1"}}};
    const auto r = load({}, env.lookup());
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.values.port, 4100);
    EXPECT_EQ(r.values.threads, 1);
    EXPECT_DOUBLE_EQ(r.values.invalid_message_log_per_second, 2.5);
    EXPECT_FALSE(r.dev_mode);
    std::remove(path.c_str());
}

TEST(Config, BadValues_AreNamed) {
    EXPECT_NE(load({"--port", "70000"}, fake_env{}.lookup()).error.find("out of range"), std::string::npos);
    EXPECT_NE(load({"--port", "12ab"}, fake_env{}.lookup()).error.find("--port"), std::string::npos);
    EXPECT_NE(load({"--bogus", "1"}, fake_env{}.lookup()).error.find("unknown option --bogus"), std::string::npos);
    EXPECT_NE(load({"--port"}, fake_env{}.lookup()).error.find("needs a value"), std::string::npos);
    EXPECT_NE(load({"--mode", "prod"}, fake_env{}.lookup()).error.find("server.mode"), std::string::npos);
    EXPECT_NE(load({"--log-level", "loud"}, fake_env{}.lookup()).error.find("log.level"), std::string::npos);
    fake_env env{{{"ZENA_HEARTBEAT_INTERVAL_MS", "x"}}};
    EXPECT_NE(load({}, env.lookup()).error.find("ZENA_HEARTBEAT_INTERVAL_MS"), std::string::npos);
}

TEST(Config, UnknownFileKey_IsAnError) {
    const std::string path = ::testing::TempDir() + "zena_config_typo.toml";
    std::ofstream(path) << "[server]\nprot = 1\n";
    EXPECT_NE(load({"--config", path}, fake_env{}.lookup()).error.find("unknown option 'server.prot'"),
              std::string::npos);
    std::ofstream(path) << "[server\n";
    EXPECT_NE(load({"--config", path}, fake_env{}.lookup()).error.find("line"), std::string::npos);
    std::remove(path.c_str());
}

TEST(Config, Production_NeedsSecretAndKey) {
    EXPECT_NE(load({"--mode", "production"}, fake_env{}.lookup()).error.find("jwt_secret"), std::string::npos);
    fake_env only_secret{{{"ZENA_JWT_SECRET", k_secret}}};
    EXPECT_NE(load({}, only_secret.lookup()).error.find("api_key"), std::string::npos);
    fake_env short_secret{{{"ZENA_JWT_SECRET", "short"}, {"ZENA_API_KEY", k_key}}};
    EXPECT_NE(load({}, short_secret.lookup()).error.find("at least 32"), std::string::npos);
    fake_env hs512{{{"ZENA_JWT_SECRET", k_secret}, {"ZENA_API_KEY", k_key}, {"ZENA_JWT_ALGORITHM", "HS512"}}};
    EXPECT_NE(load({}, hs512.lookup()).error.find("at least 64"), std::string::npos);
    fake_env none{{{"ZENA_JWT_SECRET", k_secret}, {"ZENA_API_KEY", k_key}, {"ZENA_JWT_ALGORITHM", "none"}}};
    EXPECT_NE(load({}, none.lookup()).error.find("jwt_algorithm"), std::string::npos);
}

TEST(Config, WebhookUrl_MustBeHttp) {
    fake_env https{{{"ZENA_WEBHOOK_URL", "https://backend/events"}}};
    EXPECT_NE(load({}, https.lookup()).error.find("webhook.url"), std::string::npos);
    fake_env http{{{"ZENA_WEBHOOK_URL", "http://127.0.0.1:4000/events"}}};
    EXPECT_EQ(load({}, http.lookup()).error, "");
}

TEST(Config, RedisUrlAndRoutes_AreCheckedAtLoad) {
    fake_env rediss{{{"ZENA_REDIS_URL", "rediss://cache:6380"}}};
    EXPECT_NE(load({}, rediss.lookup()).error.find("redis.url"), std::string::npos);
    fake_env routes{{{"ZENA_UPSTREAM_ROUTES", "sync.request"}}};
    EXPECT_NE(load({}, routes.lookup()).error.find("upstream.routes"), std::string::npos);
    fake_env good{{{"ZENA_REDIS_URL", "redis://127.0.0.1:6379/2"}, {"ZENA_UPSTREAM_ROUTES", "*=redis"}}};
    EXPECT_EQ(load({}, good.lookup()).error, "");
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

}  // namespace
}  // namespace zena::config
