#include "redis/pipeline.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zena::redis {
namespace {

using namespace std::chrono_literals;

// A socket listening on a loopback port of the kernel's choice (set in `port`).
int listen_on_loopback(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ADD_FAILURE() << "cannot listen on loopback";
    }
    port = ntohs(a.sin_port);
    return fd;
}

// A Redis that accepts connections and reads what it is sent but never answers: a paused one
// (SIGSTOP) as its clients see it. It records the bytes it received. Its thread polls every
// 20 ms until the destructor stops it.
class silent_server {
public:
    silent_server() {
        fd_ = listen_on_loopback(port_);
        thread_ = std::thread([this] { run(); });
    }
    ~silent_server() {
        stop_.store(true);
        thread_.join();
        for (const int c : clients_) ::close(c);
        ::close(fd_);
    }
    silent_server(const silent_server&) = delete;
    silent_server& operator=(const silent_server&) = delete;

    endpoint where() const { return endpoint{.host = "127.0.0.1", .port = port_}; }
    std::string received() const {
        const std::lock_guard lock{mutex_};
        return received_;
    }
    // Whether `text` arrives within `wait`.
    bool receives(const std::string& text, std::chrono::milliseconds wait) const {
        const auto deadline = std::chrono::steady_clock::now() + wait;
        while (std::chrono::steady_clock::now() < deadline) {
            if (received().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(10ms);
        }
        return received().find(text) != std::string::npos;
    }

private:
    void run() {
        while (!stop_.load()) {
            std::vector<pollfd> p{{fd_, POLLIN, 0}};
            for (const int c : clients_) p.push_back({c, POLLIN, 0});
            if (::poll(p.data(), p.size(), 20) <= 0) continue;
            if ((p[0].revents & POLLIN) != 0) {
                if (const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC); c >= 0) clients_.push_back(c);
            }
            for (std::size_t i = 1; i < p.size(); ++i) {
                if (p[i].revents == 0) continue;
                char buffer[4096];
                const auto n = ::read(p[i].fd, buffer, sizeof buffer);
                if (n > 0) {
                    const std::lock_guard lock{mutex_};
                    received_.append(buffer, static_cast<std::size_t>(n));
                    continue;
                }
                ::close(p[i].fd);  // the client closed it
                std::erase(clients_, p[i].fd);
            }
        }
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::vector<int> clients_;  // the thread's own
    mutable std::mutex mutex_;
    std::string received_;
    std::thread thread_;
};

// A Redis that takes one connection, reads one command, answers it with `answer` (bytes in
// Redis's wire format) and closes the connection at once.
class answer_once_server {
public:
    explicit answer_once_server(std::string answer) : answer_(std::move(answer)) {
        fd_ = listen_on_loopback(port_);
        thread_ = std::thread([this] { run(); });
    }
    ~answer_once_server() {
        ::shutdown(fd_, SHUT_RDWR);  // ends an accept still waiting
        thread_.join();
        ::close(fd_);
    }
    answer_once_server(const answer_once_server&) = delete;
    answer_once_server& operator=(const answer_once_server&) = delete;
    endpoint where() const { return endpoint{.host = "127.0.0.1", .port = port_}; }

private:
    void run() {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) return;
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        pollfd in{c, POLLIN, 0};
        char buffer[4096];
        if (::poll(&in, 1, 5000) > 0 && ::read(c, buffer, sizeof buffer) > 0) {
            std::size_t sent = 0;
            while (sent < answer_.size()) {
                const auto n = ::write(c, answer_.data() + sent, answer_.size() - sent);
                if (n <= 0) break;
                sent += static_cast<std::size_t>(n);
            }
        }
        ::close(c);
    }

