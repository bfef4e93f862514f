#pragma once
// What every engine::history must do, as a typed GoogleTest suite that each implementation
// instantiates with a factory:
//
//     struct memory_history_factory {
//         static std::unique_ptr<engine::history> make();  // a fresh implementation
//     };
//     INSTANTIATE_TYPED_TEST_SUITE_P(Memory, HistoryContract, memory_history_factory);
//
// `make` is called once per test. Implementations that share state between instances (Redis)
// need no cleanup hook: every test names its channels under contract::unique_prefix(), so tests
// never see each other's keys; a factory for them starts or finds its server once (a GoogleTest
// Environment) and connects in `make`.
//
// Calls are asynchronous: each waits for its `done` at most contract::k_reply_timeout, and each
// test checks that every `done` was called exactly once. Tests of expiry sleep for real (a few
// hundred ms), so that a server's own clock is held to them too; the suite runs in about a
// second.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <future>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "contract/async_reply.hpp"
#include "engine/history.hpp"
#include "ws/frame.hpp"

namespace zena::contract {

template <typename F>
concept history_factory = requires {
    { F::make() } -> std::convertible_to<std::unique_ptr<engine::history>>;
};

// An event whose payload is the JSON string `label` (plain characters only), so a test can tell
// events apart by their text.
inline std::shared_ptr<const engine::event> labelled_event(std::string_view label,
                                                           ws::delivery_class delivery = ws::delivery_class::ordered,
                                                           std::uint64_t latest_key = 0) {
    auto e = std::make_shared<engine::event>();
    e->type = "contract.test";
    e->payload = "\"" + std::string(label) + "\"";
    e->message = ws::outbound{nullptr, delivery, latest_key};
    return e;
}

inline std::vector<std::string> labels(const engine::history_page& page) {
    std::vector<std::string> out;
    for (const auto& e : page.events) {
        out.emplace_back(!e.event ? "<no event>" : e.event->payload.substr(1, e.event->payload.size() - 2));
    }
    return out;
}

inline std::vector<std::uint64_t> seqs(const engine::history_page& page) {
    std::vector<std::uint64_t> out;
    for (const auto& e : page.events) out.push_back(e.seq);
    return out;
}

template <history_factory Factory>
class HistoryContract : public ::testing::Test {
protected:
    using labels_t = std::vector<std::string>;
    using seqs_t = std::vector<std::uint64_t>;

    void TearDown() override { replies_.expect_each_called_once(); }

    std::string channel(std::string_view name) const { return prefix_ + std::string(name); }

    util::result<engine::appended> append_full(const std::string& ch, std::shared_ptr<const engine::event> e,
                                               const engine::history_limits& limits = {}) {
        auto r = replies_.make<util::result<engine::appended>>();
        history_->append(ch, std::move(e), limits, r.callback());
        auto v = r.wait();
        if (!v) return util::error{"no answer"};
        return std::move(*v);
    }

    util::result<engine::position> append(const std::string& ch, std::shared_ptr<const engine::event> e,
                                          const engine::history_limits& limits = {}) {
        auto r = append_full(ch, std::move(e), limits);
        if (!r) return util::error{r.message()};
        return std::move(r->at);
    }

    // Appends an ordered event labelled `label`; a failure fails the test.
    engine::position append_ok(const std::string& ch, std::string_view label,
                               const engine::history_limits& limits = {}) {
        return ok(append(ch, labelled_event(label), limits));
    }

    util::result<engine::history_page> read(const std::string& ch, std::optional<engine::position> since,
                                            std::size_t limit = 100) {
        auto r = replies_.make<util::result<engine::history_page>>();
        history_->read(ch, std::move(since), limit, r.callback());
        auto v = r.wait();
        if (!v) return util::error{"no answer"};
        return std::move(*v);
    }

    engine::history_page read_ok(const std::string& ch, std::optional<engine::position> since,
                                 std::size_t limit = 100) {
        return ok(read(ch, std::move(since), limit));
    }

