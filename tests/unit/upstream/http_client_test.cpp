#include "upstream/http_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "upstream/callbacks.hpp"
#include "upstream/fake_backend.hpp"

namespace zena::upstream {
namespace {

using test_support::fake_backend;
using test_support::received;
using test_support::refused_port;
using test_support::reply;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// The results the client calls back with, by request id.
using results = test_support::callbacks<http_result>;

http_request post_to(const fake_backend& backend, std::string body = "{}", std::chrono::milliseconds timeout = 2000ms) {
    return http_request{.url = backend.url("/hook"), .body = std::move(body), .timeout = timeout};
}

TEST(HttpClient, Post_SendsTheBodyFieldsAndAnswersTheStatusAndBody) {
    fake_backend backend([](const received&) { return reply{.status = 202, .body_bytes = 3}; });
    http_client client({});
    results got;
    auto request = post_to(backend, R"({"a":1})");
    request.headers.emplace_back("X-Zena-Signature", "sha256=00");
    client.send(std::move(request), got.done(0));
    ASSERT_TRUE(got.wait(1));
    const auto answer = got.first(0);
    ASSERT_TRUE(answer) << answer.message();
    EXPECT_EQ(answer->status, 202U);
    EXPECT_EQ(answer->body, "xxx");
    const auto seen = backend.requests();
    ASSERT_EQ(seen.size(), 1U);
    EXPECT_EQ(seen[0].method, "POST");
    EXPECT_EQ(seen[0].target, "/hook");
    EXPECT_EQ(seen[0].content_type, "application/json");
    EXPECT_EQ(seen[0].signature, "sha256=00");
    EXPECT_EQ(seen[0].body, R"({"a":1})");
}

TEST(HttpClient, Get_SendsNoBody) {
    fake_backend backend([](const received&) { return reply{.status = 200, .body_bytes = 10}; });
    http_client client({});
    results got;
    client.send(http_request{.method = http_method::get, .url = backend.url("/keys")}, got.done(0));
    ASSERT_TRUE(got.wait(1));
    ASSERT_TRUE(got.first(0));
    const auto seen = backend.requests();
    ASSERT_EQ(seen.size(), 1U);
    EXPECT_EQ(seen[0].method, "GET");
    EXPECT_EQ(seen[0].body, "");
}

TEST(HttpClient, SequentialRequests_ReuseOneKeptAliveConnection) {
    fake_backend backend([](const received&) { return reply{.status = 200}; });
    http_client client({});
    results got;
    for (std::size_t i = 0; i < 5; ++i) {
        client.send(post_to(backend), got.done(i));
        ASSERT_TRUE(got.wait(i + 1));
        ASSERT_TRUE(got.first(i)) << got.first(i).message();
    }
    EXPECT_EQ(backend.connections(), 1U);
    const auto seen = backend.requests();
    ASSERT_EQ(seen.size(), 5U);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(seen[i].request_on_connection, i);
}

TEST(HttpClient, ServerClosesAfterEachAnswer_ConnectionIsReopened) {
    fake_backend backend([](const received&) { return reply{.status = 200, .close_after = true}; });
    http_client client({});
    results got;
    for (std::size_t i = 0; i < 3; ++i) {
        client.send(post_to(backend), got.done(i));
        ASSERT_TRUE(got.wait(i + 1));
        ASSERT_TRUE(got.first(i)) << got.first(i).message();
        std::this_thread::sleep_for(20ms);  // the close reaches the client's socket
    }
    EXPECT_EQ(backend.connections(), 3U);
}

TEST(HttpClient, ServerNeverAnswers_FailsAtTheTimeoutCountedFromSend) {
    fake_backend backend([](const received&) { return reply{.hold = true}; });
    http_client client({});
    results got;
    const auto start = steady::now();
    client.send(post_to(backend, "{}", 300ms), got.done(0));
    ASSERT_TRUE(got.wait(1));
    const auto answer = got.first(0);
    ASSERT_FALSE(answer);
    EXPECT_EQ(answer.message(), "timed out");
    EXPECT_GE(got.at(0) - start, 290ms);
    EXPECT_LT(got.at(0) - start, 1500ms);
}

TEST(HttpClient, QueuedPastItsDeadline_IsNotSent) {
    // One request at a time: the first is held by the backend past the second's deadline.
    fake_backend backend([](const received& r) { return reply{.hold = r.body == "first"}; });
    http_client client({.max_in_flight = 1});
    results got;
    client.send(post_to(backend, "first", 500ms), got.done(0));
    client.send(post_to(backend, "second", 200ms), got.done(1));
    ASSERT_TRUE(got.wait(2));
    EXPECT_EQ(got.first(0).message(), "timed out");
    EXPECT_EQ(got.first(1).message(), "timed out in the queue");
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(backend.requests().size(), 1U) << "the second request never reached the backend";
}

TEST(HttpClient, FullQueue_FailsAtOnce) {
    fake_backend backend([](const received&) { return reply{.hold = true}; });
    http_client client({.max_in_flight = 1, .max_queue = 1});
    results got;
    client.send(post_to(backend, "0", 1000ms), got.done(0));  // on the wire
    client.send(post_to(backend, "1", 1000ms), got.done(1));  // queued
    client.send(post_to(backend, "2", 1000ms), got.done(2));  // beyond the queue
    ASSERT_TRUE(got.wait(1, 500ms));
    EXPECT_EQ(got.first(2).message(), "queue full");
    ASSERT_TRUE(got.wait(3));
}

TEST(HttpClient, OversizedResponse_Fails) {
    // The body's size is named by the request's body.
    fake_backend backend([](const received& r) { return reply{.status = 200, .body_bytes = std::stoul(r.body)}; });
    http_client client({.max_response_bytes = 4096});
    results got;
    client.send(post_to(backend, "4096"), got.done(0));
    ASSERT_TRUE(got.wait(1));
    ASSERT_TRUE(got.first(0)) << got.first(0).message();
    EXPECT_EQ(got.first(0)->body.size(), 4096U);
    client.send(post_to(backend, "4097"), got.done(1));
    ASSERT_TRUE(got.wait(2));
    ASSERT_FALSE(got.first(1));
    EXPECT_NE(got.first(1).message().find("response too large"), std::string::npos) << got.first(1).message();
}

TEST(HttpClient, MalformedResponse_Fails) {
    fake_backend backend([](const received&) { return reply{.raw = "this is not http\r\n\r\n"}; });
    http_client client({});
    results got;
    client.send(post_to(backend), got.done(0));
    ASSERT_TRUE(got.wait(1));
    ASSERT_FALSE(got.first(0));
    EXPECT_TRUE(got.first(0).message().starts_with("read: ")) << got.first(0).message();
}

TEST(HttpClient, RefusedConnection_FailsAtOnce) {
    http_client client({});
    results got;
    const auto start = steady::now();
    client.send(
        http_request{.url = util::parse_http_url("http://127.0.0.1:" + refused_port() + "/hook"), .timeout = 5000ms},
        got.done(0));
    ASSERT_TRUE(got.wait(1));
    ASSERT_FALSE(got.first(0));
    EXPECT_TRUE(got.first(0).message().starts_with("connect: ")) << got.first(0).message();
    EXPECT_LT(got.at(0) - start, 2s) << "a refused connection does not wait for the timeout";
}

TEST(HttpClient, Redirect_IsAnsweredAsIsUnlessAsked) {
    fake_backend backend([](const received& r) {
        if (r.target == "/old") return reply{.status = 307, .location = "/new"};
        return reply{.status = 200, .body_bytes = r.target == "/new" ? 2U : 0U};
    });
    http_client client({});
    results got;
    client.send(http_request{.url = backend.url("/old"), .body = "{}"}, got.done(0));
    ASSERT_TRUE(got.wait(1));
    ASSERT_TRUE(got.first(0));
    EXPECT_EQ(got.first(0)->status, 307U) << "not followed by default";
    client.send(http_request{.url = backend.url("/old"), .body = "{\"b\":2}", .max_redirects = 1}, got.done(1));
    ASSERT_TRUE(got.wait(2));
    ASSERT_TRUE(got.first(1)) << got.first(1).message();
    EXPECT_EQ(got.first(1)->status, 200U);
    EXPECT_EQ(got.first(1)->body, "xx");
    const auto seen = backend.requests();
    ASSERT_EQ(seen.size(), 3U);
    EXPECT_EQ(seen[2].target, "/new");
    EXPECT_EQ(seen[2].method, "POST") << "307 keeps the method and the body";
    EXPECT_EQ(seen[2].body, "{\"b\":2}");
}

TEST(HttpClient, RedirectLoop_StopsAtMaxRedirects) {
    fake_backend backend([](const received&) { return reply{.status = 302, .location = "/again"}; });
    http_client client({});
    results got;
    client.send(http_request{.url = backend.url("/start"), .body = "{}", .max_redirects = 3}, got.done(0));
    ASSERT_TRUE(got.wait(1));
    ASSERT_TRUE(got.first(0));
    EXPECT_EQ(got.first(0)->status, 302U);
    const auto seen = backend.requests();
    ASSERT_EQ(seen.size(), 4U);
    EXPECT_EQ(seen[1].method, "GET") << "a 302 after a POST is followed with a GET";
}

TEST(HttpClient, HttpsToAnUnreadableCaFile_FailsWithTls) {
    const std::string ca = "/tmp/zena-http-client-test-not-a-ca.pem";
    std::ofstream(ca) << "not a certificate\n";
    EXPECT_FALSE(check_ca_file(ca));
    EXPECT_FALSE(check_ca_file("/nonexistent/zena/ca.pem"));
    EXPECT_TRUE(check_ca_file(""));  // the system's store
    http_client client({.ca_file = ca});
    results got;
    client.send(http_request{.url = util::parse_http_url("https://127.0.0.1:" + refused_port() + "/hook")},
                got.done(0));
    ASSERT_TRUE(got.wait(1));
    ASSERT_FALSE(got.first(0));
    EXPECT_TRUE(got.first(0).message().starts_with("tls: ")) << got.first(0).message();
    std::remove(ca.c_str());
}

TEST(HttpClient, HttpsToAPlainServer_FailsTheHandshake) {
    fake_backend backend([](const received&) { return reply{.status = 200}; });
    http_client client({});
    results got;
    auto url = backend.url("/hook");
    url.tls = true;
    client.send(http_request{.url = url, .body = "{}"}, got.done(0));
    ASSERT_TRUE(got.wait(1));
    ASSERT_FALSE(got.first(0));
    EXPECT_TRUE(got.first(0).message().starts_with("tls: ")) << got.first(0).message();
}

TEST(HttpClient, Stop_AnswersPendingStoppedAndDropsDelayedTasks) {
    fake_backend backend([](const received&) { return reply{.hold = true}; });
    results got;
    std::atomic<bool> ran{false};
    {
        http_client client({.max_in_flight = 1});
        client.send(post_to(backend, "0", 5000ms), got.done(0));
        client.send(post_to(backend, "1", 5000ms), got.done(1));
        client.after(10s, [&ran] { ran = true; });
        ASSERT_TRUE(backend.wait_for_requests(1, 2000ms));
    }  // the client is gone: every callback has run
    ASSERT_TRUE(got.wait(2, 0ms));
    EXPECT_EQ(got.first(0).message(), "stopped");
    EXPECT_EQ(got.first(1).message(), "stopped");
    EXPECT_EQ(got.calls(0), 1U);
    EXPECT_FALSE(ran.load());
}

TEST(HttpClient, PostAndAfter_RunOnTheClientsThreadInOrder) {
    http_client client({});
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<int> order;
    std::set<std::thread::id> threads;
    auto note = [&](int n) {
        const std::lock_guard lock(mutex);
        order.push_back(n);
        threads.insert(std::this_thread::get_id());
        changed.notify_all();
    };
    client.after(50ms, [&] { note(3); });
    client.post([&] { note(1); });
    client.post([&] { note(2); });
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 2s, [&] { return order.size() == 3; }));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(threads.size(), 1U);
    EXPECT_EQ(threads.count(std::this_thread::get_id()), 0U);
}

}  // namespace
}  // namespace zena::upstream
