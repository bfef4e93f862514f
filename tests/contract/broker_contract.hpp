#pragma once
// What every engine::broker must do, as a typed GoogleTest suite that each implementation
// instantiates with a factory:
//
//     struct memory_broker_factory {
//         // A fresh engine delivering to `hubs`: its broker, and the history that broker appends
//         // to (the one the node's readers would use).
//         static broker_under_test make(hub::hub_set& hubs);
//     };
//     INSTANTIATE_TYPED_TEST_SUITE_P(Memory, BrokerContract, memory_broker_factory);
//
// The hubs are real (hub::hub over two threads of their own, hub::testing::task_thread), and
// the connections record what they are handed. Every test names its users under
// contract::unique_prefix(), so that tests against a shared engine (one Redis) never see each
// other's channels. A broker that routes by interest (Redis) is told, as a node would be, when a
// user's first connection arrives (the hubs' registry reports it); the tests wait for the
// subscription like a client's first event would.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <concepts>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "contract/async_reply.hpp"
#include "engine/broker.hpp"
#include "engine/history.hpp"
#include "hub/hub_set.hpp"
#include "hub/task_thread.hpp"
#include "hub/test_connection.hpp"
#include "protocol/channel.hpp"
#include "protocol/envelope.hpp"

namespace zena::contract {

struct broker_under_test {
    std::shared_ptr<engine::history> history;
    std::shared_ptr<engine::broker> broker;  // may hold `history`: destroyed first
};

template <typename F>
concept broker_factory = requires(hub::hub_set& hubs) {
    { F::make(hubs) } -> std::convertible_to<broker_under_test>;
};

template <broker_factory Factory>
class BrokerContract : public ::testing::Test {
protected:
    static constexpr std::size_t k_threads = 2;
    using outcomes = util::result<std::vector<engine::publish_outcome>>;

    BrokerContract() {
        std::vector<hub::hub_set::post_fn> posts;
        for (std::size_t i = 0; i < k_threads; ++i) {
            threads_.push_back(std::make_unique<hub::testing::task_thread>());
            posts.emplace_back([t = threads_.back().get()](hub::hub_set::task task) { t->post(std::move(task)); });
        }
        hubs_ = std::make_unique<hub::hub_set>(std::move(posts), registry_);
        engine_ = Factory::make(*hubs_);
        // Not a shared_ptr: the engine must go with engine_, before hubs_ (a Pub/Sub thread of
        // the Redis engine may be handing a late copy to the hubs until it stops).
        registry_.on_interest([broker = engine_.broker.get()](std::string_view user, bool present) {
            const auto channel = protocol::personal_channel(user);
            if (present) {
                broker->subscribe(channel);
            } else {
                broker->unsubscribe(channel);
            }
        });
    }

    ~BrokerContract() override {
        // Connections leave their hubs on their own threads, then the threads stop.
        for (std::size_t i = 0; i < k_threads; ++i) {
            on_thread(i, [this, i] {
                for (auto& c : connections_[i]) hubs_->local(i).remove(*c);
            });
        }
        threads_.clear();
    }

    void TearDown() override { replies_.expect_each_called_once(); }

    std::string user(std::string_view name) const { return prefix_ + std::string(name); }

    // Runs `fn` on hub thread `i` and waits for it.
    template <typename Fn>
    void on_thread(std::size_t i, Fn fn) {
        std::promise<void> done;
        threads_[i]->post([&] {
            fn();
            done.set_value();
        });
        done.get_future().wait();
    }

    // A connection of `name` on hub thread `i`. As a session's welcome does, it then reads its
    // personal channel's position: an engine that routes by interest answers once this node
    // receives the channel's publications.
    std::shared_ptr<hub::testing::recording_connection> connect(std::string_view name, std::size_t i) {
        auto c = hub::testing::make(next_id_++, user(name));
        on_thread(i, [&] { hubs_->local(i).add(c); });
        connections_[i].push_back(c);
        auto top = replies_.make<util::result<engine::position>>();
        engine_.history->top(protocol::personal_channel(user(name)), top.callback());
        const auto at = top.wait();
        EXPECT_TRUE(at && at->ok()) << "the channel's position, once subscribed";
        return c;
    }