    engine::position top_ok(const std::string& ch) {
        auto r = replies_.make<util::result<engine::position>>();
        history_->top(ch, r.callback());
        auto v = r.wait();
        return v ? ok(std::move(*v)) : engine::position{};
    }

    template <typename T>
    static T ok(util::result<T> r) {
        if (r.ok()) return std::move(r).value();
        ADD_FAILURE() << "the engine answered an error: " << r.message();
        return T{};
    }

    std::unique_ptr<engine::history> history_ = Factory::make();
    replies replies_;
    std::string prefix_ = unique_prefix();
};

TYPED_TEST_SUITE_P(HistoryContract);

TYPED_TEST_P(HistoryContract, Append_FirstSeqIsOneAndEachNextAddsOne) {
    const auto ch = this->channel("a");
    const auto p1 = this->append_ok(ch, "e1");
    const auto p2 = this->append_ok(ch, "e2");
    const auto p3 = this->append_ok(ch, "e3");
    EXPECT_EQ(p1.seq, 1U);
    EXPECT_EQ(p2.seq, 2U);
    EXPECT_EQ(p3.seq, 3U);
    EXPECT_FALSE(p1.epoch.empty());
}

TYPED_TEST_P(HistoryContract, Append_PositionsArePerChannel) {
    const auto x = this->channel("x");
    const auto y = this->channel("y");
    EXPECT_EQ(this->append_ok(x, "x1").seq, 1U);
    EXPECT_EQ(this->append_ok(x, "x2").seq, 2U);
    EXPECT_EQ(this->append_ok(y, "y1").seq, 1U);
    EXPECT_EQ(this->append_ok(x, "x3").seq, 3U);
    EXPECT_EQ(this->top_ok(y).seq, 1U);
    EXPECT_EQ(this->read_ok(y, std::nullopt).events.size(), 1U);
}

TYPED_TEST_P(HistoryContract, Epoch_SameFromAppendsTopAndRead) {
    const auto ch = this->channel("a");
    const auto p1 = this->append_ok(ch, "e1");
    const auto p2 = this->append_ok(ch, "e2");
    const auto top = this->top_ok(ch);
    const auto page = this->read_ok(ch, std::nullopt);
    EXPECT_EQ(p2.epoch, p1.epoch);
    EXPECT_EQ(top, p2);
    EXPECT_EQ(page.top, p2);
    EXPECT_EQ(this->append_ok(ch, "e3").epoch, p1.epoch);
}

TYPED_TEST_P(HistoryContract, Read_SincePosition_ReturnsExactlyTheLaterEventsInOrder) {
    const auto ch = this->channel("a");
    std::vector<engine::position> at;
    for (const auto* label : {"a", "b", "c", "d", "e"}) at.push_back(this->append_ok(ch, label));

    const auto page = this->read_ok(ch, at[1]);
    EXPECT_TRUE(page.recovered);
    EXPECT_EQ(labels(page), (typename TestFixture::labels_t{"c", "d", "e"}));
    EXPECT_EQ(seqs(page), (typename TestFixture::seqs_t{3, 4, 5}));
    EXPECT_EQ(page.top, at[4]);

    const auto from_start = this->read_ok(ch, engine::position{at[0].epoch, 0});
    EXPECT_TRUE(from_start.recovered);
    EXPECT_EQ(labels(from_start), (typename TestFixture::labels_t{"a", "b", "c", "d", "e"}));

    const auto at_top = this->read_ok(ch, at[4]);
    EXPECT_TRUE(at_top.recovered);
    EXPECT_TRUE(at_top.events.empty());
}

TYPED_TEST_P(HistoryContract, Read_ReturnsTheStoredEvent) {
    const auto ch = this->channel("a");
    auto e = std::make_shared<engine::event>();
    e->type = "deal.risk";
    e->payload = R"({"dealId":"d1","score":0.7})";
    e->message = ws::outbound{nullptr, ws::delivery_class::latest, 42};
    const auto appended = this->ok(this->append_full(ch, e));
    const auto& p = appended.at;
    // The frame of the channel, with its position, built once at the append: what live
    // connections get and what a resume replays.
    const std::string frame = R"({"type":"deal.risk","payload":{"dealId":"d1","score":0.7},"channel":")" + ch +
                              R"(","epoch":")" + p.epoch + R"(","seq":)" + std::to_string(p.seq) + "}";
    ASSERT_NE(appended.message.frame, nullptr);
    EXPECT_EQ(appended.message.frame->payload(), frame);
    EXPECT_EQ(appended.message.delivery, ws::delivery_class::latest);
    EXPECT_EQ(appended.message.latest_key, engine::channel_message(*e, ch, p).latest_key) << "keyed per channel";
    const auto page = this->read_ok(ch, std::nullopt);
    ASSERT_EQ(page.events.size(), 1U);
    const auto& stored = page.events[0];
    EXPECT_EQ(stored.seq, p.seq);
    EXPECT_GT(stored.published_ms, 0);
    ASSERT_NE(stored.event, nullptr);
    EXPECT_EQ(stored.event->type, "deal.risk");
    EXPECT_EQ(stored.event->payload, R"({"dealId":"d1","score":0.7})");
    ASSERT_NE(stored.message.frame, nullptr);
    EXPECT_EQ(stored.message.frame->payload(), frame);
    EXPECT_EQ(stored.message.frame->op(), ws::opcode::text);
    EXPECT_EQ(stored.message.delivery, ws::delivery_class::latest);
    EXPECT_EQ(stored.message.latest_key, appended.message.latest_key);
}

