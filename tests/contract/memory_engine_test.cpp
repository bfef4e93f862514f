#include "engine/memory/memory_history.hpp"
#include "engine/memory/memory_presence.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <memory>
#include <optional>
#include <string>

#include "contract/history_contract.hpp"
#include "contract/presence_contract.hpp"
#include "engine/memory/memory_broker.hpp"
#include "hub/hub_set.hpp"
#include "hub/user_registry.hpp"
#include "util/allocator.hpp"

namespace zena::engine {
namespace {

struct memory_history_factory {
    static std::unique_ptr<history> make() { return std::make_unique<memory_history>(); }
};

struct memory_presence_factory {
    static std::unique_ptr<presence> make() { return std::make_unique<memory_presence>(); }
};

}  // namespace
}  // namespace zena::engine

namespace zena::contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, HistoryContract, engine::memory_history_factory);
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, PresenceContract, engine::memory_presence_factory);
}  // namespace zena::contract

namespace zena::engine {
namespace {

using contract::labelled_event;
using contract::labels;
using labels_t = std::vector<std::string>;

// A clock the test moves by hand; it outlives the engine it is given to.
struct manual_clock {
    std::atomic<std::int64_t> ms{1'000'000};

    std::function<std::int64_t()> fn() {
        return [this] { return ms.load(); };
    }
    void advance(std::int64_t by) { ms += by; }
};

// The memory history answers inside the call (the memory broker relies on it), so these tests
// read the answer straight away.
appended append_full(memory_history& h, std::string_view ch, std::string_view label,
                     const history_limits& limits = {}) {
    std::optional<appended> out;
    h.append(ch, labelled_event(label), limits, [&](util::result<appended> r) {
        EXPECT_TRUE(r.ok());
        if (r.ok()) out = *r;
    });
    EXPECT_TRUE(out.has_value()) << "done is called before append returns";
    return out.value_or(appended{});
}

position append(memory_history& h, std::string_view ch, std::string_view label, const history_limits& limits = {}) {
    return append_full(h, ch, label, limits).at;
}

history_page read(memory_history& h, std::string_view ch, const std::optional<position>& since) {
    std::optional<history_page> out;
    h.read(ch, since, 100, [&](util::result<history_page> r) {
        if (r.ok()) out = std::move(*r);
    });
    EXPECT_TRUE(out.has_value()) << "done is called before read returns";
    return out.value_or(history_page{});
}

position top(memory_history& h, std::string_view ch) {
    std::optional<position> out;
    h.top(ch, [&](util::result<position> r) {
        if (r.ok()) out = *r;
    });
    EXPECT_TRUE(out.has_value()) << "done is called before top returns";
    return out.value_or(position{});
}

// The memory presence answers inside the call too: what join or leave answered.
bool join(memory_presence& p, std::string_view ch, std::string_view client, std::string_view user,
          std::int64_t ttl_ms) {
    std::optional<bool> out;
    p.join(ch, client, user, std::chrono::milliseconds(ttl_ms), [&](util::result<bool> r) {
        EXPECT_TRUE(r.ok());
        if (r.ok()) out = *r;
    });
    EXPECT_TRUE(out.has_value()) << "done is called before join returns";
    return out.value_or(false);
}

bool leave(memory_presence& p, std::string_view ch, std::string_view client) {
    std::optional<bool> out;
    p.leave(ch, client, [&](util::result<bool> r) {
        EXPECT_TRUE(r.ok());
        if (r.ok()) out = *r;
    });
    EXPECT_TRUE(out.has_value()) << "done is called before leave returns";
    return out.value_or(false);
}

// The budget's count for some steps, taken from an unbounded history doing the same.
template <typename Steps>
std::size_t bytes_after(Steps steps) {
    memory_history probe;
    steps(probe);
    return probe.bytes();
}

TEST(MemoryHistory, Budget_EvictsTheGloballyOldestEventsFirstAndCountsThem) {
    const auto four = [](memory_history& h) {
        append(h, "a", "a1");
        append(h, "b", "b1");
        append(h, "a", "a2");
        append(h, "b", "b2");
    };
    const auto full = bytes_after(four);
    memory_history h({.max_bytes = full - 1});
    four(h);
    EXPECT_EQ(h.evicted(), 1U);
    EXPECT_LE(h.bytes(), full - 1);

    const auto a = read(h, "a", std::nullopt);
    EXPECT_FALSE(a.recovered) << "a1 was evicted";
    EXPECT_EQ(labels(a), (labels_t{"a2"}));
    EXPECT_TRUE(read(h, "b", std::nullopt).recovered);

    append(h, "b", "b3");  // the oldest now is b1, older than a2
    EXPECT_EQ(h.evicted(), 2U);
    const auto b = read(h, "b", std::nullopt);
    EXPECT_FALSE(b.recovered);
    EXPECT_EQ(labels(b), (labels_t{"b2", "b3"}));
    EXPECT_EQ(labels(read(h, "a", std::nullopt)), (labels_t{"a2"}));
    EXPECT_TRUE(read(h, "b", position{b.top.epoch, 1}).recovered) << "nothing after b1 was lost";
}

TEST(MemoryHistory, Budget_DropsEmptyChannelStatesBeforeEvents) {
    const auto steps = [](memory_history& h) {
        append(h, "a", "a1");
        top(h, "e1");
        top(h, "e2");
    };
    const auto full = bytes_after(steps);
    memory_history h({.max_bytes = full - 1});
    append(h, "a", "a1");
    const auto e1 = top(h, "e1");
    top(h, "e2");  // over budget: e1, the least recently touched empty state, goes
    EXPECT_EQ(h.evicted(), 0U);
    EXPECT_EQ(h.channels(), 2U);
    const auto a = read(h, "a", std::nullopt);
    EXPECT_TRUE(a.recovered);
    EXPECT_EQ(labels(a), (labels_t{"a1"}));
    const auto again = read(h, "e1", e1);
    EXPECT_NE(again.top.epoch, e1.epoch) << "a dropped state comes back in a new epoch";
    EXPECT_FALSE(again.recovered);
}

TEST(MemoryHistory, Budget_KeepsTheEventJustAppendedUntilTheNextCall) {
    memory_history h({.max_bytes = 1});
    const auto a = append(h, "a", "a1");
    EXPECT_EQ(a.seq, 1U);
    EXPECT_EQ(h.evicted(), 0U);
    const auto page = read(h, "a", position{a.epoch, 0});
    EXPECT_EQ(h.evicted(), 1U);
    EXPECT_FALSE(page.recovered);
    EXPECT_TRUE(page.events.empty());
    EXPECT_EQ(page.top, a) << "the channel being read keeps its state";
}

TEST(MemoryHistory, Bytes_CountOnlyWhatIsLeftOnceEventsAndIdleStatesAreGone) {
    manual_clock clock;
    memory_history h({.meta_ttl = std::chrono::milliseconds(1000), .now_ms = clock.fn()});
    append(h, "a", "a1", {.max_events = 1, .max_age = std::chrono::milliseconds(100)});
    append(h, "a", "a2", {.max_events = 1, .max_age = std::chrono::milliseconds(100)});
    EXPECT_GT(h.bytes(), 0U);
    clock.advance(2000);
    top(h, "b");  // trims a's expired event: a is empty from now
    EXPECT_EQ(h.channels(), 2U);
    clock.advance(1001);
    top(h, "b");  // a has been empty and untouched for longer than meta_ttl
    EXPECT_EQ(h.channels(), 1U);
    EXPECT_EQ(h.bytes(), bytes_after([](memory_history& p) { top(p, "b"); }));
}

TEST(MemoryHistory, MetaTtl_DropsAnIdleEmptyChannel_WhichComesBackInANewEpoch) {
    manual_clock clock;
    memory_history h({.meta_ttl = std::chrono::milliseconds(1000), .now_ms = clock.fn()});
    const auto first = top(h, "x");
    clock.advance(500);
    EXPECT_EQ(top(h, "x"), first);  // a touch: idle from now
    clock.advance(900);
    top(h, "other");
    EXPECT_EQ(h.channels(), 2U) << "idle 900 ms of 1000";
    clock.advance(200);
    top(h, "other");
    EXPECT_EQ(h.channels(), 1U) << "idle 1100 ms";
    const auto page = read(h, "x", first);
    EXPECT_NE(page.top.epoch, first.epoch);
    EXPECT_FALSE(page.recovered);
}

TEST(MemoryHistory, MetaTtl_NeverDropsAChannelWithEvents) {
    manual_clock clock;
    memory_history h({.meta_ttl = std::chrono::milliseconds(1000), .now_ms = clock.fn()});
    const auto a = append(h, "x", "a");
    clock.advance(5000);
    top(h, "other");
    EXPECT_EQ(h.channels(), 2U);
    const auto page = read(h, "x", position{a.epoch, 0});
    EXPECT_TRUE(page.recovered);
    EXPECT_EQ(labels(page), (labels_t{"a"}));
}

TEST(MemoryHistory, Clock_StampsEventsAndAgesThemByIt) {
    manual_clock clock;
    memory_history h({.now_ms = clock.fn()});
    const history_limits young{.max_events = 10, .max_age = std::chrono::milliseconds(100)};
    const auto start = clock.ms.load();
    const auto a = append(h, "x", "a", young);
    auto page = read(h, "x", std::nullopt);
    ASSERT_EQ(page.events.size(), 1U);
    EXPECT_EQ(page.events[0].published_ms, start);
    clock.advance(100);
    EXPECT_EQ(read(h, "x", std::nullopt).events.size(), 1U) << "100 ms old is not older than 100 ms";
    clock.advance(1);
    page = read(h, "x", position{a.epoch, 0});
    EXPECT_TRUE(page.events.empty());
    EXPECT_FALSE(page.recovered);
}

TEST(MemoryHistory, ExpiredEventsOfUntouchedChannels_AreTrimmedByOtherCalls) {
    manual_clock clock;
    memory_history h({.now_ms = clock.fn()});
    const auto a = append_full(h, "x", "a", {.max_events = 10, .max_age = std::chrono::milliseconds(100)});
    top(h, "y");
    const auto before = h.bytes();
    clock.advance(200);
    top(h, "y");
    const auto e = labelled_event("a");
    ASSERT_NE(a.message.frame, nullptr);
    EXPECT_EQ(before - h.bytes(), util::allocation_bytes(a.message.frame->buffer_bytes()) +
                                      util::allocation_bytes(e->type.capacity()) +
                                      util::allocation_bytes(e->payload.capacity()) +
                                      memory_history::k_entry_overhead_bytes + memory_history::k_events_block_bytes);
}

TEST(MemoryHistory, Append_SharesTheEvent_OneEventInManyChannelsIsHeldOnce) {
    memory_history h;
    const auto e = labelled_event("shared");
    for (const auto* ch : {"x", "y"}) {
        h.append(ch, e, {}, [](util::result<appended> r) { EXPECT_TRUE(r.ok()); });
    }
    for (const auto* ch : {"x", "y"}) {
        const auto page = read(h, ch, std::nullopt);
        ASSERT_EQ(page.events.size(), 1U) << ch;
        EXPECT_EQ(page.events[0].event.get(), e.get()) << ch << ": the same event, not a copy";
    }
}

TEST(MemoryHistory, Bytes_CountTheTypeAndPayloadOfEachStoredEvent) {
    const auto with = [](std::string payload) {
        auto e = std::make_shared<event>(*labelled_event("same frame"));
        e->payload = std::move(payload);
        return e;
    };
    const auto after = [](std::shared_ptr<const event> e) {
        memory_history h;
        h.append("x", std::move(e), {}, [](util::result<appended> r) { EXPECT_TRUE(r.ok()); });
        return h.bytes();
    };
    const auto small = after(with("{}"));
    const auto large_event = with(R"({"text":")" + std::string(1000, 'a') + R"("})");
    const auto large = after(large_event);
    // The payload is held by the stored event, and again in the channel's frame; what is counted
    // is what their allocations hold: the payload's capacity (the small one lives in the string's
    // own 15-byte buffer), and the frame's buffer, reserved a little ahead, each as the allocator
    // rounds it (util::allocation_bytes: up to a granule less here, where both round).
    const auto payload_grown = large_event->payload.capacity() - std::string{}.capacity();
    constexpr std::size_t k_frame_grown = 1000U + 11U - 2U;
    EXPECT_GE(large - small, payload_grown + k_frame_grown - 2 * 16U);
    EXPECT_LE(large - small, payload_grown + k_frame_grown + 128U);
}

TEST(MemoryHistory, NewInstance_NewEpochs_SoARestartIsNeverRecovered) {
    memory_history before;
    const auto a = append(before, "x", "a");
    memory_history after;
    append(after, "x", "a");
    const auto page = read(after, "x", a);
    EXPECT_NE(page.top.epoch, a.epoch);
    EXPECT_FALSE(page.recovered);
}

TEST(MemoryHistory, Epoch_IsLowercaseLettersAndDigitsAndNewPerChannel) {
    memory_history h;
    const auto x = top(h, "x");
    const auto y = top(h, "y");
    EXPECT_NE(x.epoch, y.epoch);
    for (const auto& epoch : {x.epoch, y.epoch}) {
        EXPECT_GE(epoch.size(), 9U);
        for (const char c : epoch) {
            EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'z')) << epoch;
        }
    }
}