    std::string answer_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

// The reply a command's callback gets, waited for at most 5 s.
reply reply_to(pipeline& p, pipeline::args command) {
    auto got = std::make_shared<std::promise<reply>>();
    auto future = got->get_future();
    p.submit(std::move(command), [got](reply r) { got->set_value(std::move(r)); });
    if (future.wait_for(5s) != std::future_status::ready) {
        ADD_FAILURE() << "no callback within 5 s";
        return {};
    }
    return future.get();
}

TEST(RedisPipeline, WrittenAndNotAnswered_OutcomeUnknown) {
    silent_server server;
    pipeline p{pipeline_options{.where = server.where(), .timeout = 200ms}};
    const auto r = reply_to(p, {"SET", "zena-written", "1"});
    EXPECT_TRUE(r.empty());
    EXPECT_TRUE(r.outcome_unknown()) << "a command that reached Redis may run when Redis resumes";
    EXPECT_TRUE(server.receives("zena-written", 2s)) << "it was written";
}

// A command submitted while an earlier one's reply is due is written at once: Redis always has
// work, and the command does not wait for the earlier ones to be answered (a round trip to a
// remote Redis, or the earlier batch's time). Both then time out, unanswered, as one line.
TEST(RedisPipeline, WrittenWhileEarlierRepliesAreDue) {
    silent_server server;
    pipeline p{pipeline_options{.where = server.where(), .timeout = 3s}};
    auto first = std::make_shared<std::promise<reply>>();
    auto second = std::make_shared<std::promise<reply>>();
    p.submit({"SET", "zena-first", "1"}, [first](reply r) { first->set_value(std::move(r)); });
    ASSERT_TRUE(server.receives("zena-first", 2s));
    p.submit({"SET", "zena-second", "1"}, [second](reply r) { second->set_value(std::move(r)); });
    EXPECT_TRUE(server.receives("zena-second", 1s)) << "waited for the first command's reply";
    auto first_reply = first->get_future();
    auto second_reply = second->get_future();
    ASSERT_EQ(first_reply.wait_for(5s), std::future_status::ready);
    ASSERT_EQ(second_reply.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(first_reply.get().outcome_unknown());
    EXPECT_TRUE(second_reply.get().outcome_unknown());
}

TEST(RedisPipeline, NeverWritten_NotSent) {
    silent_server server;
    pipeline p{
        pipeline_options{.where = server.where(), .timeout = 200ms, .on_connect = [](connection&, std::string& error) {
                             error = "refused by the test";
                             return false;
                         }}};
    const auto r = reply_to(p, {"SET", "zena-never-written", "1"});
    EXPECT_TRUE(r.empty());
    EXPECT_FALSE(r.outcome_unknown()) << "nothing reached Redis: the caller may say so";
    EXPECT_FALSE(p.up());
    EXPECT_EQ(p.last_error(), "refused by the test");
    EXPECT_FALSE(server.receives("zena-never-written", 200ms));
}

// On a loop of the caller's (the app gives event loop 0), the attempt to connect runs on a thread
// of its own: a Redis that takes the connection and never answers the setup holds that thread
// for the timeout, not the loop. The command waiting for the attempt is then answered "not
// sent", on the loop's thread.
TEST(RedisPipeline, OnAGivenLoop_AnAttemptThatHangsDoesNotStallTheLoop) {
    silent_server server;
    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread loop([&io] { io.run(); });
    {
        pipeline p{pipeline_options{.where = server.where(),
                                    .timeout = 1500ms,
                                    .on_connect =
                                        [](connection& c, std::string& error) {
                                            const std::string_view ping[] = {"PING"};
                                            if (c.command(ping).ok()) return true;
                                            error = "no answer to PING";
                                            return false;
                                        },
                                    .context = &io}};
        auto answered = std::make_shared<std::promise<std::pair<reply, std::thread::id>>>();
        p.submit({"SET", "zena-held", "1"}, [answered](reply r) {
            answered->set_value({std::move(r), std::this_thread::get_id()});
        });
        ASSERT_TRUE(server.receives("PING", 2s)) << "the attempt began";
        auto ran = std::make_shared<std::promise<void>>();
        boost::asio::post(io, [ran] { ran->set_value(); });
        EXPECT_EQ(ran->get_future().wait_for(500ms), std::future_status::ready)
            << "the loop waited for the attempt to connect";
        auto got = answered->get_future();
        ASSERT_EQ(got.wait_for(5s), std::future_status::ready);
        const auto [r, on] = got.get();
        EXPECT_TRUE(r.empty());
        EXPECT_FALSE(r.outcome_unknown()) << "it waited for the attempt, and was never written";
        EXPECT_EQ(on, loop.get_id()) << "callbacks run on the loop";
        EXPECT_EQ(p.last_error(), "no answer to PING");
        work.reset();
        io.stop();
        loop.join();
    }  // destroyed with no thread running its loop, as the app does after its loops ended
}

// A reply read whole in the same read as Redis's close is the command's reply, not an unknown
// outcome. 16,384 bytes in all, the size of one read, so that the read which takes the reply goes
// on to find the close; the loop is held meanwhile, so both wait for it.
TEST(RedisPipeline, AReplyReadWithTheClose_IsHandedOver) {
    const std::string value(16374, 'v');
    answer_once_server server{"$16374\r\n" + value + "\r\n"};
    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread loop([&io] { io.run(); });
    {
        pipeline p{pipeline_options{.where = server.where(), .timeout = 2s, .context = &io}};
        for (int i = 0; i < 500 && !p.up(); ++i) std::this_thread::sleep_for(10ms);
        ASSERT_TRUE(p.up());
        auto answered = std::make_shared<std::promise<reply>>();
        p.submit({"GET", "zena-big"}, [answered](reply r) { answered->set_value(std::move(r)); });
        boost::asio::post(io, [] { std::this_thread::sleep_for(300ms); });  // after the write
        auto got = answered->get_future();
        ASSERT_EQ(got.wait_for(5s), std::future_status::ready);
        const auto r = got.get();
        EXPECT_TRUE(r.ok()) << (r.outcome_unknown() ? "answered as unknown" : "no reply");
        EXPECT_EQ(r.str(), value);
        work.reset();
        io.stop();
        loop.join();
    }
}

}  // namespace
}  // namespace zena::redis