TYPED_TEST_P(HistoryContract, Read_WithLimit_ReturnsTheOldestFirstAndPagesOn) {
    const auto ch = this->channel("a");
    engine::position first;
    for (const auto* label : {"a", "b", "c", "d", "e"}) {
        const auto p = this->append_ok(ch, label);
        if (p.seq == 1) first = p;
    }
    const engine::position start{first.epoch, 0};
    const auto page1 = this->read_ok(ch, start, 2);
    EXPECT_TRUE(page1.recovered);
    EXPECT_EQ(labels(page1), (typename TestFixture::labels_t{"a", "b"}));
    EXPECT_EQ(page1.top.seq, 5U);

    ASSERT_FALSE(page1.events.empty());
    const auto page2 = this->read_ok(ch, engine::position{first.epoch, page1.events.back().seq}, 2);
    EXPECT_TRUE(page2.recovered);
    EXPECT_EQ(labels(page2), (typename TestFixture::labels_t{"c", "d"}));

    ASSERT_FALSE(page2.events.empty());
    const auto page3 = this->read_ok(ch, engine::position{first.epoch, page2.events.back().seq}, 2);
    EXPECT_TRUE(page3.recovered);
    EXPECT_EQ(labels(page3), (typename TestFixture::labels_t{"e"}));

    const auto none = this->read_ok(ch, start, 0);
    EXPECT_TRUE(none.events.empty());
    EXPECT_TRUE(none.recovered);
    EXPECT_EQ(labels(this->read_ok(ch, std::nullopt, 3)), (typename TestFixture::labels_t{"a", "b", "c"}));
}

TYPED_TEST_P(HistoryContract, Read_WithoutPosition_IsRecoveredWhileNothingWasLost) {
    const auto ch = this->channel("a");
    const engine::history_limits two{.max_events = 2};
    this->append_ok(ch, "a", two);
    this->append_ok(ch, "b", two);
    const auto whole = this->read_ok(ch, std::nullopt);
    EXPECT_TRUE(whole.recovered);
    EXPECT_EQ(labels(whole), (typename TestFixture::labels_t{"a", "b"}));

    this->append_ok(ch, "c", two);
    const auto after_loss = this->read_ok(ch, std::nullopt);
    EXPECT_FALSE(after_loss.recovered) << "a was lost to the count bound";
    EXPECT_EQ(labels(after_loss), (typename TestFixture::labels_t{"b", "c"}));
}

