#include "hub/hub.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

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

TEST_F(HubTest, SendToAll_ReachesTheConnectionsAtTheVisit) {
    auto a = make(1, "alice"), b = make(2, "bob");
    b->accept = false;
    h.add(a);
    h.add(b);
    EXPECT_EQ(h.send_to_all(frame), 2U) << "the connections here to get it";
    EXPECT_TRUE(a->frames.empty()) << "queued at the turn's end, not at once";
    EXPECT_EQ(hub::pending_connections(), 2U);
    EXPECT_EQ(hub::pending_frames(), 2U);
    h.visit();
    EXPECT_EQ(a->frames.size(), 1U);
    EXPECT_EQ(h.delivered(), 1U) << "the visit counts the connections that took it";
    EXPECT_EQ(hub::pending_connections(), 0U);
    EXPECT_EQ(hub::pending_frames(), 0U);
}

TEST_F(HubTest, SendToAll_ManyInATurn_ReachEachConnectionInTheirOrder) {
    auto a = make(1, "alice"), b = make(2, "bob");
    h.add(a);
    h.add(b);
    std::vector<ws::outbound> sent;
    for (int i = 0; i < 3; ++i) {
        sent.push_back({protocol::make_event_frame("thread.new", R"({"n":)" + std::to_string(i) + "}")});
        h.send_to_all(sent.back());
    }
    EXPECT_EQ(hub::pending_frames(), 6U);
    hub::visit_pending();  // as the event loop does before its flush
    for (const auto& c : {a, b}) {
        ASSERT_EQ(c->frames.size(), 3U);
        for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(c->frames[i].get(), sent[i].frame.get());
    }
    EXPECT_EQ(h.delivered(), 6U);
    hub::visit_pending();
    EXPECT_EQ(a->frames.size(), 3U) << "a visit gives each broadcast once";
}

TEST_F(HubTest, SendToAll_WithNoConnection_WaitsForNoVisit) {
    EXPECT_EQ(h.send_to_all(frame), 0U);
    EXPECT_EQ(hub::pending_connections(), 0U);
}

TEST_F(HubTest, OtherSendsAndChanges_GiveTheWaitingBroadcastsFirst) {
    auto a = make(1, "alice"), b = make(2, "bob");
    h.add(a);
    h.add(b);
    const ws::outbound later{protocol::make_event_frame("task.new", "{}")};
    h.send_to_all(frame);
    h.send_to_user("alice", later);
    ASSERT_EQ(a->frames.size(), 2U);
    EXPECT_EQ(a->frames[0].get(), frame.frame.get()) << "the broadcast was made first";
    EXPECT_EQ(a->frames[1].get(), later.frame.get());
    EXPECT_EQ(b->frames.size(), 1U);

    h.send_to_all(frame);
    h.send_to_channel("user:bob", later);
    EXPECT_EQ(b->frames.size(), 3U);
    EXPECT_EQ(b->frames[2].get(), later.frame.get());

    // A connection that arrives after a broadcast does not get it.
    h.send_to_all(frame);
    auto c = make(3, "carol");
    h.add(c);
    h.visit();
    EXPECT_TRUE(c->frames.empty());
    EXPECT_EQ(a->frames.size(), 4U);
}

