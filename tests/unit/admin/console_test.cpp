#include "admin/console.hpp"

#include <gtest/gtest.h>

#include "admin/assets.hpp"
#include "engine/memory/memory_broker.hpp"
#include "engine/memory/memory_history.hpp"
#include "engine/memory/memory_presence.hpp"
#include "hub/test_connection.hpp"

namespace zena::admin {
namespace {

const std::string k_key = "test-api-key-0123456789";
const std::string k_password = "a password of some length";
constexpr std::string_view k_host = "127.0.0.1:3000";
constexpr std::string_view k_origin = "http://127.0.0.1:3000";

const protocol::catalog& test_catalog() {
    static const protocol::catalog c = [] {
        std::string error;
        auto parsed = protocol::catalog::parse(R"({
            "types": {"Source": {"id": "string", "title": "string?"}},
            "server": {
                "deal.risk": {"payload": {"dealId": "string", "riskLevel": {"enum": ["medium", "high"]},
                                          "sources": {"array": "Source", "optional": true}}},
                "connected": {"protocol": true, "payload": {}}
            },
            "client": {"thread.view": {"payload": {"threadId": "string"}},
                       "subscribe": {"protocol": true, "payload": {"channel": "string"}}}
        })",
                                               error);
        EXPECT_TRUE(parsed) << error;
        return *parsed;
    }();
    return c;
}

// One hub whose thread is the caller (posts run inline), a clock the test moves.
class ConsoleTest : public ::testing::Test {
protected:
    std::unique_ptr<console> make(bool dev, bool enabled, std::size_t max_sessions = 32, double attempts = 10,
                                  bool tls = false) {
        return std::make_unique<console>(
            console_settings{.dev = dev,
                             .enabled = enabled,
                             .password = k_password,
                             .secure_cookie = tls,
                             .session_ttl = std::chrono::seconds(60),
                             .max_sessions = max_sessions,
                             .login_attempts_per_minute = attempts,
                             .node = "n1"},
            api, k_key, hubs, metrics, test_catalog(),
            [](std::string_view user, const std::vector<std::string>& channels) {
                return "token-for-" + std::string{user} + "-" + std::to_string(channels.size());
            },
            [this] { return now; });
    }

    static response call(console& c, std::string_view method, std::string_view target, std::string_view cookie = {},
                         std::string_view csrf = {}, std::string_view body = {}, std::string_view origin = k_origin) {
        std::optional<response> out;
        c.handle(request{method, target, cookie, origin, k_host, csrf, body}, [&](response r) { out = std::move(r); });
        EXPECT_TRUE(out) << "reply called synchronously with inline posts";
        return out.value_or(response{});
    }

    // The cookie pair (name=value) a response sets, or empty.
    static std::string cookie_of(const response& r) {
        for (const auto& [name, value] : r.headers) {
            if (name == "Set-Cookie") return value.substr(0, value.find(';'));
        }
        return {};
    }
    static std::string csrf_of(const response& r) {
        const auto at = r.body.find(R"("csrf":")");
        if (at == std::string::npos) return {};
        return r.body.substr(at + 8, 32);
    }

    std::int64_t now = 1000;
    hub::user_registry registry;
    hub::hub_set hubs{{[](hub::hub_set::task t) { t(); }}, registry};
    engine::memory_history history;
    engine::memory_broker broker{hubs, history};
    observability::metrics metrics;
    api::readiness ready;
    api::api_channels channels{history, [](std::string_view) { return std::optional<engine::history_limits>{}; },
                               [](std::string_view, std::string) {}};
    engine::memory_presence presence;
    session::user_presence users_online{[](std::chrono::milliseconds, std::function<void()>) {},
                                        std::chrono::milliseconds(5000),
                                        [](std::string_view, std::string_view, std::string) {}};
    api::server_api api{
        broker, hubs, metrics, test_catalog(), k_key, api::api_limits{}, ready, channels, {presence, users_online, 2}};
};

TEST_F(ConsoleTest, NotServed_EveryPathIs404) {
    auto c = make(false, false);
    EXPECT_FALSE(c->serves());
    EXPECT_EQ(call(*c, "GET", "/").status, 404);
    EXPECT_EQ(call(*c, "GET", "/admin/app.js").status, 404);
    EXPECT_EQ(call(*c, "POST", "/admin/api/login", {}, {}, R"({"password":"a password of some length"})").status, 404);
    EXPECT_EQ(c->refuse_live(request{"GET", "/admin/live", {}, k_origin, k_host, {}, {}})->status, 404);
}