TYPED_TEST_P(HistoryContract, MaxEvents_DropsTheOldest_NotRecoveredBeforeTheLossRecoveredAfter) {
    const auto ch = this->channel("a");
    const engine::history_limits three{.max_events = 3};
    std::vector<engine::position> at;
    for (const auto* label : {"a", "b", "c", "d", "e"}) at.push_back(this->append_ok(ch, label, three));
    const auto& epoch = at[0].epoch;

    const auto from_start = this->read_ok(ch, engine::position{epoch, 0});
    EXPECT_FALSE(from_start.recovered);
    EXPECT_EQ(labels(from_start), (typename TestFixture::labels_t{"c", "d", "e"}));

    const auto before_loss = this->read_ok(ch, at[0]);  // b (seq 2) was lost after it
    EXPECT_FALSE(before_loss.recovered);
    EXPECT_EQ(labels(before_loss), (typename TestFixture::labels_t{"c", "d", "e"}));

    const auto at_loss = this->read_ok(ch, at[1]);  // nothing after b was lost
    EXPECT_TRUE(at_loss.recovered);
    EXPECT_EQ(labels(at_loss), (typename TestFixture::labels_t{"c", "d", "e"}));

    const auto after_loss = this->read_ok(ch, at[3]);
    EXPECT_TRUE(after_loss.recovered);
    EXPECT_EQ(labels(after_loss), (typename TestFixture::labels_t{"e"}));
}

TYPED_TEST_P(HistoryContract, MaxAge_DropsExpiredEvents_NotRecoveredBeforeThem) {
    using namespace std::chrono_literals;
    const auto ch = this->channel("a");
    const engine::history_limits young{.max_events = 100, .max_age = 200ms};
    const auto a = this->append_ok(ch, "a", young);
    const auto b = this->append_ok(ch, "b", young);
    std::this_thread::sleep_for(350ms);

    const auto expired = this->read_ok(ch, engine::position{a.epoch, 0});
    EXPECT_FALSE(expired.recovered);
    EXPECT_TRUE(expired.events.empty()) << "expired events are not returned, even before the next append";
    EXPECT_EQ(expired.top, b);

    const auto c = this->append_ok(ch, "c", young);
    EXPECT_EQ(c.seq, 3U);
    const auto since_b = this->read_ok(ch, b);
    EXPECT_TRUE(since_b.recovered);
    EXPECT_EQ(labels(since_b), (typename TestFixture::labels_t{"c"}));
    const auto since_a = this->read_ok(ch, a);
    EXPECT_FALSE(since_a.recovered);
    EXPECT_EQ(labels(since_a), (typename TestFixture::labels_t{"c"}));
}

// A burst longer than one read deletes (the Redis read deletes at most 4,096 aged events),
// aged past max age while the channel stays alive: no read returns any of it.
TYPED_TEST_P(HistoryContract, MaxAge_ALongBurstIsDroppedWhole_NoneReturned) {
    using namespace std::chrono_literals;
    const auto ch = this->channel("burst");
    const engine::history_limits limits{.max_events = 6000, .max_age = 1500ms};
    constexpr int k_burst = 5000;  // more than the Redis read deletes at once (4,096)
    std::vector<decltype(this->replies_.template make<util::result<engine::appended>>())> answers;
    for (int i = 0; i < k_burst; ++i) {
        answers.push_back(this->replies_.template make<util::result<engine::appended>>());
        this->history_->append(ch, labelled_event("old" + std::to_string(i)), limits, answers.back().callback());
    }
    engine::position first;
    for (std::size_t i = 0; i < answers.size(); ++i) {
        const auto r = answers[i].wait();
        ASSERT_TRUE(r && r->ok());
        if (i == 0) first = (*r)->at;
    }
    // The channel lives on meanwhile (its keys do not expire), an event every 200 ms.
    for (int i = 0; i < 8; ++i) {
        std::this_thread::sleep_for(200ms);
        this->append_ok(ch, "young", limits);
    }
    const auto fresh = this->append_ok(ch, "fresh", limits);
    for (const auto& since : {engine::position{first.epoch, 0}, first, engine::position{"another-epoch", 3}}) {
        const auto page = this->read_ok(ch, since, 1000);
        EXPECT_FALSE(page.recovered);
        ASSERT_FALSE(page.events.empty());
        const auto all = labels(page);
        const auto aged =
            std::count_if(all.begin(), all.end(), [](const std::string& l) { return l.starts_with("old"); });
        EXPECT_EQ(aged, 0) << "events older than max age were returned, from " << all.front();
        EXPECT_EQ(all.back(), "fresh");
        EXPECT_EQ(page.top, fresh);
    }
}

