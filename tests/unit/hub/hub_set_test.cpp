#include "hub/hub_set.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "hub/task_thread.hpp"
#include "hub/test_connection.hpp"
#include "protocol/envelope.hpp"

namespace zena::hub {
namespace {

TEST(HubSet, OnEveryHub_RunsOncePerThreadAndSums) {
    user_registry registry;
    std::vector<std::unique_ptr<testing::task_thread>> threads;
    std::vector<hub_set::post_fn> posts;
    for (int i = 0; i < 4; ++i) {
        threads.push_back(std::make_unique<testing::task_thread>());
        posts.emplace_back([t = threads.back().get()](hub_set::task task) { t->post(std::move(task)); });
    }
    hub_set hubs{posts, registry};
    ASSERT_EQ(hubs.size(), 4U);

    // Each thread gets two alice connections, added on its own thread.
    std::vector<std::shared_ptr<testing::recording_connection>> conns;
    for (std::size_t i = 0; i < 4; ++i) {
        for (int j = 0; j < 2; ++j) conns.push_back(testing::make(i * 10 + j, "alice"));
    }
    std::atomic<int> added{0};
    for (std::size_t i = 0; i < 4; ++i) {
        posts[i]([&, i] {
            hubs.local(i).add(conns[i * 2]);
            hubs.local(i).add(conns[i * 2 + 1]);
            ++added;
        });
    }
    while (added < 4) std::this_thread::yield();
    EXPECT_EQ(registry.connections_of("alice"), 8U);

    const ws::outbound frame{protocol::make_event_frame("t", "{}")};
    std::promise<std::size_t> total;
    std::atomic<int> done_calls{0};
    hubs.on_every_hub([frame](hub& h) { return h.send_to_user("alice", frame); },
                      [&](std::size_t n) {
                          ++done_calls;
                          total.set_value(n);
                      });
    EXPECT_EQ(total.get_future().get(), 8U);
    EXPECT_EQ(done_calls, 1);
    for (const auto& c : conns) EXPECT_EQ(c->frames.size(), 1U);

    // Order: tasks posted from one thread run in order on each target thread.
    std::promise<void> finished;
    for (int k = 0; k < 100; ++k) {
        ws::outbound f{protocol::make_event_frame("seq", std::to_string(k))};
        hubs.on_every_hub([f](hub& h) { return h.send_to_user("alice", f); },
                          [&, k](std::size_t) {
                              if (k == 99) finished.set_value();
                          });
    }
    finished.get_future().wait();
    for (const auto& c : conns) {
        ASSERT_EQ(c->frames.size(), 101U);
        for (int k = 0; k < 100; ++k)
            EXPECT_EQ(c->frames[k + 1]->payload(), R"({"type":"seq","payload":)" + std::to_string(k) + "}");
    }
    // Tear down on the owning threads.
    std::atomic<int> removed{0};
    for (std::size_t i = 0; i < 4; ++i) {
        posts[i]([&, i] {
            hubs.local(i).remove(*conns[i * 2]);
            hubs.local(i).remove(*conns[i * 2 + 1]);
            ++removed;
        });
    }
    while (removed < 4) std::this_thread::yield();
    EXPECT_EQ(registry.connections(), 0U);
}

TEST(HubSet, OnEveryHub_FromAnEventLoopThread_RunsItsOwnHubAtOnce) {
    user_registry registry;
    std::vector<hub_set::post_fn> posts;
    std::vector<std::vector<hub_set::task>> queued(2);
    for (std::size_t i = 0; i < 2; ++i) {
        posts.emplace_back([&queued, i](hub_set::task task) { queued[i].push_back(std::move(task)); });
    }
    hub_set hubs{posts, registry};
    auto mine = testing::make(1, "alice");
    auto theirs = testing::make(2, "alice");
    // A thread of its own: enter() marks a thread for good.
    std::thread([&] {
        hub_set::enter(0);
        hubs.local(0).add(mine);
        hubs.local(1).add(theirs);
        ASSERT_TRUE(queued[0].empty() && queued[1].empty()) << "adding to a hub posts nothing";
        std::size_t total = 0;
        const ws::outbound frame{protocol::make_event_frame("t", "{}")};
        hubs.on_every_hub([frame](hub& h) { return h.send_to_user("alice", frame); },
                          [&](std::size_t n) { total = n; });
        // Thread 0's hub ran inside the call; thread 1's waits in its queue.
        EXPECT_EQ(mine->frames.size(), 1U);
        EXPECT_TRUE(theirs->frames.empty());
        EXPECT_TRUE(queued[0].empty());
        ASSERT_EQ(queued[1].size(), 1U);
        EXPECT_EQ(total, 0U);
        queued[1].front()();
        EXPECT_EQ(theirs->frames.size(), 1U);
        EXPECT_EQ(total, 2U);  // done ran once, after both
        hubs.local(0).remove(*mine);
        hubs.local(1).remove(*theirs);
    }).join();
}

}  // namespace
}  // namespace zena::hub