// Here rather than in the broker contract: it is about what reaches the memory history.
TEST(MemoryBroker, StoredBatchWithAnEphemeralEvent_IsRefusedWholeBeforeAnyAppend) {
    hub::user_registry registry;
    hub::hub_set hubs({[](hub::hub_set::task task) { task(); }}, registry);  // one hub, run inline
    memory_history h;
    memory_broker broker(hubs, h);
    const auto stored = [](std::shared_ptr<const event> e, std::string channel) {
        publication p;
        p.event = std::move(e);
        p.channels.push_back(std::move(channel));
        p.history = true;
        return p;
    };
    std::optional<util::result<std::vector<publish_outcome>>> answer;
    broker.publish(
        std::make_shared<const std::vector<publication>>(std::vector{
            stored(labelled_event("a"), "x"), stored(labelled_event("b", ws::delivery_class::ephemeral), "y")}),
        [&](util::result<std::vector<publish_outcome>> r) { answer = std::move(r); });
    ASSERT_TRUE(answer.has_value()) << "refused inside the call";
    ASSERT_FALSE(answer->ok());
    EXPECT_NE(answer->message().find("ephemeral"), std::string::npos) << answer->message();
    EXPECT_EQ(top(h, "x").seq, 0U) << "the batch's first publication was not stored either";
}