    static std::shared_ptr<const engine::event> make_event(std::string_view label) {
        auto e = std::make_shared<engine::event>();
        e->type = "contract.test";
        e->payload = "\"" + std::string(label) + "\"";
        // The frame of an announcement to everyone; on channels, the broker frames per channel.
        e->message.frame = protocol::make_event_frame("contract.test", e->payload);
        return e;
    }

    engine::publication to_users(std::initializer_list<std::string_view> names, std::string_view label) const {
        engine::publication p;
        p.event = make_event(label);
        for (auto n : names) p.channels.push_back(protocol::personal_channel(user(n)));
        return p;
    }

    outcomes publish(std::vector<engine::publication> batch) {
        auto r = replies_.make<outcomes>();
        engine_.broker->publish(std::make_shared<const std::vector<engine::publication>>(std::move(batch)),
                                r.callback());
        auto answered = r.wait();
        if (!answered) return util::error{"no answer"};
        return std::move(*answered);
    }

    // How many frames `c`, a connection of hub thread `i`, holds: read on that thread, since an
    // engine's own thread (Redis) may be handing it more meanwhile.
    std::size_t frames_on(std::size_t i, const hub::testing::recording_connection& c) {
        std::size_t n = 0;
        on_thread(i, [&] { n = c.frames.size(); });
        return n;
    }

    // Waits (bounded) until every thread has run what was posted to it before this call: the
    // deliveries of a publish whose answer came from another thread are then all done.
    void settle() {
        for (std::size_t i = 0; i < k_threads; ++i) on_thread(i, [] {});
    }

    // What `c` was handed: each frame's label (its payload, a JSON string of plain characters).
    static std::vector<std::string> received(const hub::testing::recording_connection& c) {
        std::vector<std::string> out;
        for (const auto& f : c.frames) out.push_back(label_of(f->payload()));
        return out;
    }

    static std::string label_of(std::string_view frame) {
        constexpr std::string_view k_prefix = R"({"type":"contract.test","payload":")";
        if (!frame.starts_with(k_prefix)) return "<not a contract event: " + std::string(frame) + ">";
        const auto rest = frame.substr(k_prefix.size());
        return std::string(rest.substr(0, rest.find('"')));
    }

    static std::string text_of(std::string_view label) { return std::string(label); }

    hub::user_registry registry_;
    std::vector<std::unique_ptr<hub::testing::task_thread>> threads_;
    std::unique_ptr<hub::hub_set> hubs_;
    broker_under_test engine_;
    std::vector<std::shared_ptr<hub::testing::recording_connection>> connections_[k_threads];
    replies replies_;
    std::string prefix_ = unique_prefix();
    hub::connection_id next_id_ = 1;
};

TYPED_TEST_SUITE_P(BrokerContract);

TYPED_TEST_P(BrokerContract, PersonalChannel_ReachesEveryConnectionOfTheUserOnEveryThread) {
    auto a0 = this->connect("alice", 0);
    auto a1 = this->connect("alice", 1);
    auto b1 = this->connect("bob", 1);
    const auto r = this->publish({this->to_users({"alice"}, "one")});
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_EQ(r->size(), 1U);
    EXPECT_EQ((*r)[0].delivered, 2U);
    this->settle();
    EXPECT_EQ(this->received(*a0), std::vector<std::string>{this->text_of("one")});
    EXPECT_EQ(this->received(*a1), std::vector<std::string>{this->text_of("one")});
    EXPECT_TRUE(b1->frames.empty()) << "never to another user";
    ASSERT_FALSE(a0->frames.empty());
    ASSERT_FALSE(a1->frames.empty());
    EXPECT_EQ(a0->frames[0].get(), a1->frames[0].get()) << "one frame, shared";
    // Not stored: the channel, and no position.
    EXPECT_EQ(a0->frames[0]->payload(), R"({"type":"contract.test","payload":"one","channel":")" +
                                            protocol::personal_channel(this->user("alice")) + R"("})");
}