TEST_F(ConsoleTest, Page_IsEmbeddedWithItsSecurityHeaders) {
    auto c = make(false, true);
    const auto r = call(*c, "GET", "/");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_NE(r.body.find("/admin/app.js"), std::string::npos);
    bool csp = false;
    for (const auto& [name, value] : r.headers) csp |= name == "Content-Security-Policy";
    EXPECT_TRUE(csp);
    ASSERT_NE(find_asset("/admin/app.js"), nullptr);
    EXPECT_EQ(call(*c, "GET", "/admin/app.js").body, find_asset("/admin/app.js")->bytes);
    EXPECT_EQ(call(*c, "GET", "/admin/nothing.js").status, 404);
    EXPECT_EQ(call(*c, "POST", "/").status, 405);
}

TEST_F(ConsoleTest, Production_LoginThenCsrfOnEveryPost) {
    auto c = make(false, true);
    EXPECT_EQ(call(*c, "GET", "/admin/api/stats").status, 401);
    EXPECT_EQ(call(*c, "POST", "/admin/api/login", {}, {}, R"({"password":"nope"})").status, 401);
    EXPECT_EQ(call(*c, "POST", "/admin/api/login", {}, {}, R"({"password":"a password of some length"})", "").status,
              403);
    const auto ok = call(*c, "POST", "/admin/api/login", {}, {}, R"({"password":"a password of some length"})");
    ASSERT_EQ(ok.status, 200);
    const auto cookie = cookie_of(ok);
    const auto csrf = csrf_of(ok);
    ASSERT_FALSE(cookie.empty());
    ASSERT_EQ(csrf.size(), 32U);
    EXPECT_EQ(call(*c, "GET", "/admin/api/stats", cookie).status, 200);
    // The session's own cookie, in a header with others.
    EXPECT_EQ(call(*c, "GET", "/admin/api/stats", "theme=dark; " + cookie + "; x=1").status, 200);

    const std::string body = R"({"userId":"alice","type":"deal.risk","payload":{"dealId":"d","riskLevel":"low"}})";
    EXPECT_EQ(call(*c, "POST", "/admin/api/publish", cookie, {}, body).status, 403);
    EXPECT_EQ(call(*c, "POST", "/admin/api/publish", cookie, std::string(32, '0'), body).status, 403);
    EXPECT_EQ(call(*c, "POST", "/admin/api/publish", cookie, csrf, body, "http://127.0.0.1:3000.evil").status, 403);
    const auto refused = call(*c, "POST", "/admin/api/publish", cookie, csrf, body);
    EXPECT_EQ(refused.status, 400);
    EXPECT_NE(refused.body.find(R"("field":"payload.riskLevel")"), std::string::npos) << refused.body;
    const auto good = call(*c, "POST", "/admin/api/publish", cookie, csrf,
                           R"({"userId":"alice","type":"deal.risk","payload":{"dealId":"d","riskLevel":"high"}})");
    EXPECT_EQ(good.status, 200) << good.body;
    EXPECT_EQ(metrics.events_published.load(), 1U);
    // Tokens are minted in dev mode only.
    EXPECT_EQ(call(*c, "POST", "/admin/api/token", cookie, csrf, R"({"userId":"u"})").status, 403);
}

TEST_F(ConsoleTest, Cookie_HttpOnlyStrict_SecureOverTls) {
    const std::string login = R"({"password":"a password of some length"})";
    const auto set_cookie = [&](console& c) {
        for (const auto& [name, value] : call(c, "POST", "/admin/api/login", {}, {}, login).headers) {
            if (name == "Set-Cookie") return value;
        }
        return std::string{};
    };
    auto plain = make(false, true);
    const auto cookie = set_cookie(*plain);
    EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos) << cookie;
    EXPECT_EQ(cookie.find("Secure"), std::string::npos) << cookie;
    auto tls = make(false, true, 32, 10, true);
    EXPECT_NE(set_cookie(*tls).find("; Secure"), std::string::npos);
}

TEST_F(ConsoleTest, Sessions_ExpireAndAreBounded) {
    auto c = make(false, true, 2, 100);
    const auto login = [&] {
        return cookie_of(call(*c, "POST", "/admin/api/login", {}, {}, R"({"password":"a password of some length"})"));
    };
    const auto first = login();
    now += 1;
    const auto second = login();
    now += 1;
    const auto third = login();  // past max_sessions: the oldest goes
    EXPECT_EQ(call(*c, "GET", "/admin/api/stats", first).status, 401);
    EXPECT_EQ(call(*c, "GET", "/admin/api/stats", second).status, 200);
    EXPECT_EQ(call(*c, "GET", "/admin/api/stats", third).status, 200);
    now += 60'000;  // session_ttl
    EXPECT_EQ(call(*c, "GET", "/admin/api/stats", third).status, 401);
}

