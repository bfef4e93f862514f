#include "api/server_api.hpp"

#include <gtest/gtest.h>

#include "engine/memory/memory_broker.hpp"
#include "engine/memory/memory_history.hpp"
#include "engine/memory/memory_presence.hpp"
#include "hub/test_connection.hpp"

namespace zena::api {
namespace {

const std::string k_key = "test-api-key-0123456789";

// A small catalog of the test's own; the shipped one is tested in catalog_test.
const protocol::catalog& test_catalog() {
    static const protocol::catalog c = [] {
        std::string error;
        auto parsed = protocol::catalog::parse(R"({
            "server": {
                "thread.new": {"payload": {"threadId": "string"}},
                "t": {"payload": {"a": "number?"}},
                "deal.risk": {"payload": {"riskLevel": {"enum": ["medium", "high"]}}, "notifyOffline": true},
                "typing": {"delivery": "ephemeral", "payload": {}},
                "connected": {"protocol": true, "payload": {}}
            },
            "client": {}
        })",
                                               error);
        EXPECT_TRUE(parsed) << error;
        return *parsed;
    }();
    return c;
}

// One hub whose "thread" is the caller: posts run inline, so replies arrive synchronously.
class ServerApiTest : public ::testing::Test {
protected:
    ServerApiTest() {
        hubs.local(0).add(alice);
        hubs.local(0).add(alice2);
        hubs.local(0).add(bob);
    }

    http_response call(std::string_view method, std::string_view target, std::string_view body = {},
                       std::string auth = "Bearer " + k_key) {
        std::optional<http_response> out;
        api.handle({method, target, auth, body}, [&](http_response r) { out = std::move(r); });
        EXPECT_TRUE(out) << "reply called synchronously with inline posts";
        return out.value_or(http_response{});
    }

    // The epoch of `channel` now (the memory history answers inside the call).
    std::string epoch(std::string_view channel) {
        std::string out;
        history.top(channel, [&](util::result<engine::position> r) { out = r ? r->epoch : "<error>"; });
        return out;
    }
    // The frame of a stored event of `channel` at `seq`, around `event_json` ({"type":..,"payload":..}).
    std::string stored(std::string_view event_json, std::string_view channel, std::uint64_t seq) {
        return std::string(event_json.substr(0, event_json.size() - 1)) + R"(,"channel":")" + std::string(channel) +
               R"(","epoch":")" + epoch(channel) + R"(","seq":)" + std::to_string(seq) + "}";
    }

    hub::user_registry registry;
    hub::hub_set hubs{{[](hub::hub_set::task t) { t(); }}, registry};
    engine::memory_history history;
    engine::memory_broker broker{hubs, history};
    observability::metrics metrics;
    readiness ready;
    std::vector<std::pair<std::string, std::string>> offline;  // notices: user, body
    api_channels channels{
        history, [](std::string_view) { return std::optional<engine::history_limits>{engine::history_limits{}}; },
        [this](std::string_view user, std::string body) { offline.emplace_back(user, std::move(body)); }};
    engine::memory_presence presence;
    // Grace timers run when the test says (`fire`).
    std::vector<std::function<void()>> timers;
    session::user_presence users_online{
        [this](std::chrono::milliseconds, std::function<void()> fn) { timers.push_back(std::move(fn)); },
        std::chrono::milliseconds(5000),
        [this](std::string_view type, std::string_view user, std::string) { notices.emplace_back(type, user); }};
    std::vector<std::pair<std::string, std::string>> notices;  // type, user
    api_presence presence_of{presence, users_online, 2};
    server_api api{broker, hubs, metrics, test_catalog(), k_key, api_limits{3, false}, ready, channels, presence_of};
    std::shared_ptr<hub::testing::recording_connection> alice = hub::testing::make(1, "alice");
    std::shared_ptr<hub::testing::recording_connection> alice2 = hub::testing::make(2, "alice");
    std::shared_ptr<hub::testing::recording_connection> bob = hub::testing::make(3, "bob");
};