TYPED_TEST_P(HistoryContract, Latest_KeepsOnlyTheNewestPerKey_AndStillRecovers) {
    const auto ch = this->channel("a");
    using enum ws::delivery_class;
    const auto o1 = this->ok(this->append(ch, labelled_event("o1")));
    this->ok(this->append(ch, labelled_event("p1", latest, 7)));
    this->ok(this->append(ch, labelled_event("p2", latest, 7)));
    this->ok(this->append(ch, labelled_event("q1", latest, 8)));
    this->ok(this->append(ch, labelled_event("o2")));
    const auto last = this->ok(this->append(ch, labelled_event("p3", latest, 7)));
    EXPECT_EQ(last.seq, 6U);

    const auto all = this->read_ok(ch, engine::position{o1.epoch, 0});
    EXPECT_TRUE(all.recovered) << "compaction is not a loss";
    EXPECT_EQ(labels(all), (typename TestFixture::labels_t{"o1", "q1", "o2", "p3"}));
    EXPECT_EQ(seqs(all), (typename TestFixture::seqs_t{1, 4, 5, 6}));
    EXPECT_TRUE(this->read_ok(ch, std::nullopt).recovered);

    const auto since_o1 = this->read_ok(ch, o1);
    EXPECT_TRUE(since_o1.recovered);
    EXPECT_EQ(labels(since_o1), (typename TestFixture::labels_t{"q1", "o2", "p3"}));
    EXPECT_EQ(since_o1.top, last);
}

TYPED_TEST_P(HistoryContract, Latest_OnlyReplacesLatestEventsOfItsKey) {
    const auto ch = this->channel("a");
    using enum ws::delivery_class;
    this->ok(this->append(ch, labelled_event("o1")));
    this->ok(this->append(ch, labelled_event("o2")));  // ordered events share latest_key 0
    this->ok(this->append(ch, labelled_event("o3", ordered, 7)));
    this->ok(this->append(ch, labelled_event("l1", latest, 7)));
    this->ok(this->append(ch, labelled_event("l2", latest, 7)));
    this->ok(this->append(ch, labelled_event("k1", latest, 0)));
    const auto page = this->read_ok(ch, std::nullopt);
    EXPECT_TRUE(page.recovered);
    EXPECT_EQ(labels(page), (typename TestFixture::labels_t{"o1", "o2", "o3", "l2", "k1"}));
}

TYPED_TEST_P(HistoryContract, Latest_ReplacedEventsLeaveRoomInMaxEvents) {
    const auto ch = this->channel("a");
    const engine::history_limits two{.max_events = 2};
    this->append_ok(ch, "o1", two);
    for (const auto* label : {"p1", "p2", "p3", "p4"}) {
        this->ok(this->append(ch, labelled_event(label, ws::delivery_class::latest, 7), two));
    }
    const auto page = this->read_ok(ch, std::nullopt);
    EXPECT_TRUE(page.recovered);
    EXPECT_EQ(labels(page), (typename TestFixture::labels_t{"o1", "p4"}));
    EXPECT_EQ(page.top.seq, 5U);
}