TYPED_TEST_P(BrokerContract, ManyChannels_OneEventEach_AndAUserWithoutConnectionsCountsNothing) {
    auto a = this->connect("alice", 0);
    auto b = this->connect("bob", 1);
    const auto r = this->publish({this->to_users({"alice", "bob", "carol"}, "all three")});
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ((*r)[0].delivered, 2U);
    this->settle();
    EXPECT_EQ(a->frames.size(), 1U);
    EXPECT_EQ(b->frames.size(), 1U);
}

TYPED_TEST_P(BrokerContract, Everyone_ReachesEveryConnection) {
    auto a = this->connect("alice", 0);
    auto b = this->connect("bob", 1);
    engine::publication p;
    p.event = this->make_event("hello all");
    p.everyone = true;
    const auto r = this->publish({p});
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_GE((*r)[0].delivered, 2U);  // a shared engine's other tests may hold connections too
    this->settle();
    EXPECT_EQ(this->received(*a), std::vector<std::string>{this->text_of("hello all")});
    EXPECT_EQ(this->received(*b), std::vector<std::string>{this->text_of("hello all")});
}

TYPED_TEST_P(BrokerContract, Batch_AnswersEachPublicationInItsOrder) {
    auto a = this->connect("alice", 0);
    auto b = this->connect("bob", 1);
    auto b2 = this->connect("bob", 0);
    const auto r =
        this->publish({this->to_users({"alice"}, "1"), this->to_users({"bob"}, "2"), this->to_users({"nobody"}, "3")});
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_EQ(r->size(), 3U);
    EXPECT_EQ((*r)[0].delivered, 1U);
    EXPECT_EQ((*r)[1].delivered, 2U);
    EXPECT_EQ((*r)[2].delivered, 0U);
    this->settle();
    EXPECT_EQ(this->received(*a), std::vector<std::string>{this->text_of("1")});
    EXPECT_EQ(this->received(*b), std::vector<std::string>{this->text_of("2")});
    EXPECT_EQ(this->received(*b2), std::vector<std::string>{this->text_of("2")});
}

TYPED_TEST_P(BrokerContract, OnePublisher_EachConnectionGetsItsEventsInOrder) {
    auto a0 = this->connect("alice", 0);
    auto a1 = this->connect("alice", 1);
    std::vector<std::string> sent;
    for (int i = 0; i < 200; ++i) {
        sent.push_back(this->text_of(std::to_string(i)));
        auto r = this->replies_.template make<typename TestFixture::outcomes>();
        this->engine_.broker->publish(std::make_shared<const std::vector<engine::publication>>(
                                          std::vector{this->to_users({"alice"}, std::to_string(i))}),
                                      r.callback());
    }
    this->settle();
    // Deliveries may still be on their way from an engine's own thread (Redis): wait, bounded.
    const auto deadline = std::chrono::steady_clock::now() + k_reply_timeout;
    while ((this->frames_on(0, *a0) < sent.size() || this->frames_on(1, *a1) < sent.size()) &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        this->settle();
    }
    EXPECT_EQ(this->received(*a0), sent);
    EXPECT_EQ(this->received(*a1), sent);
}