TEST(MemoryBroker, StoredPublish_ItsAnswerMayPublishAgain) {
    // One hub, run inline: the delivery finishes inside publish(), under the broker's lock. The
    // answer must come after the lock is released, or this second publish would wait forever.
    hub::user_registry registry;
    hub::hub_set hubs({[](hub::hub_set::task task) { task(); }}, registry);
    memory_history h;
    memory_broker broker(hubs, h);
    const auto stored = [](std::string label) {
        publication p;
        p.event = labelled_event(label);
        p.channels.emplace_back("x");
        p.history = true;
        return std::make_shared<const std::vector<publication>>(std::vector{std::move(p)});
    };
    std::vector<std::uint64_t> seqs;
    broker.publish(stored("first"), [&](util::result<std::vector<publish_outcome>> first) {
        ASSERT_TRUE(first.ok());
        seqs.push_back(first->at(0).positions.at(0).seq);
        broker.publish(stored("second"), [&](util::result<std::vector<publish_outcome>> second) {
            ASSERT_TRUE(second.ok());
            seqs.push_back(second->at(0).positions.at(0).seq);
        });
    });
    EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2}));
}

TEST(MemoryPresence, Sweep_RemovesExpiredEntriesAndCountsThem) {
    manual_clock clock;
    memory_presence p(clock.fn());
    EXPECT_TRUE(join(p, "x", "c1", "alice", 100));
    EXPECT_TRUE(join(p, "x", "c2", "bob", 100));
    EXPECT_TRUE(join(p, "y", "c3", "alice", 100));
    EXPECT_TRUE(join(p, "y", "c4", "carol", 1000));
    EXPECT_EQ(p.sweep(), 0U);
    clock.advance(150);
    EXPECT_EQ(p.entries(), 4U) << "nothing touched x or y since";
    EXPECT_EQ(p.sweep(), 3U);
    EXPECT_EQ(p.entries(), 1U);
    EXPECT_EQ(p.sweep(), 0U);
    EXPECT_TRUE(join(p, "y", "c3", "alice", 100)) << "swept: alice arrives again";
}