TEST_F(ServerApiTest, Broadcast_DeliversEnvelopeToTheUser) {
    const auto r =
        call("POST", "/api/broadcast", R"({"userId":"alice","type":"thread.new","payload":{"threadId":"t" }})");
    EXPECT_EQ(r.status, 200);
    // One user: the answer names the personal channel and the event's position there.
    EXPECT_EQ(r.body, R"({"delivered":2,"channel":"user:alice","epoch":")" + epoch("user:alice") + R"(","seq":1})");
    ASSERT_EQ(alice->frames.size(), 1U);
    EXPECT_EQ(alice->frames[0]->payload(),
              stored(R"({"type":"thread.new","payload":{"threadId":"t"}})", "user:alice", 1));
    EXPECT_TRUE(bob->frames.empty());
    EXPECT_EQ(metrics.messages_delivered.load(), 2U);
}

TEST_F(ServerApiTest, BroadcastUsers_DedupesUsers) {
    const auto r = call("POST", "/api/broadcast", R"({"userIds":["bob","bob"],"type":"t","payload":{}})");
    EXPECT_EQ(r.body, R"({"delivered":1,"channel":"user:bob","epoch":")" + epoch("user:bob") + R"(","seq":1})");
    EXPECT_EQ(bob->frames.size(), 1U);
}

TEST_F(ServerApiTest, BroadcastAll_ReachesEveryone) {
    EXPECT_EQ(call("POST", "/api/broadcast-all", R"({"type":"t","payload":{"a":1}})").body, R"({"delivered":3})");
}

TEST_F(ServerApiTest, BadInput_NamesTheFieldAndDeliversNothing) {
    struct tc {
        std::string body;
        std::string field;
    };
    for (const auto& [body, field] : std::vector<tc>{
             {R"({"userId":"alice","payload":{}})", "type"},
             {R"({"userId":"alice","type":"bad type","payload":{}})", "type"},
             {R"({"userId":"alice","type":"t","payload":[]})", "payload"},
             {R"({"type":"t","payload":{}})", "userId"},
             {R"({"userIds":["a","b","c","d"],"type":"t","payload":{}})", "userIds"},
             {R"({"userIds":["alice",""],"type":"t","payload":{}})", "userIds[1]"},
         }) {
        const auto r = call("POST", "/api/broadcast", body);
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_NE(r.body.find(R"("field":")" + field + '"'), std::string::npos) << r.body;
    }
    EXPECT_EQ(call("POST", "/api/broadcast", "{oops").status, 400);
    EXPECT_TRUE(alice->frames.empty());
    EXPECT_EQ(metrics.api_rejections.load(), 7U);
}

TEST_F(ServerApiTest, NumberOutOfRange_NamesTheFieldAndTheReason) {
    struct tc {
        std::string number;
        std::string error;  // a part of the message
    };
    const std::string k_integer = "is an integer out of range (integers must fit in 64 bits";
    for (const auto& [number, error] : std::vector<tc>{
             {"18446744073709551616", k_integer},
             {"-9223372036854775809", k_integer},
             {std::string(10000, '7'), k_integer},
             {"1e400", "is a number out of range (larger than a 64-bit double can hold)"},
             {"-" + std::string(400, '9') + ".5", "is a number out of range"},
             {"01", "is not a valid JSON number"},
         }) {
        const auto r =
            call("POST", "/api/broadcast", R"({"userId":"alice","type":"t","payload":{"a":)" + number + "}}");
        EXPECT_EQ(r.status, 400) << number.substr(0, 30);
        EXPECT_NE(r.body.find(R"({"error":"payload.a )" + error), std::string::npos) << r.body;
        EXPECT_NE(r.body.find(R"("field":"payload.a")"), std::string::npos) << r.body;
    }
    // Where it sits: nested in arrays and objects, in a batch item.
    auto r =
        call("POST", "/api/broadcast", R"({"userId":"alice","type":"t","payload":{"x":[1,"s,\"}",{"n":[0,1e999]}]}})");
    EXPECT_NE(r.body.find(R"("field":"payload.x[2].n[1]")"), std::string::npos) << r.body;
    r = call(
        "POST", "/api/batch",
        R"({"items":[{"all":true,"type":"t","payload":{}},{"all":true,"type":"t","payload":{"a":1e99999999999999999999}}]})");
    EXPECT_NE(r.body.find(R"("field":"items[1].payload.a")"), std::string::npos) << r.body;
    r = call("POST", "/api/broadcast", "99999999999999999999");
    EXPECT_EQ(
        r.body,
        R"x({"error":"a number in the body is an integer out of range (integers must fit in 64 bits: -2^63 to 2^64-1)"})x");
    EXPECT_TRUE(alice->frames.empty());
    // The edges of what fits are delivered as they are.
    for (const auto* number : {"18446744073709551615", "-9223372036854775808", "1e-400", "1.7976931348623157e308"}) {
        EXPECT_EQ(
            call("POST", "/api/broadcast", R"({"userId":"bob","type":"t","payload":{"a":)" + std::string{number} + "}}")
                .status,
            200)
            << number;
    }
    ASSERT_EQ(bob->frames.size(), 4U);
    EXPECT_EQ(bob->frames[0]->payload(), stored(R"({"type":"t","payload":{"a":18446744073709551615}})", "user:bob", 1));
    EXPECT_EQ(bob->frames[1]->payload(), stored(R"({"type":"t","payload":{"a":-9223372036854775808}})", "user:bob", 2));
}