TYPED_TEST_P(HistoryContract, Ephemeral_IsRefusedAndTakesNoSeq) {
    const auto ch = this->channel("a");
    this->append_ok(ch, "a");
    const auto refused = this->append(ch, labelled_event("x", ws::delivery_class::ephemeral));
    ASSERT_FALSE(refused.ok());
    EXPECT_FALSE(refused.message().empty());
    EXPECT_FALSE(this->append(ch, nullptr).ok()) << "nor is a null event stored";
    EXPECT_EQ(this->append_ok(ch, "b").seq, 2U);
    const auto page = this->read_ok(ch, std::nullopt);
    EXPECT_TRUE(page.recovered);
    EXPECT_EQ(labels(page), (typename TestFixture::labels_t{"a", "b"}));
}

TYPED_TEST_P(HistoryContract, Read_OtherEpoch_NotRecoveredAndReturnsWhatIsKept) {
    const auto ch = this->channel("a");
    this->append_ok(ch, "a");
    const auto b = this->append_ok(ch, "b");
    const auto page = this->read_ok(ch, engine::position{b.epoch + "-other", 1});
    EXPECT_FALSE(page.recovered);
    EXPECT_EQ(labels(page), (typename TestFixture::labels_t{"a", "b"}));
    EXPECT_EQ(page.top, b);
    const auto limited = this->read_ok(ch, engine::position{"", 0}, 1);
    EXPECT_FALSE(limited.recovered);
    EXPECT_EQ(labels(limited), (typename TestFixture::labels_t{"a"}));
}

TYPED_TEST_P(HistoryContract, Read_SinceBeyondTop_NotRecovered) {
    const auto ch = this->channel("a");
    const auto a = this->append_ok(ch, "a");
    const auto page = this->read_ok(ch, engine::position{a.epoch, a.seq + 1});
    EXPECT_FALSE(page.recovered);
    EXPECT_EQ(labels(page), (typename TestFixture::labels_t{"a"}));
    EXPECT_EQ(page.top, a);
}

TYPED_TEST_P(HistoryContract, Top_NeverWrittenChannel_LaterAppendsAreRecoveredFromIt) {
    const auto ch = this->channel("fresh");
    const auto start = this->top_ok(ch);
    EXPECT_EQ(start.seq, 0U);
    EXPECT_FALSE(start.epoch.empty());
    EXPECT_EQ(this->top_ok(ch), start);

    const auto a = this->append_ok(ch, "a");
    this->append_ok(ch, "b");
    EXPECT_EQ(a.epoch, start.epoch);
    const auto page = this->read_ok(ch, start);
    EXPECT_TRUE(page.recovered);
    EXPECT_EQ(labels(page), (typename TestFixture::labels_t{"a", "b"}));
}

TYPED_TEST_P(HistoryContract, Read_NeverWrittenChannel_EmptyAndRecovered) {
    const auto ch = this->channel("fresh");
    const auto page = this->read_ok(ch, std::nullopt);
    EXPECT_TRUE(page.recovered);
    EXPECT_TRUE(page.events.empty());
    EXPECT_EQ(page.top.seq, 0U);
    EXPECT_FALSE(page.top.epoch.empty());
    EXPECT_EQ(this->top_ok(ch), page.top);
    const auto a = this->append_ok(ch, "a");
    EXPECT_EQ(a, (engine::position{page.top.epoch, 1}));
    const auto after = this->read_ok(ch, page.top);
    EXPECT_TRUE(after.recovered);
    EXPECT_EQ(labels(after), (typename TestFixture::labels_t{"a"}));
}