TEST_F(ConsoleTest, LoginAttempts_BoundedThenRefill) {
    auto c = make(false, true, 32, 2);
    const std::string right = R"({"password":"a password of some length"})";
    EXPECT_EQ(call(*c, "POST", "/admin/api/login", {}, {}, R"({"password":"x"})").status, 401);
    EXPECT_EQ(call(*c, "POST", "/admin/api/login", {}, {}, R"({"password":"y"})").status, 401);
    EXPECT_EQ(call(*c, "POST", "/admin/api/login", {}, {}, right).status, 429);
    now += 30'000;  // 2 a minute: one attempt back
    EXPECT_EQ(call(*c, "POST", "/admin/api/login", {}, {}, right).status, 200);
}

TEST_F(ConsoleTest, DevMode_OpenSessionAndMintedToken) {
    auto c = make(true, false);
    const auto session = call(*c, "GET", "/admin/api/session");
    EXPECT_NE(session.body.find(R"("dev":true)"), std::string::npos);
    EXPECT_NE(session.body.find(R"("authenticated":true)"), std::string::npos);
    const auto cookie = cookie_of(session);
    const auto csrf = csrf_of(session);
    const auto token =
        call(*c, "POST", "/admin/api/token", cookie, csrf, R"({"userId":"alice","channels":"deal:*, room:1"})");
    EXPECT_EQ(token.status, 200);
    EXPECT_NE(token.body.find("token-for-alice-2"), std::string::npos) << token.body;
    EXPECT_EQ(call(*c, "POST", "/admin/api/token", cookie, csrf, R"({"userId":""})").status, 400);
    // Even open, a change needs the session's CSRF token: another site cannot drive it.
    EXPECT_EQ(call(*c, "POST", "/admin/api/token", cookie, {}, R"({"userId":"alice"})").status, 403);
}

TEST_F(ConsoleTest, CatalogJson_FieldsTypesEnumsRequired) {
    const auto json = console::catalog_json(test_catalog());
    EXPECT_NE(json.find(R"({"name":"dealId","required":true,"type":{"kind":"string"}})"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("kind":"enum","values":["medium","high"])"), std::string::npos) << json;
    EXPECT_NE(json.find(R"({"name":"sources","required":false,"type":{"kind":"array","element":{"kind":"object")"),
              std::string::npos)
        << json;
    // A server event the server sends itself is not offered; a protocol client event is, marked.
    EXPECT_EQ(json.find(R"("type":"connected")"), std::string::npos);
    EXPECT_NE(json.find(R"("type":"subscribe","delivery":"ordered","protocol":true)"), std::string::npos) << json;
}

TEST_F(ConsoleTest, Snapshot_CountsPerThreadAndRates) {
    auto c = make(true, false);
    auto conn = hub::testing::make(1, "alice");
    hubs.local(0).add(conn);
    std::string first;
    c->snapshot([&](std::string json) { first = std::move(json); });
    EXPECT_NE(first.find(R"("connections":1,"users":1)"), std::string::npos) << first;
    EXPECT_NE(first.find(R"("threads":[{"thread":0,"connections":1,"deliveredPerSecond":0}])"), std::string::npos)
        << first;
    EXPECT_NE(first.find(R"("nodes":[{"node":"n1","self":true)"), std::string::npos) << first;
    metrics.messages_delivered += 50;
    // The thread's own count: what its hub queued (5 messages to alice's one connection).
    const ws::outbound message{ws::frame::make(ws::opcode::text, R"({"type":"t","payload":{}})")};
    for (int i = 0; i < 5; ++i) hubs.local(0).send_to_user("alice", message);
    now += 100;  // within a sample's life: the same one
    std::string cached;
    c->snapshot([&](std::string json) { cached = std::move(json); });
    EXPECT_EQ(cached, first);
    now += 400;  // half a second after the first: 50 in 0.5 s
    std::string second;
    c->snapshot([&](std::string json) { second = std::move(json); });
    EXPECT_NE(second.find(R"("deliveredPerSecond":100)"), std::string::npos) << second;
    EXPECT_NE(second.find(R"({"thread":0,"connections":1,"deliveredPerSecond":10})"), std::string::npos) << second;
}

}  // namespace
}  // namespace zena::admin