TEST_F(ServerApiTest, PublishMessage_NumberOutOfRange_NamesTheField) {
    std::vector<http_response> refused;
    bool done = false;
    api.publish_message(R"({"userId":"alice","type":"t","payload":{"a":123456789012345678901234567890}})",
                        [&](const http_response& r) { refused.push_back(r); }, [&] { done = true; });
    EXPECT_TRUE(done);
    ASSERT_EQ(refused.size(), 1U);
    EXPECT_NE(refused[0].body.find(R"("field":"payload.a")"), std::string::npos) << refused[0].body;
}

TEST_F(ServerApiTest, Catalog_RefusesUnknownTypesWrongPayloadsAndProtocolEvents) {
    auto r = call("POST", "/api/broadcast", R"({"userId":"alice","type":"no.such","payload":{}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find(R"("field":"type","event":"no.such")"), std::string::npos) << r.body;
    r = call("POST", "/api/broadcast", R"({"userId":"alice","type":"deal.risk","payload":{"riskLevel":"low"}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find(R"("field":"payload.riskLevel","event":"deal.risk")"), std::string::npos) << r.body;
    r = call("POST", "/api/broadcast-all", R"({"type":"connected","payload":{}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(alice->frames.empty());
}

TEST_F(ServerApiTest, Permissive_DeliversUnknownTypesButChecksKnownOnes) {
    server_api permissive{broker, hubs,     metrics,    test_catalog(), k_key, api_limits{3, true},
                          ready,  channels, presence_of};
    std::optional<http_response> out;
    const auto call_permissive = [&](std::string_view body) {
        permissive.handle({"POST", "/api/broadcast", "Bearer " + k_key, body},
                          [&](http_response r) { out = std::move(r); });
        return *out;
    };
    EXPECT_EQ(call_permissive(R"({"userId":"bob","type":"custom.event","payload":{"x":1}})").status, 200);
    EXPECT_EQ(call_permissive(R"({"userId":"bob","type":"deal.risk","payload":{"riskLevel":"low"}})").status, 400);
    EXPECT_EQ(bob->frames.size(), 1U);
}

TEST_F(ServerApiTest, Batch_AnswersPerItemAndDeliversTheValidOnesInOrder) {
    const auto r = call("POST", "/api/batch", R"({"items":[
        {"userId":"alice","type":"thread.new","payload":{"threadId":"1"}},
        {"userId":"alice","type":"deal.risk","payload":{"riskLevel":"low"}},
        {"all":true,"type":"t","payload":{}},
        42,
        {"userIds":["bob","alice"],"type":"thread.new","payload":{"threadId":"2"}}]})");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"results":[{"delivered":2,"channel":"user:alice","epoch":")" + epoch("user:alice") +
                          R"(","seq":1},)"
                          R"({"status":400,"error":"deal.risk: payload.riskLevel must be one of medium, high",)"
                          R"("field":"payload.riskLevel","event":"deal.risk"},{"delivered":3},)"
                          R"({"status":400,"error":"each item must be a JSON object"},{"delivered":3}]})");
    ASSERT_EQ(alice->frames.size(), 3U);
    EXPECT_EQ(alice->frames[0]->payload(),
              stored(R"({"type":"thread.new","payload":{"threadId":"1"}})", "user:alice", 1));
    // An announcement to everyone travels on no channel.
    EXPECT_EQ(alice->frames[1]->payload(), R"({"type":"t","payload":{}})");
    EXPECT_EQ(alice->frames[2]->payload(),
              stored(R"({"type":"thread.new","payload":{"threadId":"2"}})", "user:alice", 2));
    EXPECT_EQ(bob->frames.size(), 2U);
}