TYPED_TEST_P(HistoryContract, Append_FromFourThreadsToOneChannel_GivesDistinctConsecutiveSeqs) {
    const auto ch = this->channel("busy");
    constexpr int k_threads = 4;
    constexpr int k_each = 500;
    const engine::history_limits all_kept{.max_events = k_threads * k_each};
    std::vector<std::vector<std::uint64_t>> got(k_threads);
    std::vector<std::string> epochs(k_threads);
    {
        std::latch start(k_threads);
        std::vector<std::jthread> threads;
        for (int t = 0; t < k_threads; ++t) {
            threads.emplace_back([this, &ch, &got, &epochs, &start, &all_kept, t] {
                start.arrive_and_wait();
                for (int i = 0; i < k_each; ++i) {
                    const auto p = this->append_ok(ch, "t" + std::to_string(t) + "-" + std::to_string(i), all_kept);
                    got[t].push_back(p.seq);
                    epochs[t] = p.epoch;
                }
            });
        }
    }
    std::vector<std::uint64_t> all;
    for (int t = 0; t < k_threads; ++t) {
        EXPECT_TRUE(std::is_sorted(got[t].begin(), got[t].end())) << "one thread's appends are in its order";
        EXPECT_EQ(epochs[t], epochs[0]);
        all.insert(all.end(), got[t].begin(), got[t].end());
    }
    std::sort(all.begin(), all.end());
    std::vector<std::uint64_t> expected(k_threads * k_each);
    for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = i + 1;
    EXPECT_EQ(all, expected);
    const auto page = this->read_ok(ch, std::nullopt, expected.size());
    EXPECT_TRUE(page.recovered);
    EXPECT_EQ(seqs(page), expected);
}

TYPED_TEST_P(HistoryContract, Done_MayCallTheHistoryAgain) {
    // An implementation that called done with its lock held would deadlock here.
    const auto ch = this->channel("a");
    auto outer = this->replies_.template make<util::result<engine::appended>>();
    auto inner = this->replies_.template make<util::result<engine::position>>();
    auto* h = this->history_.get();
    std::promise<void> finished;
    auto finished_future = finished.get_future();
    std::thread caller([&] {
        h->append(ch, labelled_event("a"), {}, [&, forward = outer.callback()](util::result<engine::appended> r) {
            h->top(ch, inner.callback());
            forward(std::move(r));
        });
        finished.set_value();
    });
    if (finished_future.wait_for(k_reply_timeout) != std::future_status::ready) {
        ADD_FAILURE() << "a call from inside done did not return: done was called with a lock held";
        caller.detach();
        (void)this->history_.release();  // still in use by the stuck thread: leak it
        return;
    }
    caller.join();
    const auto appended = outer.wait();
    const auto top = inner.wait();
    ASSERT_TRUE(appended && top);
    EXPECT_EQ(this->ok(*appended).at.seq, 1U);
    EXPECT_EQ(this->ok(*top).epoch, this->ok(*appended).at.epoch);
}

REGISTER_TYPED_TEST_SUITE_P(
    HistoryContract, Append_FirstSeqIsOneAndEachNextAddsOne, Append_PositionsArePerChannel,
    Epoch_SameFromAppendsTopAndRead, Read_SincePosition_ReturnsExactlyTheLaterEventsInOrder, Read_ReturnsTheStoredEvent,
    Read_WithLimit_ReturnsTheOldestFirstAndPagesOn, Read_WithoutPosition_IsRecoveredWhileNothingWasLost,
    MaxEvents_DropsTheOldest_NotRecoveredBeforeTheLossRecoveredAfter, MaxAge_DropsExpiredEvents_NotRecoveredBeforeThem,
    MaxAge_ALongBurstIsDroppedWhole_NoneReturned, Latest_KeepsOnlyTheNewestPerKey_AndStillRecovers,
    Latest_OnlyReplacesLatestEventsOfItsKey, Latest_ReplacedEventsLeaveRoomInMaxEvents,
    Ephemeral_IsRefusedAndTakesNoSeq, Read_OtherEpoch_NotRecoveredAndReturnsWhatIsKept,
    Read_SinceBeyondTop_NotRecovered, Top_NeverWrittenChannel_LaterAppendsAreRecoveredFromIt,
    Read_NeverWrittenChannel_EmptyAndRecovered, Append_FromFourThreadsToOneChannel_GivesDistinctConsecutiveSeqs,
    Done_MayCallTheHistoryAgain);

}  // namespace zena::contract