TYPED_TEST_P(BrokerContract, Stored_PositionsFollowOnPerChannelAndTheHistoryHoldsThem) {
    auto a = this->connect("alice", 0);
    std::vector<engine::publication> batch;
    for (const auto* label : {"s1", "s2"}) {
        auto p = this->to_users({"alice", "bob"}, label);
        p.history = true;
        batch.push_back(std::move(p));
    }
    const auto r = this->publish(batch);
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_EQ(r->size(), 2U);
    for (std::size_t i = 0; i < 2; ++i) {
        ASSERT_EQ((*r)[i].positions.size(), 2U) << "a position per channel";
        EXPECT_EQ((*r)[i].positions[0].seq, i + 1);  // alice's channel
        EXPECT_EQ((*r)[i].positions[1].seq, i + 1);  // bob's, numbered on its own
        EXPECT_FALSE((*r)[i].positions[0].epoch.empty());
    }
    EXPECT_EQ((*r)[0].positions[0].epoch, (*r)[1].positions[0].epoch);
    EXPECT_EQ((*r)[0].delivered, 1U);

    auto read = this->replies_.template make<util::result<engine::history_page>>();
    this->engine_.history->read(protocol::personal_channel(this->user("alice")), std::nullopt, 10, read.callback());
    const auto page = read.wait();
    ASSERT_TRUE(page && page->ok());
    ASSERT_EQ((*page)->events.size(), 2U);
    EXPECT_EQ((*page)->events[0].seq, 1U);
    EXPECT_EQ((*page)->events[1].seq, 2U);
    EXPECT_EQ((*page)->top, (*r)[1].positions[0]);
    this->settle();
    EXPECT_EQ(this->received(*a), (std::vector<std::string>{this->text_of("s1"), this->text_of("s2")}));
    // Each frame carries its channel and its position there: the one the publish answered.
    ASSERT_EQ(a->frames.size(), 2U);
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& at = (*r)[i].positions[0];
        EXPECT_EQ(a->frames[i]->payload(), R"({"type":"contract.test","payload":"s)" + std::to_string(i + 1) +
                                               R"(","channel":")" + protocol::personal_channel(this->user("alice")) +
                                               R"(","epoch":")" + at.epoch + R"(","seq":)" + std::to_string(at.seq) +
                                               "}");
    }
}