TEST_F(ServerApiTest, Batch_RefusesAMalformedBody) {
    EXPECT_EQ(call("POST", "/api/batch", R"({"items":{}})").status, 400);
    EXPECT_EQ(call("POST", "/api/batch", R"({})").status, 400);
    EXPECT_EQ(call("POST", "/api/batch", R"({"items":[]})").body, R"({"results":[]})");
    EXPECT_EQ(call("GET", "/api/batch").status, 405);
}

TEST_F(ServerApiTest, WrongKey_Is401) {
    EXPECT_EQ(call("GET", "/api/stats", {}, "Bearer nope").status, 401);
    EXPECT_EQ(call("GET", "/api/stats", {}, "").status, 401);
    EXPECT_EQ(call("GET", "/api/stats", {}, k_key).status, 401) << "the Bearer scheme is required";
}

TEST_F(ServerApiTest, Stats_And_UserCounts) {
    EXPECT_NE(call("GET", "/api/stats").body.find(R"("connections":3,"users":2)"), std::string::npos);
    EXPECT_EQ(call("GET", "/api/users/alice/connections").body, R"({"userId":"alice","connections":2})");
    EXPECT_EQ(call("GET", "/api/users/a%20b/connections").body, R"({"userId":"a b","connections":0})");
    EXPECT_EQ(call("GET", "/api/users/a%2Fb/connections").body, R"({"userId":"a/b","connections":0})");
}

TEST_F(ServerApiTest, UserPath_AnIdWithASlashIsCountedAndDisconnected) {
    const auto tenant = hub::testing::make(4, "tenant/42");
    const auto accented = hub::testing::make(5, "z\xC3\xA9na ?#%/");
    hubs.local(0).add(tenant);
    hubs.local(0).add(accented);
    EXPECT_EQ(call("GET", "/api/users/tenant%2F42/connections").body, R"({"userId":"tenant/42","connections":1})");
    EXPECT_EQ(call("GET", "/api/users/tenant%2f42/connections").body, R"({"userId":"tenant/42","connections":1})");
    EXPECT_EQ(call("GET", "/api/users/z%C3%A9na%20%3F%23%25%2F/connections").status, 200);
    EXPECT_EQ(call("DELETE", "/api/users/tenant%2F42/connections").body, R"({"userId":"tenant/42","closed":1})");
    EXPECT_EQ(tenant->closed, ws::close_code::disconnected);
    EXPECT_EQ(call("DELETE", "/api/users/z%C3%A9na%20%3F%23%25%2F/connections").body,
              "{\"userId\":\"z\xC3\xA9na ?#%/\",\"closed\":1}");
    EXPECT_EQ(accented->closed, ws::close_code::disconnected);
    EXPECT_FALSE(alice->closed);
    EXPECT_FALSE(bob->closed);
}