TEST(MemoryPresence, Clock_AnEntryExpiresExactlyTtlAfterItsLastJoin) {
    manual_clock clock;
    memory_presence p(clock.fn());
    const auto clients = [&p] {
        std::size_t n = 0;
        p.query("x", [&n](util::result<presence_state> s) { n = s->clients; });
        return n;
    };
    EXPECT_TRUE(join(p, "x", "c1", "alice", 100));
    clock.advance(99);
    EXPECT_EQ(clients(), 1U);
    EXPECT_FALSE(join(p, "x", "c1", "alice", 100)) << "99 ms after: a refresh";
    clock.advance(99);
    EXPECT_EQ(clients(), 1U);
    clock.advance(1);
    EXPECT_EQ(clients(), 0U);
}

TEST(MemoryPresence, Join_SweepsItsChannelOnceTheEarliestExpiryHasPassed) {
    manual_clock clock;
    memory_presence p(clock.fn());
    EXPECT_TRUE(join(p, "x", "c1", "alice", 100));
    EXPECT_TRUE(join(p, "y", "c2", "bob", 100));
    clock.advance(150);
    EXPECT_TRUE(join(p, "x", "c3", "carol", 100));
    EXPECT_EQ(p.entries(), 2U) << "x's expired entry went on the join; y's waits for a touch or a sweep";
    EXPECT_FALSE(leave(p, "y", "nobody"));
    EXPECT_EQ(p.entries(), 1U);
}

