#include "engine/redis/redis_engine.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "contract/broker_contract.hpp"
#include "contract/history_contract.hpp"
#include "contract/presence_contract.hpp"
#include "contract/redis_server.hpp"
#include "hub/task_thread.hpp"
#include "hub/user_registry.hpp"
#include "redis/connection.hpp"

namespace zena::contract {
namespace {

engine::redis_engine_options options_for(std::string node) {
    auto& server = redis_server::shared();
    EXPECT_TRUE(server.up()) << "redis-server did not start (it must be on PATH)";
    engine::redis_engine_options o;
    o.shards = {server.endpoint()};
    o.prefix = "zena-test";
    o.node_id = std::move(node);
    return o;
}

// The Redis engine's history alone, with hubs of its own (one thread) that nothing holds.
class redis_history_under_test final : public engine::history {
public:
    redis_history_under_test()
        : hubs_({[this](hub::hub_set::task t) { thread_.post(std::move(t)); }}, registry_),
          engine_(options_for("history-test"), hubs_) {}
    void append(std::string_view channel, std::shared_ptr<const engine::event> e, const engine::history_limits& limits,
                append_done done) override {
        engine_.history().append(channel, std::move(e), limits, std::move(done));
    }
    void read(std::string_view channel, std::optional<engine::position> since, std::size_t limit,
              read_done done) override {
        engine_.history().read(channel, std::move(since), limit, std::move(done));
    }
    void top(std::string_view channel, top_done done) override { engine_.history().top(channel, std::move(done)); }

private:
    hub::testing::task_thread thread_;
    hub::user_registry registry_;
    hub::hub_set hubs_;
    engine::redis_engine engine_;
};

// The Redis engine's presence alone, as its history above.
class redis_presence_under_test final : public engine::presence {
public:
    redis_presence_under_test()
        : hubs_({[this](hub::hub_set::task t) { thread_.post(std::move(t)); }}, registry_),
          engine_(options_for("presence-test"), hubs_) {}
    void join(std::string_view channel, std::string_view client, std::string_view user, std::chrono::milliseconds ttl,
              membership_done done) override {
        engine_.presence().join(channel, client, user, ttl, std::move(done));
    }
    void leave(std::string_view channel, std::string_view client, membership_done done) override {
        engine_.presence().leave(channel, client, std::move(done));
    }
    void query(std::string_view channel, query_done done) override {
        engine_.presence().query(channel, std::move(done));
    }
    void users(std::string_view channel, count_done done) override {
        engine_.presence().users(channel, std::move(done));
    }

private:
    hub::testing::task_thread thread_;
    hub::user_registry registry_;
    hub::hub_set hubs_;
    engine::redis_engine engine_;
};

struct redis_presence_factory {
    static std::unique_ptr<engine::presence> make() { return std::make_unique<redis_presence_under_test>(); }
};

struct redis_history_factory {
    static std::unique_ptr<engine::history> make() { return std::make_unique<redis_history_under_test>(); }
};

struct redis_broker_factory {
    static broker_under_test make(hub::hub_set& hubs) {
        static std::atomic<int> nodes{0};
        auto e = std::make_shared<engine::redis_engine>(options_for("node-" + std::to_string(++nodes)), hubs);
        return {std::shared_ptr<engine::history>(e, &e->history()), std::shared_ptr<engine::broker>(e, &e->broker())};
    }
};

// User presence for the backend across nodes: each node an engine of its own on the one Redis,
// with short times so that the grace and a dead node's expiry pass in a test.
class online_node {
public:
    struct notice {
        std::string node;
        std::string user;
        bool online = false;
    };
    struct board {
        std::mutex mutex;
        std::vector<notice> notices;
        std::vector<notice> of(std::string_view user) {
            const std::lock_guard lock{mutex};
            std::vector<notice> out;
            for (const auto& n : notices) {
                if (n.user == user) out.push_back(n);
            }
            return out;
        }
    };

    online_node(std::string prefix, std::string node, board& notices)
        : hubs_({[this](hub::hub_set::task t) { thread_.post(std::move(t)); }}, registry_),
          engine_(options(std::move(prefix), node, notices), hubs_) {}
    void here(std::string_view user, bool present) { engine_.user_here(user, present); }

    static constexpr std::chrono::milliseconds k_ttl{900};
    static constexpr std::chrono::milliseconds k_grace{400};

private:
    static engine::redis_engine_options options(std::string prefix, const std::string& node, board& notices) {
        auto o = options_for(node);
        o.prefix = std::move(prefix);
        o.presence_ttl = k_ttl;
        o.offline_grace = k_grace;
        o.settle_period = std::chrono::milliseconds(50);
        o.on_user = [&notices, node](std::string_view user, bool online) {
            const std::lock_guard lock{notices.mutex};
            notices.notices.push_back({node, std::string{user}, online});
        };
        return o;
    }