TEST_F(ServerApiTest, UserPath_RefusesWhatCannotBeAUserId) {
    const std::string too_long = "/api/users/" + std::string(257, 'x') + "/connections";
    for (const std::string& target :
         {std::string{"/api/users/%2/connections"}, std::string{"/api/users/a%zz/connections"},
          std::string{"/api/users/a/b/connections"},  // a raw '/' separates segments
          std::string{"/api/users/%FF%FE/connections"}, too_long}) {
        for (const auto* method : {"GET", "DELETE"}) {
            const auto r = call(method, target);
            EXPECT_EQ(r.status, 400) << method << ' ' << target;
            EXPECT_NE(r.body.find(R"("field":"userId")"), std::string::npos) << r.body;
        }
    }
    EXPECT_EQ(call("GET", "/api/users/" + std::string(256, 'x') + "/connections").status, 200);
    EXPECT_FALSE(alice->closed);
}

TEST_F(ServerApiTest, DeleteUser_ClosesWithDisconnected) {
    EXPECT_EQ(call("DELETE", "/api/users/alice/connections").body, R"({"userId":"alice","closed":2})");
    EXPECT_EQ(alice->closed, ws::close_code::disconnected);
    EXPECT_FALSE(bob->closed);
}

TEST_F(ServerApiTest, RoutesAndMethods) {
    EXPECT_EQ(call("GET", "/api/nope").status, 404);
    const auto r = call("PUT", "/api/users/alice/connections");
    EXPECT_EQ(r.status, 405);
    ASSERT_EQ(r.headers.size(), 1U);
    EXPECT_EQ(r.headers[0].second, "GET, DELETE");
    EXPECT_EQ(call("GET", "/api/broadcast").status, 405);
}

// ---- channels (docs/channels.md)

TEST_F(ServerApiTest, Publish_ToAChannel_ReachesItsHoldersAndAnswersThePosition) {
    hub::subscription sub;
    ASSERT_TRUE(hubs.local(0).subscribe(*bob, "deal:1", sub));
    const auto r =
        call("POST", "/api/publish", R"({"channel":"deal:1","type":"thread.new","payload":{"threadId":"t"}})");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"delivered":1,"channel":"deal:1","epoch":")" + epoch("deal:1") + R"(","seq":1})");
    ASSERT_EQ(bob->frames.size(), 1U);
    EXPECT_EQ(bob->frames[0]->payload(), stored(R"({"type":"thread.new","payload":{"threadId":"t"}})", "deal:1", 1));
    EXPECT_TRUE(alice->frames.empty());
    // Ephemeral: the channel, no position, nothing stored.
    const auto e = call("POST", "/api/publish", R"({"channel":"deal:1","type":"typing","payload":{}})");
    EXPECT_EQ(e.body, R"({"delivered":1,"channel":"deal:1"})");
    ASSERT_EQ(bob->frames.size(), 2U);
    EXPECT_EQ(bob->frames[1]->payload(), R"({"type":"typing","payload":{},"channel":"deal:1"})");
    EXPECT_TRUE(hubs.local(0).unsubscribe("deal:1", sub));
}

TEST_F(ServerApiTest, Publish_RefusesAMissingOrBadChannel_AndAChannelBesideUsers) {
    EXPECT_EQ(call("POST", "/api/publish", R"({"type":"t","payload":{}})").status, 400);
    for (const auto* bad : {R"("a b")", R"("")", "7", R"("user:")"}) {
        const auto r =
            call("POST", "/api/publish", R"({"channel":)" + std::string(bad) + R"(,"type":"t","payload":{}})");
        EXPECT_EQ(r.status, 400) << bad;
        EXPECT_NE(r.body.find(R"("field":"channel")"), std::string::npos) << r.body;
    }
    const auto both = call("POST", "/api/broadcast", R"({"channel":"deal:1","userId":"bob","type":"t","payload":{}})");
    EXPECT_EQ(both.status, 400);
    EXPECT_NE(both.body.find("exactly one of userId, userIds and channel"), std::string::npos) << both.body;
    // A personal channel by name is the user's.
    EXPECT_EQ(call("POST", "/api/publish", R"({"channel":"user:bob","type":"t","payload":{}})").status, 200);
    EXPECT_EQ(bob->frames.size(), 1U);
}