TEST(MemoryPresence, Join_AfterTheOnlyClientExpiredUnswept_TheUserArrivesAgain) {
    manual_clock clock;
    memory_presence p(clock.fn());
    EXPECT_TRUE(join(p, "x", "c1", "alice", 100));
    EXPECT_TRUE(join(p, "x", "c2", "bob", 1000));
    clock.advance(100);
    EXPECT_EQ(p.entries(), 2U) << "nothing touched x since: c1 is expired but still held";
    EXPECT_TRUE(join(p, "x", "c1", "alice", 100)) << "the same client, its entry expired: alice arrives again";
    clock.advance(100);
    EXPECT_TRUE(join(p, "x", "c9", "alice", 100)) << "a new client, alice's only one expired";
    EXPECT_FALSE(leave(p, "x", "c1")) << "c1 expired: it was not there to leave";
    EXPECT_TRUE(leave(p, "x", "c9"));
    EXPECT_FALSE(join(p, "x", "c3", "bob", 1000));
}

TEST(MemoryPresence, Leave_LastClientOfALongNamedUser_AnswersTrueWithoutReadingTheErasedName) {
    // The entry points to its user's key, erased with the user's last entry: the answer must
    // be taken before. Long names, past the short-string buffer, make a dangling read visible
    // to the sanitizers.
    memory_presence p;
    const std::string user(64, 'u');
    EXPECT_TRUE(join(p, "x", "c1", user, 1000));
    EXPECT_FALSE(join(p, "x", "c2", user, 1000));
    EXPECT_TRUE(join(p, "x", "c3", std::string(64, 'v'), 1000));
    EXPECT_FALSE(leave(p, "x", "c1"));
    EXPECT_TRUE(leave(p, "x", "c2"));
    EXPECT_TRUE(join(p, "x", "c1", user, 1000)) << "gone, then back";
}

}  // namespace
}  // namespace zena::engine
