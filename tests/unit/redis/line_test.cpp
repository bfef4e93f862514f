#include "redis/line.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <thread>

namespace zena::redis {
namespace {

using namespace std::chrono_literals;

// A retry wait that has already expired when the connector is stopped still has its handler
// run, with no error (Asio had taken it off the timer before the timer was destroyed). It must
// start nothing and touch nothing of the stopped connector: under TSan this once crashed in
// RedisPipeline tests, on the destroyed timer.
TEST(RedisConnector, StoppedAfterItsRetryWaitExpired_TheWaitStartsNothing) {
    for (int round = 0; round < 20; ++round) {
        boost::asio::io_context io{1};
        connector c(io, 1ms, 10ms);
        c.retry_now();
        int started = 0;
        c.when_due([&] { ++started; });
        std::this_thread::sleep_for(2ms);
        // The loop's next turn finds the wait expired and queues its handler behind this one,
        // which stops the connector first.
        boost::asio::post(io, [&] { c.stop(); });
        io.run_for(20ms);
        EXPECT_EQ(started, 0) << "round " << round;
    }
}

}  // namespace
}  // namespace zena::redis