TEST_F(ServerApiTest, History_ReadsSinceAPositionWithALimit) {
    for (int i = 1; i <= 5; ++i) {
        call("POST", "/api/publish", R"({"channel":"deal:7","type":"t","payload":{"a":)" + std::to_string(i) + "}}");
    }
    const auto ep = epoch("deal:7");
    auto r = call("GET", "/api/channels/deal%3A7/history?since=" + ep + ":2&limit=2");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.body.starts_with(R"({"channel":"deal:7","epoch":")" + ep +
                                   R"(","seq":5,"recovered":true,"events":[{"type":"t","payload":{"a":3},"seq":3,)"))
        << r.body;
    EXPECT_NE(r.body.find(R"({"type":"t","payload":{"a":4},"seq":4,)"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find(R"("seq":5,"publishedAt")"), std::string::npos) << "the limit holds: " << r.body;
    r = call("GET", "/api/channels/deal:7/history?since=other:1");
    EXPECT_NE(r.body.find(R"("recovered":false)"), std::string::npos) << r.body;
    EXPECT_EQ(call("GET", "/api/channels/deal:7/history?since=nope").status, 400);
    EXPECT_EQ(call("GET", "/api/channels/deal:7/history?limit=0").status, 400);
    EXPECT_EQ(call("GET", "/api/channels/deal:7/history?limit=1001").status, 400);
    EXPECT_EQ(call("GET", "/api/channels/a%20b/history").status, 400);
    EXPECT_EQ(call("POST", "/api/channels/deal:7/history").status, 405);
    EXPECT_EQ(call("GET", "/api/channels/deal:7/other").status, 404);
}

TEST_F(ServerApiTest, Subscriptions_AskEveryConnectionOfTheUser) {
    auto r = call("POST", "/api/users/alice/subscriptions", R"({"channel":"deal:9"})");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"userId":"alice","channel":"deal:9","connections":2})");
    EXPECT_EQ(alice->server_subscribed, std::vector<std::string>{"deal:9"});
    EXPECT_EQ(alice2->server_subscribed, std::vector<std::string>{"deal:9"});
    EXPECT_TRUE(bob->server_subscribed.empty());
    r = call("DELETE", "/api/users/alice/subscriptions/deal%3A9");
    EXPECT_EQ(r.body, R"({"userId":"alice","channel":"deal:9","connections":2})");
    EXPECT_EQ(alice->server_unsubscribed, std::vector<std::string>{"deal:9"});
    EXPECT_EQ(call("POST", "/api/users/alice/subscriptions", R"({"channel":"user:bob"})").status, 400);
    EXPECT_EQ(call("POST", "/api/users/alice/subscriptions", R"({})").status, 400);
    EXPECT_EQ(call("DELETE", "/api/users/alice/subscriptions/a%20b").status, 400);
    EXPECT_EQ(call("GET", "/api/users/alice/subscriptions").status, 405);
}

TEST_F(ServerApiTest, NotifyOffline_OnlyForMarkedTypesToUsersWithNoConnection) {
    call("POST", "/api/broadcast",
         R"({"userIds":["alice","carol"],"type":"deal.risk","payload":{"riskLevel":"high"}})");
    ASSERT_EQ(offline.size(), 1U) << "alice is connected, carol is not";
    EXPECT_EQ(offline[0].first, "carol");
    const auto& body = offline[0].second;
    EXPECT_TRUE(body.starts_with(R"({"type":"user.offline_event","userId":"carol","event":{"type":"deal.risk",)"
                                 R"("payload":{"riskLevel":"high"},"channel":"user:carol","epoch":")" +
                                 epoch("user:carol") + R"(","seq":1},"at":)"))
        << body;
    call("POST", "/api/broadcast", R"({"userId":"carol","type":"thread.new","payload":{"threadId":"t"}})");
    EXPECT_EQ(offline.size(), 1U) << "thread.new is not marked notifyOffline";
    EXPECT_EQ(metrics.offline_notifications.load(), 1U);
}