TYPED_TEST_P(BrokerContract, StoredFromTwoThreads_EveryConnectionReceivesInSeqOrder) {
    auto a0 = this->connect("alice", 0);
    auto a1 = this->connect("alice", 1);
    constexpr int k_each = 100;
    std::mutex mutex;
    std::map<std::string, std::uint64_t> seq_of;  // frame text -> its seq
    auto publisher = [&](const std::string& who) {
        for (int i = 0; i < k_each; ++i) {
            auto p = this->to_users({"alice"}, who + std::to_string(i));
            p.history = true;
            const auto text = this->text_of(who + std::to_string(i));
            this->engine_.broker->publish(std::make_shared<const std::vector<engine::publication>>(std::vector{p}),
                                          [&, text](typename TestFixture::outcomes r) {
                                              ASSERT_TRUE(r.ok());
                                              const std::lock_guard lock(mutex);
                                              seq_of[text] = (*r)[0].positions.at(0).seq;
                                          });
        }
    };
    std::thread first(publisher, "x");
    std::thread second(publisher, "y");
    first.join();
    second.join();
    const auto deadline = std::chrono::steady_clock::now() + k_reply_timeout;
    for (;;) {
        this->settle();
        std::size_t answered = 0;
        {
            const std::lock_guard lock(mutex);
            answered = seq_of.size();
        }
        if ((answered == 2 * k_each && this->frames_on(0, *a0) == 2 * k_each &&
             this->frames_on(1, *a1) == 2 * k_each) ||
            std::chrono::steady_clock::now() >= deadline) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const std::lock_guard lock(mutex);
    ASSERT_EQ(seq_of.size(), 2U * k_each);
    for (const auto& c : {a0, a1}) {
        ASSERT_EQ(c->frames.size(), 2U * k_each);
        std::uint64_t last = 0;
        for (const auto& text : this->received(*c)) {
            const auto seq = seq_of.at(text);
            EXPECT_EQ(seq, last + 1) << "delivered in seq order, with no gap";
            last = seq;
        }
    }
}

// The API publishes from the event loops themselves: a loop's own hub must not run its publish
// ahead of one another loop appended first and already sent its way.
TYPED_TEST_P(BrokerContract, StoredFromTheHubsOwnThreads_EveryConnectionReceivesInSeqOrder) {
    auto a0 = this->connect("alice", 0);
    auto a1 = this->connect("alice", 1);
    constexpr int k_each = 200;
    std::mutex mutex;
    std::map<std::string, std::uint64_t> seq_of;
    std::atomic<int> started{0};
    auto publish_from = [&](std::size_t thread, const std::string& who) {
        this->threads_[thread]->post([&, thread, who] {
            hub::hub_set::enter(thread);  // this task is that thread's event loop
            started.fetch_add(1);
            while (started.load() < 2) std::this_thread::yield();  // both loops publish at once
            for (int i = 0; i < k_each; ++i) {
                auto p = this->to_users({"alice"}, who + std::to_string(i));
                p.history = true;
                const auto text = this->text_of(who + std::to_string(i));
                this->engine_.broker->publish(std::make_shared<const std::vector<engine::publication>>(std::vector{p}),
                                              [&, text](typename TestFixture::outcomes r) {
                                                  ASSERT_TRUE(r.ok());
                                                  const std::lock_guard lock(mutex);
                                                  seq_of[text] = (*r)[0].positions.at(0).seq;
                                              });
            }
        });
    };
    publish_from(0, "x");
    publish_from(1, "y");
    const auto deadline = std::chrono::steady_clock::now() + k_reply_timeout;
    for (;;) {
        this->settle();
        std::size_t answered = 0;
        {
            const std::lock_guard lock(mutex);
            answered = seq_of.size();
        }
        if ((answered == 2 * k_each && this->frames_on(0, *a0) == 2 * k_each &&
             this->frames_on(1, *a1) == 2 * k_each) ||
            std::chrono::steady_clock::now() >= deadline) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const std::lock_guard lock(mutex);
    ASSERT_EQ(seq_of.size(), 2U * k_each);
    for (const auto& c : {a0, a1}) {
        ASSERT_EQ(c->frames.size(), 2U * k_each);
        std::uint64_t last = 0;
        for (const auto& text : this->received(*c)) {
            const auto seq = seq_of.at(text);
            ASSERT_EQ(seq, last + 1) << "delivered in seq order, with no gap";
            last = seq;
        }
    }
}

TYPED_TEST_P(BrokerContract, IdempotencyKey_PublishedOncePerChannel_TheRetryNamesTheFirstPosition) {
    auto a0 = this->connect("alice", 0);
    auto a1 = this->connect("alice", 1);
    auto b = this->connect("bob", 1);
    const auto key = this->user("key-1");  // unique per test run, like the users
    auto stored = [&](std::initializer_list<std::string_view> names, std::string_view label) {
        auto p = this->to_users(names, label);
        p.history = true;
        p.idempotency_key = key;
        return p;
    };
    const auto first = this->publish({stored({"alice"}, "first")});
    ASSERT_TRUE(first.ok()) << first.message();
    EXPECT_EQ((*first)[0].delivered, 2U);
    EXPECT_EQ((*first)[0].duplicate, std::vector<bool>{false});
    ASSERT_EQ((*first)[0].positions.size(), 1U);

    // The same key again (a retry): nothing published, answered with the first one's position.
    const auto again = this->publish({stored({"alice"}, "again")});
    ASSERT_TRUE(again.ok()) << again.message();
    EXPECT_EQ((*again)[0].delivered, 0U);
    EXPECT_EQ((*again)[0].duplicate, std::vector<bool>{true});
    EXPECT_TRUE((*again)[0].all_duplicate());
    ASSERT_EQ((*again)[0].positions.size(), 1U);
    EXPECT_EQ((*again)[0].positions[0], (*first)[0].positions[0]);

    // Per channel: alice's is skipped, bob's (new for this key) is published.
    const auto wider = this->publish({stored({"alice", "bob"}, "wider")});
    ASSERT_TRUE(wider.ok()) << wider.message();
    EXPECT_EQ((*wider)[0].duplicate, (std::vector<bool>{true, false}));
    EXPECT_FALSE((*wider)[0].all_duplicate());
    EXPECT_EQ((*wider)[0].delivered, 1U) << "bob's connection alone";
    ASSERT_EQ((*wider)[0].positions.size(), 2U);
    EXPECT_EQ((*wider)[0].positions[0], (*first)[0].positions[0]);
    EXPECT_EQ((*wider)[0].positions[1].seq, 1U);

    // Not stored, and to everyone: once per key as well; another key publishes.
    auto live = this->to_users({"alice"}, "live");
    live.idempotency_key = this->user("key-2");
    engine::publication all;
    all.event = this->make_event("all");
    all.everyone = true;
    all.idempotency_key = this->user("key-3");
    for (int i = 0; i < 2; ++i) {
        const auto r = this->publish({live, all});
        ASSERT_TRUE(r.ok()) << r.message();
        EXPECT_EQ((*r)[0].duplicate, std::vector<bool>{i == 1});
        EXPECT_EQ((*r)[1].duplicate, std::vector<bool>{i == 1});
        if (i == 1) {
            EXPECT_EQ((*r)[0].delivered + (*r)[1].delivered, 0U);
        }
    }
    // A stored publish repeating the key of an unstored one: a duplicate, with no position to name.
    auto stored_after_live = stored({"alice"}, "stored after live");
    stored_after_live.idempotency_key = live.idempotency_key;
    const auto mixed = this->publish({stored_after_live});
    ASSERT_TRUE(mixed.ok()) << mixed.message();
    EXPECT_EQ((*mixed)[0].duplicate, std::vector<bool>{true});
    ASSERT_EQ((*mixed)[0].positions.size(), 1U);
    EXPECT_TRUE((*mixed)[0].positions[0].epoch.empty());
    auto other = stored({"alice"}, "other key");
    other.idempotency_key = this->user("key-4");
    const auto fresh = this->publish({other});
    ASSERT_TRUE(fresh.ok()) << fresh.message();
    EXPECT_EQ((*fresh)[0].duplicate, std::vector<bool>{false});
    EXPECT_EQ((*fresh)[0].positions[0].seq, (*first)[0].positions[0].seq + 1) << "the skipped ones took no seq";

    // Each connection got each event once, and the history holds no duplicate.
    const std::vector<std::string> alice{"first", "live", "all", "other key"};
    const auto deadline = std::chrono::steady_clock::now() + k_reply_timeout;
    while ((this->frames_on(0, *a0) < alice.size() || this->frames_on(1, *a1) < alice.size() ||
            this->frames_on(1, *b) < 2) &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a duplicate would come now
    this->settle();
    EXPECT_EQ(this->received(*a0), alice);
    EXPECT_EQ(this->received(*a1), alice);
    EXPECT_EQ(this->received(*b), (std::vector<std::string>{"wider", "all"}));
    auto read = this->replies_.template make<util::result<engine::history_page>>();
    this->engine_.history->read(protocol::personal_channel(this->user("alice")), std::nullopt, 10, read.callback());
    const auto page = read.wait();
    ASSERT_TRUE(page && page->ok());
    EXPECT_EQ((*page)->events.size(), 2U) << "first and other key";
    EXPECT_EQ(this->engine_.broker->coming(), 0U) << "a skipped channel's copy is not waited for";
}

REGISTER_TYPED_TEST_SUITE_P(BrokerContract, PersonalChannel_ReachesEveryConnectionOfTheUserOnEveryThread,
                            ManyChannels_OneEventEach_AndAUserWithoutConnectionsCountsNothing,
                            Everyone_ReachesEveryConnection, Batch_AnswersEachPublicationInItsOrder,
                            OnePublisher_EachConnectionGetsItsEventsInOrder,
                            Stored_PositionsFollowOnPerChannelAndTheHistoryHoldsThem,
                            StoredFromTwoThreads_EveryConnectionReceivesInSeqOrder,
                            StoredFromTheHubsOwnThreads_EveryConnectionReceivesInSeqOrder,
                            IdempotencyKey_PublishedOncePerChannel_TheRetryNamesTheFirstPosition);

}  // namespace zena::contract