// Each of the hub's other sends and changes gives the waiting broadcasts first, as queuing them
// at once did: a close then finds the broadcast queued before it (a real connection's close
// drops the frames still waiting, as it did), and a send to someone else does not overtake it.
// (A connection's own send visits too: session::client's test.)
TEST_F(HubTest, EveryOtherSendAndChange_GivesTheWaitingBroadcastsFirst) {
    auto a = make(1, "alice");
    h.add(a);
    std::shared_ptr<testing::recording_connection> extra;
    const std::vector<std::pair<std::string, std::function<void()>>> operations = {
        {"send_to_user", [&] { h.send_to_user("nobody", frame); }},
        {"send_to_channel", [&] { h.send_to_channel("deal:1", frame); }},
        {"send_to_channel, personal", [&] { h.send_to_channel("user:nobody", frame); }},
        {"send_to_channel, with an exclusion",
         [&] {
             h.send_to_channel("deal:1", frame, {}, 0, {"nobody", 0});
         }},
        {"subscribe_user", [&] { h.subscribe_user("nobody", "deal:1"); }},
        {"unsubscribe_user", [&] { h.unsubscribe_user("nobody", "deal:1"); }},
        {"add", [&] { h.add(extra = make(2, "zed")); }},
        {"remove", [&] { h.remove(*extra); }},
        {"heartbeat", [&] { h.heartbeat(); }},
        {"set_expiry and expire",
         [&] {
             h.set_expiry(*a, 100);
             h.expire(0);
         }},
        {"close_user", [&] { h.close_user("nobody", ws::close_code::disconnected, "bye"); }},
        {"close_all", [&] { h.close_all(ws::close_code::going_away, "bye"); }},
    };
    for (const auto& [name, operation] : operations) {
        const auto before = a->frames.size();
        h.send_to_all(frame);
        operation();
        EXPECT_EQ(a->frames.size(), before + 1) << name;
        EXPECT_EQ(hub::pending_connections(), 0U) << name;
    }
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
    EXPECT_EQ(h.send_to_all(frame), 1U);
    h.visit();
    EXPECT_EQ(b->frames.size(), 1U) << "the swap-remove kept bob reachable";
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

// ---- channels (docs/channels.md)

namespace zena::hub {
namespace {

class HubChannelTest : public HubTest {
protected:
    // A connection's hold on a channel, owned here for the test (the session owns it in the server).
    struct held {
        std::shared_ptr<testing::recording_connection> conn;
        subscription sub;
    };
    std::vector<std::unique_ptr<held>> holds;
    held& hold(const std::shared_ptr<testing::recording_connection>& conn, std::string_view channel) {
        holds.push_back(std::make_unique<held>(held{conn, {}}));
        EXPECT_TRUE(h.subscribe(*conn, channel, holds.back()->sub));
        return *holds.back();
    }
};

TEST_F(HubChannelTest, SendToChannel_ReachesItsHoldersOnly_AndTheRegistryCountsTheChannelOnce) {
    std::vector<std::pair<std::string, bool>> interest;
    registry.on_channel_interest([&](std::string_view c, bool present) { interest.emplace_back(c, present); });
    auto a = make(1, "alice"), b = make(2, "bob"), c = make(3, "carol");
    h.add(a);
    h.add(b);
    h.add(c);
    auto& ha = hold(a, "deal:1");
    auto& hb = hold(b, "deal:1");
    hold(c, "deal:2");
    EXPECT_EQ(h.channel_holders("deal:1"), 2U);
    EXPECT_EQ(registry.channels(), 2U);
    EXPECT_EQ(h.send_to_channel("deal:1", frame, "e1", 1), 2U);
    EXPECT_EQ(a->frames.size(), 1U);
    EXPECT_EQ(b->frames.size(), 1U);
    EXPECT_TRUE(c->frames.empty());
    EXPECT_EQ(h.send_to_channel("nobody:here", frame), 0U);

    EXPECT_FALSE(h.subscribe(*a, "deal:1", ha.sub)) << "already indexed";
    EXPECT_TRUE(h.unsubscribe("deal:1", ha.sub));
    EXPECT_FALSE(h.unsubscribe("deal:1", ha.sub)) << "idempotent";
    EXPECT_EQ(h.send_to_channel("deal:1", frame, "e1", 2), 1U);
    EXPECT_EQ(a->frames.size(), 1U) << "nothing after leaving";
    EXPECT_TRUE(h.unsubscribe("deal:1", hb.sub));
    EXPECT_EQ(h.channel_holders("deal:1"), 0U);
    EXPECT_EQ(registry.channels(), 1U);
    const std::vector<std::pair<std::string, bool>> expected{{"deal:1", true}, {"deal:2", true}, {"deal:1", false}};
    EXPECT_EQ(interest, expected);
}

TEST_F(HubChannelTest, Unsubscribe_SwapRemovesAndKeepsTheOthersReachable) {
    std::vector<std::shared_ptr<testing::recording_connection>> conns;
    for (int i = 0; i < 50; ++i) {
        conns.push_back(make(static_cast<connection_id>(i + 1), "u" + std::to_string(i)));
        h.add(conns.back());
        hold(conns.back(), "room");
    }
    std::mt19937 rng(7);
    std::set<std::size_t> left;
    while (left.size() < 25) {
        const auto i = static_cast<std::size_t>(rng() % conns.size());
        if (left.insert(i).second) EXPECT_TRUE(h.unsubscribe("room", holds[i]->sub));
    }
    EXPECT_EQ(h.send_to_channel("room", frame, "e", 1), 25U);
    for (std::size_t i = 0; i < conns.size(); ++i) EXPECT_EQ(conns[i]->frames.size(), left.count(i) ? 0U : 1U) << i;
}

TEST_F(HubChannelTest, PersonalChannel_GoesToEveryConnectionOfTheUser) {
    auto a1 = make(1, "alice"), a2 = make(2, "alice"), b = make(3, "bob");
    h.add(a1);
    h.add(a2);
    h.add(b);
    EXPECT_EQ(h.send_to_channel("user:alice", frame, "e", 1), 2U);
    EXPECT_TRUE(b->frames.empty());
}

TEST_F(HubChannelTest, Gate_HoldsWhileReplaying_ThenDropsTheReplayedAndPassesTheNewer) {
    auto a = make(1, "alice");
    h.add(a);
    auto& ha = hold(a, "deal:1");
    ha.sub.gate = std::make_unique<replay_gate>();
    const ws::outbound e3{protocol::make_event_frame("x", "3")}, e4{protocol::make_event_frame("x", "4")};
    EXPECT_EQ(h.send_to_channel("deal:1", e3, "ep", 3), 1U) << "held counts as taken";
    EXPECT_TRUE(a->frames.empty()) << "held while the replay is prepared";
    ASSERT_EQ(ha.sub.gate->held.size(), 1U);
    // The replay reached seq 3: held and later live events at or below it are duplicates.
    ha.sub.gate->held.clear();
    ha.sub.gate->holding = false;
    ha.sub.gate->epoch = "ep";
    ha.sub.gate->floor = 3;
    EXPECT_EQ(h.send_to_channel("deal:1", e3, "ep", 3), 0U) << "a duplicate of the replay";
    EXPECT_EQ(h.send_to_channel("deal:1", e3, "other", 2), 1U) << "another epoch is new";
    EXPECT_EQ(ha.sub.gate, nullptr) << "the first newer stored event ends the gate";
    EXPECT_EQ(h.send_to_channel("deal:1", e4, "ep", 1), 1U) << "no gate: everything passes";
    EXPECT_EQ(a->frames.size(), 2U);
}

TEST_F(HubChannelTest, SubscribeUser_AsksEveryConnectionOfTheUser) {
    auto a1 = make(1, "alice"), a2 = make(2, "alice"), b = make(3, "bob");
    h.add(a1);
    h.add(a2);
    h.add(b);
    a2->refuse_server = true;
    EXPECT_EQ(h.subscribe_user("alice", "deal:9"), 1U);
    EXPECT_EQ(a1->server_subscribed, std::vector<std::string>{"deal:9"});
    EXPECT_TRUE(b->server_subscribed.empty());
    EXPECT_EQ(h.unsubscribe_user("alice", "deal:9"), 2U);
    EXPECT_EQ(h.subscribe_user("nobody", "deal:9"), 0U);
}

}  // namespace
}  // namespace zena::hub
