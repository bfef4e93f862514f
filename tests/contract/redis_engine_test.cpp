#include "engine/redis/redis_engine.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "contract/broker_contract.hpp"
#include "contract/history_contract.hpp"
#include "contract/presence_contract.hpp"
#include "contract/redis_server.hpp"
#include "hub/task_thread.hpp"
#include "hub/user_registry.hpp"

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

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Redis, HistoryContract, redis_history_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, BrokerContract, redis_broker_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, PresenceContract, redis_presence_factory);

}  // namespace zena::contract
