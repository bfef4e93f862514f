#include "hub/hub.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "hub/test_connection.hpp"
#include "protocol/envelope.hpp"

namespace zena::hub {
namespace {

using testing::make;

class HubTest : public ::testing::Test {
protected:
    user_registry registry;
    hub h{registry};
    ws::outbound frame{protocol::make_event_frame("thread.new", R"({"threadId":"t"})")};
};

TEST_F(HubTest, SendToUser_ReachesOnlyThatUsersConnections) {
    auto a1 = make(1, "alice"), a2 = make(2, "alice"), b = make(3, "bob");
    h.add(a1);
    h.add(a2);
    h.add(b);
    EXPECT_EQ(h.send_to_user("alice", frame), 2U);
    EXPECT_EQ(a1->frames.size(), 1U);
    EXPECT_EQ(a2->frames.size(), 1U);
    EXPECT_TRUE(b->frames.empty());
    EXPECT_EQ(h.send_to_user("nobody", frame), 0U);
}

TEST_F(HubTest, Send_SharesOneBufferAcrossConnections) {
    auto a1 = make(1, "alice"), a2 = make(2, "alice");
    h.add(a1);
    h.add(a2);
    h.send_to_user("alice", frame);
    ASSERT_EQ(a1->frames.size(), 1U);
    ASSERT_EQ(a2->frames.size(), 1U);
    EXPECT_EQ(a1->frames[0].get(), a2->frames[0].get()) << "encoded once, shared by reference";
}

TEST_F(HubTest, SendToAll_CountsOnlyConnectionsThatTookIt) {
    auto a = make(1, "alice"), b = make(2, "bob");
    b->accept = false;
    h.add(a);
    h.add(b);
    EXPECT_EQ(h.send_to_all(frame), 1U);
}

TEST_F(HubTest, Remove_IsIdempotentAndUpdatesTheRegistry) {
    auto a1 = make(1, "alice"), a2 = make(2, "alice"), b = make(3, "bob");
    h.add(a1);
    h.add(a2);
    h.add(b);
    EXPECT_EQ(registry.connections(), 3U);
    EXPECT_EQ(registry.users(), 2U);
    h.remove(*a1);
    h.remove(*a1);
    EXPECT_EQ(registry.connections_of("alice"), 1U);
    EXPECT_EQ(h.size(), 2U);
    h.remove(*a2);
    EXPECT_EQ(registry.users(), 1U);
    EXPECT_EQ(h.user_connections("alice"), 0U);
    EXPECT_EQ(h.send_to_user("alice", frame), 0U);
    EXPECT_EQ(h.send_to_all(frame), 1U) << "the swap-remove kept bob reachable";
}

TEST_F(HubTest, CloseUser_ClosesEachOfItsConnections) {
    auto a1 = make(1, "alice"), a2 = make(2, "alice"), b = make(3, "bob");
    h.add(a1);
    h.add(a2);
    h.add(b);
    EXPECT_EQ(h.close_user("alice", ws::close_code::disconnected, "bye"), 2U);
    EXPECT_EQ(a1->closed, ws::close_code::disconnected);
    EXPECT_EQ(a2->closed, ws::close_code::disconnected);
    EXPECT_FALSE(b->closed);
}

TEST_F(HubTest, CloseAll_ClosesEveryone) {
    auto a = make(1, "alice"), b = make(2, "bob");
    h.add(a);
    h.add(b);
    EXPECT_EQ(h.close_all(ws::close_code::going_away, "shutdown"), 2U);
    EXPECT_EQ(a->closed, ws::close_code::going_away);
    EXPECT_EQ(b->closed, ws::close_code::going_away);
}

TEST_F(HubTest, Heartbeat_TicksEveryConnectionAndCountsTheDead) {
    auto a = make(1, "alice"), b = make(2, "bob");
    b->alive = false;
    h.add(a);
    h.add(b);
    EXPECT_EQ(h.heartbeat(), 1U);
    EXPECT_EQ(a->heartbeats, 1);
    EXPECT_EQ(b->heartbeats, 1);
}

TEST_F(HubTest, Expire_ClosesOnlyConnectionsPastTheirDeadline_AndMovedDeadlinesHold) {
    auto a = make(1, "alice"), b = make(2, "bob"), c = make(3, "carol");
    h.add(a);
    h.add(b);
    h.add(c);
    h.set_expiry(*a, 100);
    h.set_expiry(*b, 100);
    h.set_expiry(*c, 200);
    h.set_expiry(*b, 300);  // bob refreshed
    EXPECT_EQ(h.expire(99), 0U);
    EXPECT_EQ(h.expire(100), 1U);
    EXPECT_EQ(a->closed, ws::close_code::policy_violation);
    EXPECT_FALSE(b->closed);
    EXPECT_EQ(h.expire(100), 0U) << "each deadline fires once";
    h.remove(*c);  // carol left before her deadline
    EXPECT_EQ(h.expire(250), 0U);
    EXPECT_EQ(h.expire(300), 1U);
    EXPECT_EQ(b->closed, ws::close_code::policy_violation);
    auto stranger = make(42, "dave");
    h.set_expiry(*stranger, 1);  // not here: ignored
    h.remove(*stranger);
    EXPECT_EQ(h.expire(1000), 0U);
}

TEST_F(HubTest, Expire_AfterManyRefreshesAndDepartures_StillFiresEachLiveDeadlineOnce) {
    std::vector<std::shared_ptr<testing::recording_connection>> conns;
    for (connection_id id = 1; id <= 50; ++id) {
        conns.push_back(make(id, "u" + std::to_string(id)));
        h.add(conns.back());
    }
    for (int round = 0; round < 20; ++round) {
        for (auto& c : conns) h.set_expiry(*c, 1000 + round * 10 + static_cast<std::int64_t>(c->id()));
    }
    for (std::size_t i = 25; i < 50; ++i) h.remove(*conns[i]);
    EXPECT_EQ(h.expire(1000 + 19 * 10), 0U) << "every earlier deadline was moved";
    EXPECT_EQ(h.expire(1000 + 19 * 10 + 50), 25U) << "the live ones fire once; the departed do not";
    for (std::size_t i = 0; i < 25; ++i) EXPECT_TRUE(conns[i]->closed) << i;
    for (std::size_t i = 25; i < 50; ++i) EXPECT_FALSE(conns[i]->closed) << i;
    EXPECT_EQ(h.expire(100000), 0U);
}

// The deadline heap against a plain model: random deadlines, refreshes, departures and arrivals;
// every expire() closes exactly the live connections whose deadline has come.
TEST_F(HubTest, Expire_MatchesAModel_UnderRandomRefreshesAndDepartures) {
    std::mt19937 rng(7);
    std::vector<std::shared_ptr<testing::recording_connection>> conns;
    std::map<connection_id, std::int64_t> model;  // live connections with a deadline
    std::set<connection_id> live;
    connection_id next = 1;
    std::int64_t now = 0;
    for (int step = 0; step < 5000; ++step) {
        const auto op = rng() % 10;
        if (op < 3 || live.empty()) {
            conns.push_back(make(next, "u" + std::to_string(next)));
            h.add(conns.back());
            live.insert(next++);
            continue;
        }
        auto it = live.begin();
        std::advance(it, static_cast<long>(rng() % live.size()));
        auto& conn = *conns[*it - 1];
        if (op < 7) {
            const std::int64_t at = now + static_cast<std::int64_t>(rng() % 100);
            h.set_expiry(conn, at);
            model[conn.id()] = at;
        } else if (op < 9) {
            h.remove(conn);
            model.erase(conn.id());
            live.erase(it);
        } else {
            now += static_cast<std::int64_t>(rng() % 20);
            std::vector<connection_id> due;
            for (auto m = model.begin(); m != model.end();) {
                if (m->second > now) {
                    ++m;
                    continue;
                }
                due.push_back(m->first);
                m = model.erase(m);
            }
            ASSERT_EQ(h.expire(now), due.size()) << "step " << step;
            for (const auto id : due) {
                ASSERT_TRUE(conns[id - 1]->closed) << "due: " << id;
                h.remove(*conns[id - 1]);  // as a closed connection leaves
                live.erase(id);
            }
            for (const auto& [id, at] : model) ASSERT_FALSE(conns[id - 1]->closed) << "not yet due: " << id;
        }
    }
}

TEST(UserRegistry, CountsAcrossManyUsers) {
    user_registry registry;
    for (int i = 0; i < 1000; ++i) registry.add("user-" + std::to_string(i % 100));
    EXPECT_EQ(registry.connections(), 1000U);
    EXPECT_EQ(registry.users(), 100U);
    EXPECT_EQ(registry.connections_of("user-7"), 10U);
    for (int i = 0; i < 1000; ++i) registry.remove("user-" + std::to_string(i % 100));
    EXPECT_EQ(registry.connections(), 0U);
    EXPECT_EQ(registry.users(), 0U);
}

}  // namespace
}  // namespace zena::hub