    hub::testing::task_thread thread_;
    hub::user_registry registry_;
    hub::hub_set hubs_;
    engine::redis_engine engine_;
};

// Waits (bounded) until `done` holds; false when it never did.
template <typename F>
bool eventually(F done, std::chrono::milliseconds within = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
}

// Each test its own key prefix (a deployment of its own on the shared Redis) and notice board.
class RedisUserPresence : public testing::Test {
protected:
    static std::string fresh_prefix() {
        static std::atomic<int> runs{0};
        return "zena-online-" + std::to_string(::getpid()) + "-" + std::to_string(++runs);
    }
    online_node::board notices;
    const std::string prefix = fresh_prefix();
};

TEST_F(RedisUserPresence, OnlineOnceAcrossNodesAndOfflineOnceAfterTheGraceFromTheLastNode) {
    online_node a{prefix, "a", notices};
    online_node b{prefix, "b", notices};
    a.here("alice", true);
    ASSERT_TRUE(eventually([&] { return notices.of("alice").size() == 1; }));
    b.here("alice", true);
    a.here("alice", false);  // still on b
    std::this_thread::sleep_for(online_node::k_grace * 3);
    auto seen = notices.of("alice");
    ASSERT_EQ(seen.size(), 1U) << "b's connection keeps alice online, announced once";
    EXPECT_TRUE(seen[0].online);
    EXPECT_EQ(seen[0].node, "a");

    const auto left = std::chrono::steady_clock::now();
    b.here("alice", false);
    ASSERT_TRUE(eventually([&] { return notices.of("alice").size() == 2; }));
    EXPECT_GE(std::chrono::steady_clock::now() - left, online_node::k_grace) << "offline only after the grace";
    std::this_thread::sleep_for(online_node::k_grace);
    seen = notices.of("alice");
    ASSERT_EQ(seen.size(), 2U) << "one offline notice for the deployment, not one per node";
    EXPECT_FALSE(seen[1].online);
}

TEST_F(RedisUserPresence, AReconnectOnAnotherNodeInsideTheGraceAnnouncesNothing) {
    online_node a{prefix, "a", notices};
    online_node b{prefix, "b", notices};
    a.here("bob", true);
    ASSERT_TRUE(eventually([&] { return notices.of("bob").size() == 1; }));
    a.here("bob", false);
    std::this_thread::sleep_for(online_node::k_grace / 4);
    b.here("bob", true);  // a reload that landed on another node
    std::this_thread::sleep_for(online_node::k_grace * 3);
    EXPECT_EQ(notices.of("bob").size(), 1U) << "no offline and no second online for a reload";
    b.here("bob", false);
    ASSERT_TRUE(eventually([&] { return notices.of("bob").size() == 2; }));
    EXPECT_FALSE(notices.of("bob")[1].online);
}

TEST_F(RedisUserPresence, TheUsersOfANodeThatStoppedGoOfflineWhenItsHeartbeatIsOld) {
    online_node a{prefix, "a", notices};
    {
        online_node gone{prefix, "gone", notices};
        gone.here("carol", true);
        a.here("dave", true);
        ASSERT_TRUE(eventually([&] { return notices.of("carol").size() == 1 && notices.of("dave").size() == 1; }));
    }  // stops without a departure, as a node killed
    ASSERT_TRUE(eventually([&] { return notices.of("carol").size() == 2; }));
    const auto carol = notices.of("carol");
    EXPECT_FALSE(carol[1].online);
    EXPECT_EQ(carol[1].node, "a") << "announced by a node still running";
    std::this_thread::sleep_for(online_node::k_ttl * 2);
    EXPECT_EQ(notices.of("dave").size(), 1U) << "a's heartbeat keeps its user online past presence_ttl";
    EXPECT_EQ(notices.of("carol").size(), 2U);
}

TEST_F(RedisUserPresence, AUserRedisForgotIsAnnouncedAgainAfterTheNodesNextHeartbeat) {
    online_node a{prefix, "a", notices};
    a.here("erin", true);
    ASSERT_TRUE(eventually([&] { return notices.of("erin").size() == 1; }));
    // Redis loses the data (a restart without persistence): every key of user presence goes.
    std::string error;
    auto c = redis::connection::open(redis_server::shared().endpoint(), std::chrono::milliseconds(1000), error);
    ASSERT_TRUE(c) << error;
    const std::string keys[] = {prefix + ":online:nodes", prefix + ":online:n", prefix + ":online:d",
                                prefix + ":online:t", prefix + ":online:on:a"};
    const std::string_view del[] = {"DEL", keys[0], keys[1], keys[2], keys[3], keys[4]};
    ASSERT_TRUE(c->command(del).ok());
    ASSERT_TRUE(eventually([&] { return notices.of("erin").size() == 2; }));
    EXPECT_TRUE(notices.of("erin")[1].online) << "announced online again, never a silent state";
}

// What the append script leaves in Redis for an idle channel: its events go within max age (and
// 1/16 of it: the TTL is refreshed that rarely), its epoch and seq live on for meta_ttl, and a
// read never shortens that.
class RedisHistoryKeys : public HistoryContract<redis_history_factory> {
protected:
    std::int64_t pttl(const std::string& key) {
        std::string error;
        auto c = redis::connection::open(redis_server::shared().endpoint(), std::chrono::seconds(2), error);
        if (!c) {
            ADD_FAILURE() << error;
            return -3;
        }
        const std::string_view command[] = {"PTTL", key};
        return c->command(command).integer();
    }
    std::string key(const std::string& ch, std::string_view kind) const {
        return "zena-test:{" + ch + "}:" + std::string(kind);
    }
    void del(const std::string& key) {
        std::string error;
        auto c = redis::connection::open(redis_server::shared().endpoint(), std::chrono::seconds(2), error);
        ASSERT_TRUE(c) << error;
        const std::string_view command[] = {"DEL", key};
        ASSERT_TRUE(c->command(command).ok());
    }
};

// The meta key gone alone (evicted, deleted by hand): the read that starts the channel's new
// life drops the old life's latest keys too, or their seqs would delete the new life's events
// without counting them lost.
TEST_F(RedisHistoryKeys, ANewLifeForgetsTheOldLifesLatestKeys) {
    const auto ch = channel("relived");
    const auto old = append_full(ch, labelled_event("old", ws::delivery_class::latest, 7));
    ASSERT_TRUE(old.ok());
    del(key(ch, "m"));
    const auto fresh = read_ok(ch, std::nullopt);
    EXPECT_NE(fresh.top.epoch, old->at.epoch);
    const auto next = append_full(ch, labelled_event("new", ws::delivery_class::latest, 7));
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->at.seq, 1u);
    const auto page = read_ok(ch, engine::position{next->at.epoch, 0});
    EXPECT_TRUE(page.recovered);
    EXPECT_EQ(labels(page), labels_t{"new"}) << "the new life's event was deleted by the old life's key";
}

TEST_F(RedisHistoryKeys, AnIdleChannelsEventsExpireAfterMaxAgeAndItsPositionOutlivesThem) {
    using namespace std::chrono_literals;
    const auto ch = channel("idle");
    const engine::history_limits limits{.max_events = 10, .max_age = 800ms};
    const auto meta_ttl = engine::redis_engine_options{}.meta_ttl.count();
    const auto first = append_ok(ch, "a", limits);
    append_ok(ch, "b", limits);
    const auto stream_left = pttl(key(ch, "h"));
    EXPECT_GT(stream_left, 0);
    EXPECT_LE(stream_left, 800 + 50);
    const auto meta_left = pttl(key(ch, "m"));
    EXPECT_GT(meta_left, meta_ttl);
    EXPECT_LE(meta_left, meta_ttl + 800 + 50);
    read_ok(ch, first);
    EXPECT_GE(pttl(key(ch, "m")), meta_left - 100) << "a read shortened the channel's TTL";
    EXPECT_TRUE(eventually([&] { return pttl(key(ch, "h")) == -2; }, 3s)) << "the events outlived max age";
    const auto top = top_ok(ch);
    EXPECT_EQ(top.epoch, first.epoch);
    EXPECT_EQ(top.seq, 2u);
    const auto page = read_ok(ch, first);
    EXPECT_FALSE(page.recovered);
    EXPECT_TRUE(page.events.empty());
}

// engine::broker::coming(), which the event loops wait for: back to 0 as soon as a publish is
// answered, delivered or failed. A failed publish sends no copy; still counted, it would hold
// every large flush for its whole budget until the engine's timeout.
class RedisBrokerComing : public BrokerContract<redis_broker_factory> {
protected:
    engine::publication stored_to_alice(std::string_view label) const {
        auto p = to_users({"alice"}, label);
        p.history = true;
        p.limits = {.max_events = 10, .max_age = std::chrono::minutes(1)};
        return p;
    }
};

TEST_F(RedisBrokerComing, BackToZeroOnceEachPublishIsAnswered_DeliveredOrFailed) {
    connect("alice", 0);
    connect("alice", 1);
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(publish({stored_to_alice("n" + std::to_string(i))}).ok());
        EXPECT_EQ(engine_.broker->coming(), 0u) << "after publish " << i;
    }
    std::string error;
    auto c = redis::connection::open(redis_server::shared().endpoint(), std::chrono::seconds(2), error);
    ASSERT_TRUE(c) << error;
    const std::string_view flush[] = {"SCRIPT", "FLUSH"};
    ASSERT_TRUE(c->command(flush).ok());
    EXPECT_FALSE(publish({stored_to_alice("refused: NOSCRIPT")}).ok());
    EXPECT_EQ(engine_.broker->coming(), 0u) << "a failed publish is still counted as coming";
    settle();
}
}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Redis, HistoryContract, redis_history_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, BrokerContract, redis_broker_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, PresenceContract, redis_presence_factory);

}  // namespace zena::contract