TEST_F(ServerApiTest, Batch_ItemsMayNameAChannel) {
    hub::subscription sub;
    ASSERT_TRUE(hubs.local(0).subscribe(*bob, "deal:2", sub));
    const auto r = call("POST", "/api/batch",
                        R"({"items":[{"channel":"deal:2","type":"t","payload":{}},)"
                        R"({"channel":"bad channel","type":"t","payload":{}}]})");
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.body.starts_with(R"({"results":[{"delivered":1,"channel":"deal:2","epoch":")")) << r.body;
    EXPECT_NE(r.body.find(R"("field":"channel")"), std::string::npos) << r.body;
    EXPECT_EQ(bob->frames.size(), 1U);
    EXPECT_TRUE(hubs.local(0).unsubscribe("deal:2", sub));
}

// ---- presence (docs/presence.md)

TEST_F(ServerApiTest, Presence_OfUsers_OnlineWithConnections_OfflineWithLastSeenAfterTheGrace) {
    users_online.on_interest("carol", true);
    users_online.on_interest("carol", false);
    auto r = call("GET", "/api/presence?userIds=alice,carol,nobody,tenant%2C7");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, R"({"alice":{"online":true,"connections":2},"carol":{"online":true,"connections":0},)"
                      R"("nobody":{"online":false},"tenant,7":{"online":false}})")
        << "carol is within the grace; an encoded comma is part of an id";
    ASSERT_EQ(timers.size(), 1U);
    timers.front()();
    r = call("GET", "/api/presence?userIds=carol");
    EXPECT_TRUE(r.body.starts_with(R"({"carol":{"online":false,"lastSeen":)")) << r.body;
    const std::vector<std::pair<std::string, std::string>> expected{{"presence.online", "carol"},
                                                                    {"presence.offline", "carol"}};
    EXPECT_EQ(notices, expected);
    EXPECT_EQ(call("GET", "/api/presence").status, 400);
    EXPECT_EQ(call("GET", "/api/presence?userIds=a,,b").status, 400);
    EXPECT_EQ(call("POST", "/api/presence?userIds=a").status, 405);
}

TEST_F(ServerApiTest, Presence_AReconnectWithinTheGrace_NeitherGoesOfflineNorOnlineAgain) {
    users_online.on_interest("dave", true);
    users_online.on_interest("dave", false);
    users_online.on_interest("dave", true);
    for (auto& fire : timers) fire();
    const std::vector<std::pair<std::string, std::string>> expected{{"presence.online", "dave"}};
    EXPECT_EQ(notices, expected);
}

TEST_F(ServerApiTest, Presence_OfAChannel_ListsItsUsersUpToTheLimit) {
    const auto join = [&](std::string_view client, std::string_view user) {
        presence.join("thread:9", client, user, std::chrono::hours(1), [](util::result<bool>) {});
    };
    join("1", "alice");
    join("2", "alice");
    join("3", "bob");
    EXPECT_EQ(call("GET", "/api/channels/thread:9/presence").body,
              R"({"channel":"thread:9","users":["alice","bob"],"count":2})");
    join("4", "carol");
    EXPECT_EQ(call("GET", "/api/channels/thread%3A9/presence").body, R"({"channel":"thread:9","count":3})")
        << "past presence.max_list, only the count";
    EXPECT_EQ(call("GET", "/api/channels/empty/presence").body, R"({"channel":"empty","users":[],"count":0})");
}

}  // namespace
}  // namespace zena::api
