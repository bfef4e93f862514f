#include "redis/subscriber.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "contract/redis_server.hpp"
#include "redis/connection.hpp"

namespace zena::redis {
namespace {

using namespace std::chrono_literals;

// Whether `ready` was called with true within 5 s.
bool confirmed(std::future<bool>& ready) { return ready.wait_for(5s) == std::future_status::ready && ready.get(); }

// A channel left and taken again within one batch of requests (a user's last connection closes
// and a new one opens: a page reload) ends subscribed in Redis, not only in the subscriber's
// own state: its unsubscription reaches Redis before its subscription. Written the other way
// round, the channel's messages were never received until the next reconnect.
TEST(RedisSubscriber, LeftAndTakenAgainInOneBatch_EndsSubscribed) {
    auto& server = contract::redis_server::shared();
    ASSERT_TRUE(server.up()) << "redis-server did not start (it must be on PATH)";
    std::mutex mutex;
    std::condition_variable arrived;
    std::vector<std::string> messages;
    subscriber s{
        subscriber_options{.where = server.endpoint(), .on_message = [&](std::string_view, std::string_view message) {
                               const std::lock_guard lock{mutex};
                               messages.emplace_back(message);
                               arrived.notify_all();
                           }}};
    const std::string channel = "zena-test:left-and-taken-again";
    std::promise<bool> first;
    auto first_ready = first.get_future();
    s.subscribe(channel, [&first](bool ok) { first.set_value(ok); });
    ASSERT_TRUE(confirmed(first_ready));

    // The subscriber's thread is held while both requests are made, so that it takes them as one
    // batch.
    std::promise<void> holding;
    std::promise<void> release;
    auto released = release.get_future();
    s.post([&holding, &released] {
        holding.set_value();
        released.wait();
    });
    holding.get_future().wait();
    s.unsubscribe(channel);
    std::promise<bool> again;
    auto again_ready = again.get_future();
    s.subscribe(channel, [&again](bool ok) { again.set_value(ok); });
    release.set_value();
    ASSERT_TRUE(confirmed(again_ready));

    std::string error;
    auto publisher = connection::open(server.endpoint(), 2s, error);
    ASSERT_TRUE(publisher) << error;
    const std::string_view publish[] = {s.sharded() ? "SPUBLISH" : "PUBLISH", channel, "after-the-reload"};
    const auto r = publisher->command(publish);
    ASSERT_TRUE(r.ok()) << r.error_text();
    EXPECT_EQ(r.integer(), 1) << "connections subscribed to the channel in Redis";
    std::unique_lock lock{mutex};
    EXPECT_TRUE(arrived.wait_for(lock, 5s, [&] { return !messages.empty(); }));
    EXPECT_EQ(messages, std::vector<std::string>{"after-the-reload"});
}

}  // namespace
}  // namespace zena::redis
