#pragma once
// What every engine::presence must do, as a typed GoogleTest suite that each implementation
// instantiates with a factory:
//
//     struct memory_presence_factory {
//         static std::unique_ptr<engine::presence> make();  // a fresh implementation
//     };
//     INSTANTIATE_TYPED_TEST_SUITE_P(Memory, PresenceContract, memory_presence_factory);
//
// As the history contract: `make` once per test, channels under contract::unique_prefix(), each
// `done` awaited at most contract::k_reply_timeout and called exactly once, and expiry tested
// with real short durations (a few hundred ms in all).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <concepts>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "contract/async_reply.hpp"
#include "engine/presence.hpp"

namespace zena::contract {

template <typename F>
concept presence_factory = requires {
    { F::make() } -> std::convertible_to<std::unique_ptr<engine::presence>>;
};

template <presence_factory Factory>
class PresenceContract : public ::testing::Test {
protected:
    using users_t = std::map<std::string, std::size_t, std::less<>>;
    static constexpr std::chrono::milliseconds k_long{60'000};  // outlives any test

    void TearDown() override { replies_.expect_each_called_once(); }

    std::string channel(std::string_view name) const { return prefix_ + std::string(name); }

    // Whether the user arrived (see engine::presence::membership_done); an error fails the test.
    bool join(const std::string& ch, std::string_view client, std::string_view user,
              std::chrono::milliseconds ttl = k_long) {
        auto r = replies_.make<util::result<bool>>();
        presence_->join(ch, client, user, ttl, r.callback());
        return answer("join", r.wait());
    }

    // Whether the user left with this client; an error fails the test.
    bool leave(const std::string& ch, std::string_view client) {
        auto r = replies_.make<util::result<bool>>();
        presence_->leave(ch, client, r.callback());
        return answer("leave", r.wait());
    }

    static bool answer(std::string_view call, const std::optional<util::result<bool>>& r) {
        if (!r) return false;
        if (!r->ok()) {
            ADD_FAILURE() << call << " answered an error: " << r->message();
            return false;
        }
        return r->value();
    }

    engine::presence_state query(const std::string& ch) {
        auto r = replies_.make<util::result<engine::presence_state>>();
        presence_->query(ch, r.callback());
        auto s = r.wait();
        if (!s) return {};
        if (!s->ok()) {
            ADD_FAILURE() << "query answered an error: " << s->message();
            return {};
        }
        return std::move(*s).value();
    }

    std::size_t users(const std::string& ch) {
        auto r = replies_.make<util::result<std::size_t>>();
        presence_->users(ch, r.callback());
        auto n = r.wait();
        if (!n) return SIZE_MAX;
        if (!n->ok()) {
            ADD_FAILURE() << "users answered an error: " << n->message();
            return SIZE_MAX;
        }
        return n->value();
    }

    std::unique_ptr<engine::presence> presence_ = Factory::make();
    replies replies_;
    std::string prefix_ = unique_prefix();
};

TYPED_TEST_SUITE_P(PresenceContract);

TYPED_TEST_P(PresenceContract, Query_UnknownChannel_HasNoMembers) {
    const auto state = this->query(this->channel("nobody"));
    EXPECT_TRUE(state.users.empty());
    EXPECT_EQ(state.clients, 0U);
}

TYPED_TEST_P(PresenceContract, Users_CountsUsersNotClients_AsQueryDoes) {
    const auto ch = this->channel("count");
    EXPECT_EQ(this->users(ch), 0U);
    this->join(ch, "n1-c1", "alice");
    this->join(ch, "n1-c2", "alice");
    this->join(ch, "n2-c1", "bob");
    EXPECT_EQ(this->users(ch), 2U);
    EXPECT_EQ(this->users(ch), this->query(ch).users.size());
    this->leave(ch, "n2-c1");
    EXPECT_EQ(this->users(ch), 1U);
}

TYPED_TEST_P(PresenceContract, Join_ThenQuery_ListsTheUserWithOneClient) {
    const auto ch = this->channel("a");
    EXPECT_TRUE(this->join(ch, "n1-c1", "alice")) << "the user's first client: she arrives";
    const auto state = this->query(ch);
    EXPECT_EQ(state.users, (typename TestFixture::users_t{{"alice", 1}}));
    EXPECT_EQ(state.clients, 1U);
}

TYPED_TEST_P(PresenceContract, Join_SameClientAgain_RefreshesWithoutCountingTwice) {
    const auto ch = this->channel("a");
    EXPECT_TRUE(this->join(ch, "n1-c1", "alice"));
    EXPECT_FALSE(this->join(ch, "n1-c1", "alice")) << "a refresh is no arrival";
    const auto state = this->query(ch);
    EXPECT_EQ(state.users, (typename TestFixture::users_t{{"alice", 1}}));
    EXPECT_EQ(state.clients, 1U);
}

TYPED_TEST_P(PresenceContract, Query_CountsEachUsersClients) {
    const auto ch = this->channel("a");
    EXPECT_TRUE(this->join(ch, "n1-c1", "alice"));
    EXPECT_FALSE(this->join(ch, "n2-c7", "alice")) << "a second tab, on another node: alice is already there";
    EXPECT_TRUE(this->join(ch, "n1-c2", "bob"));
    const auto state = this->query(ch);
    EXPECT_EQ(state.users, (typename TestFixture::users_t{{"alice", 2}, {"bob", 1}}));
    EXPECT_EQ(state.clients, 3U);
}

TYPED_TEST_P(PresenceContract, Leave_RemovesTheClientAndTheUserWithItsLastClient) {
    const auto ch = this->channel("a");
    EXPECT_TRUE(this->join(ch, "n1-c1", "alice"));
    EXPECT_FALSE(this->join(ch, "n1-c2", "alice"));
    EXPECT_TRUE(this->join(ch, "n1-c3", "bob"));
    EXPECT_FALSE(this->leave(ch, "n1-c1")) << "alice still has a tab open";
    auto state = this->query(ch);
    EXPECT_EQ(state.users, (typename TestFixture::users_t{{"alice", 1}, {"bob", 1}}));
    EXPECT_EQ(state.clients, 2U);
    EXPECT_TRUE(this->leave(ch, "n1-c2")) << "alice's last tab: she leaves";
    state = this->query(ch);
    EXPECT_EQ(state.users, (typename TestFixture::users_t{{"bob", 1}}));
    EXPECT_EQ(state.clients, 1U);
    EXPECT_TRUE(this->leave(ch, "n1-c3"));
    state = this->query(ch);
    EXPECT_TRUE(state.users.empty());
    EXPECT_EQ(state.clients, 0U);
}

TYPED_TEST_P(PresenceContract, Leave_AbsentClient_IsNoError) {
    const auto ch = this->channel("a");
    EXPECT_FALSE(this->leave(this->channel("never-joined"), "n1-c1"));
    EXPECT_TRUE(this->join(ch, "n1-c1", "alice"));
    EXPECT_FALSE(this->leave(ch, "n1-c9")) << "a client that never joined: nobody left";
    EXPECT_TRUE(this->leave(ch, "n1-c1"));
    EXPECT_FALSE(this->leave(ch, "n1-c1")) << "already gone: alice left once";
    EXPECT_EQ(this->query(ch).clients, 0U);
}

TYPED_TEST_P(PresenceContract, Join_SameClientAsAnotherUser_MovesTheClient) {
    const auto ch = this->channel("a");
    EXPECT_TRUE(this->join(ch, "n1-c1", "alice"));
    EXPECT_TRUE(this->join(ch, "n1-c1", "bob")) << "the answer is the new user's";
    const auto state = this->query(ch);
    EXPECT_EQ(state.users, (typename TestFixture::users_t{{"bob", 1}}));
    EXPECT_EQ(state.clients, 1U);
}

TYPED_TEST_P(PresenceContract, Expiry_WithoutRefresh_TheEntryDisappears) {
    using namespace std::chrono_literals;
    const auto ch = this->channel("a");
    EXPECT_TRUE(this->join(ch, "n1-c1", "alice", 150ms));
    EXPECT_TRUE(this->join(ch, "n1-c2", "bob"));
    EXPECT_EQ(this->query(ch).clients, 2U);
    std::this_thread::sleep_for(300ms);
    const auto state = this->query(ch);
    EXPECT_EQ(state.users, (typename TestFixture::users_t{{"bob", 1}}));
    EXPECT_EQ(state.clients, 1U);
    EXPECT_FALSE(this->leave(ch, "n1-c1")) << "leaving after expiry is no error either, and nobody left";
    EXPECT_TRUE(this->join(ch, "n1-c3", "alice")) << "alice's only client expired: she arrives again";
    EXPECT_FALSE(this->join(ch, "n1-c4", "bob")) << "bob's client is live";
}

TYPED_TEST_P(PresenceContract, Refresh_KeepsTheEntryAliveUntilTtlAfterTheLastJoin) {
    using namespace std::chrono_literals;
    const auto ch = this->channel("a");
    constexpr auto ttl = 300ms;
    EXPECT_TRUE(this->join(ch, "n1-c1", "alice", ttl));
    std::this_thread::sleep_for(180ms);
    EXPECT_FALSE(this->join(ch, "n1-c1", "alice", ttl)) << "a refresh of a live client";
    std::this_thread::sleep_for(180ms);  // 360 ms after the first join, 180 after the refresh
    EXPECT_EQ(this->query(ch).users, (typename TestFixture::users_t{{"alice", 1}}));
    std::this_thread::sleep_for(250ms);  // 430 ms after the refresh
    const auto state = this->query(ch);
    EXPECT_TRUE(state.users.empty());
    EXPECT_EQ(state.clients, 0U);
}

TYPED_TEST_P(PresenceContract, Channels_AreIndependent) {
    const auto x = this->channel("x");
    const auto y = this->channel("y");
    EXPECT_TRUE(this->join(x, "n1-c1", "alice"));
    EXPECT_TRUE(this->join(y, "n1-c1", "alice")) << "arriving in x is not being in y";
    EXPECT_TRUE(this->join(y, "n1-c2", "bob"));
    EXPECT_EQ(this->query(x).users, (typename TestFixture::users_t{{"alice", 1}}));
    EXPECT_EQ(this->query(y).clients, 2U);
    EXPECT_TRUE(this->leave(y, "n1-c1")) << "leaving y, whatever x holds";
    EXPECT_EQ(this->query(x).users, (typename TestFixture::users_t{{"alice", 1}}));
    EXPECT_EQ(this->query(y).users, (typename TestFixture::users_t{{"bob", 1}}));
}

TYPED_TEST_P(PresenceContract, Join_FromFourThreads_CountsEveryClient) {
    const auto ch = this->channel("busy");
    constexpr int k_threads = 4;
    constexpr int k_each = 50;
    std::atomic<int> arrivals{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < k_threads; ++t) {
            threads.emplace_back([this, &ch, &arrivals, t] {
                for (int i = 0; i < k_each; ++i) {
                    if (this->join(ch, "n" + std::to_string(t) + "-c" + std::to_string(i),
                                   "user" + std::to_string(t))) {
                        ++arrivals;
                    }
                }
            });
        }
    }
    EXPECT_EQ(arrivals.load(), k_threads) << "each user arrives once, with its first client";
    const auto state = this->query(ch);
    EXPECT_EQ(state.clients, std::size_t{k_threads * k_each});
    ASSERT_EQ(state.users.size(), std::size_t{k_threads});
    for (const auto& [user, clients] : state.users) EXPECT_EQ(clients, std::size_t{k_each}) << user;
}

TYPED_TEST_P(PresenceContract, Done_MayCallThePresenceAgain) {
    // An implementation that called done with its lock held would deadlock here.
    const auto ch = this->channel("a");
    auto outer = this->replies_.template make<util::result<bool>>();
    auto inner = this->replies_.template make<util::result<engine::presence_state>>();
    auto* p = this->presence_.get();
    std::promise<void> finished;
    auto finished_future = finished.get_future();
    std::thread caller([&] {
        p->join(ch, "n1-c1", "alice", TestFixture::k_long, [&, forward = outer.callback()](util::result<bool> s) {
            p->query(ch, inner.callback());
            forward(std::move(s));
        });
        finished.set_value();
    });
    if (finished_future.wait_for(k_reply_timeout) != std::future_status::ready) {
        ADD_FAILURE() << "a call from inside done did not return: done was called with a lock held";
        caller.detach();
        (void)this->presence_.release();  // still in use by the stuck thread: leak it
        return;
    }
    caller.join();
    const auto joined = outer.wait();
    const auto state = inner.wait();
    ASSERT_TRUE(joined && state);
    ASSERT_TRUE(joined->ok());
    EXPECT_TRUE(joined->value());
    ASSERT_TRUE(state->ok());
    EXPECT_EQ(state->value().clients, 1U);
}

TYPED_TEST_P(PresenceContract, ManyClients_JoinMoveAndLeaveInAnyOrder_KeepEveryCountExact) {
    // Enough clients that an implementation's tables grow, shrink and reuse what left, with
    // numeric ids (as the server's sessions give) and named ones side by side.
    const auto ch = this->channel("many");
    constexpr int k_clients = 240;
    constexpr int k_users = 24;
    const auto client = [](int i) { return i % 3 == 0 ? "n1-c" + std::to_string(i) : std::to_string(1000 + i); };
    // Client i is user i % k_users's; names of several lengths.
    const auto user = [](int i) {
        return "user-" + std::to_string(i % k_users) + std::string(static_cast<std::size_t>(i % k_users % 5), 'x');
    };
    // A client is kept through the middle of the test when it is in an even block of k_users.
    const auto kept = [](int i) { return (i / k_users) % 2 == 0; };
    typename TestFixture::users_t expected;
    int arrivals = 0;
    for (int i = 0; i < k_clients; ++i) {
        arrivals += this->join(ch, client(i), user(i)) ? 1 : 0;
        ++expected[user(i)];
    }
    EXPECT_EQ(arrivals, k_users) << "each user arrives with its first client only";
    EXPECT_EQ(this->query(ch).users, expected);

    // Half the clients leave, from the end: nobody's last one.
    for (int i = k_clients - 1; i >= 0; --i) {
        if (kept(i)) continue;
        EXPECT_FALSE(this->leave(ch, client(i))) << client(i);
        --expected[user(i)];
    }
    auto state = this->query(ch);
    EXPECT_EQ(state.users, expected);
    EXPECT_EQ(state.clients, std::size_t{k_clients / 2});
    EXPECT_EQ(this->users(ch), std::size_t{k_users});

    // The clients of the first user move to a new one: she leaves unannounced, he arrives once.
    int moved_arrivals = 0;
    for (int i = 0; i < k_clients; ++i) {
        if (!kept(i) || i % k_users != 0) continue;
        moved_arrivals += this->join(ch, client(i), "newcomer") ? 1 : 0;
        --expected[user(i)];
        ++expected["newcomer"];
    }
    EXPECT_EQ(moved_arrivals, 1);
    std::erase_if(expected, [](const auto& kv) { return kv.second == 0; });
    EXPECT_EQ(this->query(ch).users, expected);

    // The rest leave in another order; each user's last client says so, once.
    int departures = 0;
    for (int i = 0; i < k_clients; ++i) {
        if (kept(i) && i % 4 == 0) departures += this->leave(ch, client(i)) ? 1 : 0;
    }
    for (int i = k_clients - 1; i >= 0; --i) {
        if (kept(i) && i % 4 != 0) departures += this->leave(ch, client(i)) ? 1 : 0;
    }
    EXPECT_EQ(departures, static_cast<int>(expected.size())) << "one departure per user left";
    state = this->query(ch);
    EXPECT_TRUE(state.users.empty());
    EXPECT_EQ(state.clients, 0U);
    EXPECT_TRUE(this->join(ch, client(7), user(7))) << "an emptied channel starts afresh";
}

REGISTER_TYPED_TEST_SUITE_P(PresenceContract, Query_UnknownChannel_HasNoMembers,
                            Users_CountsUsersNotClients_AsQueryDoes, Join_ThenQuery_ListsTheUserWithOneClient,
                            Join_SameClientAgain_RefreshesWithoutCountingTwice, Query_CountsEachUsersClients,
                            Leave_RemovesTheClientAndTheUserWithItsLastClient, Leave_AbsentClient_IsNoError,
                            Join_SameClientAsAnotherUser_MovesTheClient, Expiry_WithoutRefresh_TheEntryDisappears,
                            Refresh_KeepsTheEntryAliveUntilTtlAfterTheLastJoin, Channels_AreIndependent,
                            Join_FromFourThreads_CountsEveryClient, Done_MayCallThePresenceAgain,
                            ManyClients_JoinMoveAndLeaveInAnyOrder_KeepEveryCountExact);

}  // namespace zena::contract
