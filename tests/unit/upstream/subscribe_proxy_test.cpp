#include "upstream/subscribe_proxy.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "observability/metrics.hpp"
#include "upstream/callbacks.hpp"
#include "upstream/fake_backend.hpp"
#include "upstream/webhook_body.hpp"
#include "ws/asio.hpp"

namespace zena::upstream {
namespace {

using test_support::fake_backend;
using test_support::received;
using test_support::refused_port;
using test_support::reply;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// The verdicts the proxy calls back with, by check id, and the threads it calls from.
using verdicts = test_support::callbacks<proxy_verdict>;

subscribe_proxy_settings settings_for(const fake_backend& backend, std::chrono::milliseconds timeout = 2000ms) {
    subscribe_proxy_settings s;
    s.url = backend.url();
    s.secret = "proxy-secret";
    s.timeout = timeout;
    return s;
}

// The verdict of one check against a backend that answers `status`, with a fresh proxy.
proxy_verdict verdict_for(unsigned status) {
    fake_backend backend([status](const received&) { return reply{.status = status}; });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend), metrics);
    proxy.check("alice", "deal:123", got.done(0));
    EXPECT_TRUE(got.wait(1)) << "status " << status;
    return got.of(0).value_or(proxy_verdict::allow);
}

TEST(SubscribeProxyVerdict, StatusClasses_MapToTheDocumentedVerdicts) {
    EXPECT_EQ(verdict_of_status(200), proxy_verdict::allow);
    for (unsigned status : {201U, 204U, 299U, 301U, 302U, 304U, 400U, 401U, 403U, 404U, 429U, 499U}) {
        EXPECT_EQ(verdict_of_status(status), proxy_verdict::forbid) << status;
    }
    for (unsigned status : {0U, 100U, 101U, 199U, 500U, 502U, 503U, 599U, 600U, 999U}) {
        EXPECT_EQ(verdict_of_status(status), proxy_verdict::unavailable) << status;
    }
    EXPECT_EQ(to_string(proxy_verdict::allow), "allow");
    EXPECT_EQ(to_string(proxy_verdict::forbid), "forbid");
    EXPECT_EQ(to_string(proxy_verdict::unavailable), "unavailable");
}

TEST(SubscribeProxyBody, UserAndChannel_AreJsonEscaped) {
    EXPECT_EQ(subscribe_check_body("alice", "deal:123"), R"({"userId":"alice","channel":"deal:123"})");
    EXPECT_EQ(subscribe_check_body("a\"l\\i\nce\x01", "d"), R"({"userId":"a\"l\\i\nce\u0001","channel":"d"})");
}

TEST(SubscribeProxy, Status200_Allows) { EXPECT_EQ(verdict_for(200), proxy_verdict::allow); }

TEST(SubscribeProxy, Status403And404_Forbid) {
    EXPECT_EQ(verdict_for(403), proxy_verdict::forbid);
    EXPECT_EQ(verdict_for(404), proxy_verdict::forbid);
}

TEST(SubscribeProxy, Status500_IsUnavailable) {
    EXPECT_EQ(verdict_for(500), proxy_verdict::unavailable);
    EXPECT_EQ(verdict_for(503), proxy_verdict::unavailable);
}

TEST(SubscribeProxy, EachStatus_OnOneKeptAliveConnection_MapsToItsVerdict) {
    // The status to answer is named by the channel: "s<status>".
    fake_backend backend([](const received& r) {
        const auto at = r.body.find("\"channel\":\"s");
        return reply{.status = static_cast<unsigned>(std::stoul(r.body.substr(at + 12)))};
    });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend), metrics);
    const std::vector<unsigned> statuses{200, 201, 204, 302, 304, 400, 401, 403, 404, 429, 500, 502, 503, 200};
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        proxy.check("alice", "s" + std::to_string(statuses[i]), got.done(i));
        ASSERT_TRUE(got.wait(i + 1)) << statuses[i];
        EXPECT_EQ(got.of(i), verdict_of_status(statuses[i])) << statuses[i];
    }
    EXPECT_EQ(backend.connections(), 1U) << "every answer kept the connection alive";
}

TEST(SubscribeProxy, Request_IsASignedJsonPost) {
    fake_backend backend([](const received&) { return reply{.status = 200}; });
    observability::metrics metrics;
    verdicts got;
    {
        subscribe_proxy proxy(settings_for(backend), metrics);
        proxy.check("al\"ice\\", "deal:1\n", got.done(0));
        ASSERT_TRUE(got.wait(1));
    }
    const auto requests = backend.requests();
    ASSERT_EQ(requests.size(), 1U);
    const auto& r = requests[0];
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/subscribe");
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body, R"({"userId":"al\"ice\\","channel":"deal:1\n"})");
    ASSERT_TRUE(r.signature.has_value());
    EXPECT_EQ(*r.signature, webhook_signature("proxy-secret", r.body));
    EXPECT_NE(*r.signature, webhook_signature("another-secret", r.body));
}

TEST(SubscribeProxy, NoSecret_SendsNoSignature) {
    fake_backend backend([](const received&) { return reply{.status = 200}; });
    observability::metrics metrics;
    verdicts got;
    {
        auto s = settings_for(backend);
        s.secret.clear();
        subscribe_proxy proxy(s, metrics);
        proxy.check("alice", "deal:1", got.done(0));
        ASSERT_TRUE(got.wait(1));
    }
    EXPECT_EQ(got.of(0), proxy_verdict::allow);
    const auto requests = backend.requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_FALSE(requests[0].signature.has_value());
}

TEST(SubscribeProxy, ServerNeverAnswers_IsUnavailableAtTheTimeout) {
    fake_backend backend([](const received&) { return reply{.hold = true}; });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend, 200ms), metrics);
    const auto start = steady::now();
    proxy.check("alice", "deal:1", got.done(0));
    ASSERT_TRUE(got.wait(1, 3s));
    const auto took = got.at(0) - start;
    EXPECT_EQ(got.of(0), proxy_verdict::unavailable);
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 1500ms);
    EXPECT_EQ(backend.requests().size(), 1U) << "the request was sent; its answer never came";
}

TEST(SubscribeProxy, RefusedPort_IsUnavailable) {
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy_settings s;
    s.url = util::parse_http_url("http://127.0.0.1:" + refused_port() + "/subscribe");
    s.timeout = 5s;
    subscribe_proxy proxy(s, metrics);
    const auto start = steady::now();
    proxy.check("alice", "deal:1", got.done(0));
    ASSERT_TRUE(got.wait(1));
    EXPECT_EQ(got.of(0), proxy_verdict::unavailable);
    EXPECT_LT(got.at(0) - start, 2s) << "a refused connection does not wait for the timeout";
}

TEST(SubscribeProxy, HttpsUrlNothingListening_IsUnavailable) {
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy_settings s;
    s.url = util::parse_http_url("https://127.0.0.1:1/subscribe");
    ASSERT_FALSE(s.url.host.empty());
    subscribe_proxy proxy(s, metrics);
    proxy.check("alice", "deal:1", got.done(0));
    ASSERT_TRUE(got.wait(1));
    EXPECT_EQ(got.of(0), proxy_verdict::unavailable);
}

TEST(SubscribeProxy, MalformedResponse_IsUnavailable) {
    fake_backend backend([](const received&) { return reply{.raw = "this is not http\r\n\r\n"}; });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend), metrics);
    proxy.check("alice", "deal:1", got.done(0));
    ASSERT_TRUE(got.wait(1));
    EXPECT_EQ(got.of(0), proxy_verdict::unavailable);
}

TEST(SubscribeProxy, OversizedResponse_IsUnavailable) {
    // The channel names the body's size.
    fake_backend backend([](const received& r) {
        return reply{.status = 200, .body_bytes = r.body.find("big") != std::string::npos ? 100U * 1024 : 1024};
    });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend), metrics);
    proxy.check("alice", "small", got.done(0));
    ASSERT_TRUE(got.wait(1));
    proxy.check("alice", "big", got.done(1));
    ASSERT_TRUE(got.wait(2));
    EXPECT_EQ(got.of(0), proxy_verdict::allow);
    EXPECT_EQ(got.of(1), proxy_verdict::unavailable);
}

TEST(SubscribeProxy, SequentialChecks_ReuseOneConnection) {
    fake_backend backend([](const received&) { return reply{.status = 200}; });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend), metrics);
    for (std::size_t i = 0; i < 5; ++i) {
        proxy.check("alice", "deal:" + std::to_string(i), got.done(i));
        ASSERT_TRUE(got.wait(i + 1));
        EXPECT_EQ(got.of(i), proxy_verdict::allow);
    }
    EXPECT_EQ(backend.connections(), 1U);
    EXPECT_EQ(backend.requests().back().request_on_connection, 4U);
}

TEST(SubscribeProxy, ServerClosesAfterEachAnswer_ConnectionIsReopened) {
    fake_backend backend([](const received&) { return reply{.status = 200, .close_after = true}; });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend), metrics);
    for (std::size_t i = 0; i < 5; ++i) {
        proxy.check("alice", "deal:" + std::to_string(i), got.done(i));
        ASSERT_TRUE(got.wait(i + 1));
        EXPECT_EQ(got.of(i), proxy_verdict::allow) << i;
    }
    EXPECT_EQ(backend.connections(), 5U);
}

TEST(SubscribeProxy, ReusedConnectionClosedAtTheRequest_IsRetriedOnAFreshOne) {
    // The server keeps the connection after its answer, then drops it when the next request
    // comes: a keep-alive timeout racing the request. The check still gets its answer.
    fake_backend backend([](const received& r) {
        if (r.request_on_connection > 0) return reply{.drop = true};
        return reply{.status = 200};
    });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend), metrics);
    for (std::size_t i = 0; i < 3; ++i) {
        proxy.check("alice", "deal:" + std::to_string(i), got.done(i));
        ASSERT_TRUE(got.wait(i + 1));
        EXPECT_EQ(got.of(i), proxy_verdict::allow) << i;
    }
    EXPECT_EQ(backend.connections(), 3U);
    EXPECT_EQ(backend.requests().size(), 5U) << "checks 1 and 2 were each sent twice";
}

TEST(SubscribeProxy, FullQueue_AnswersUnavailableAtOnce) {
    fake_backend backend([](const received&) { return reply{.hold = true}; });
    observability::metrics metrics;
    verdicts got;
    {
        auto s = settings_for(backend, 10s);
        s.max_in_flight = 1;
        s.max_queue = 1;
        subscribe_proxy proxy(s, metrics);
        proxy.check("alice", "deal:0", got.done(0));  // on the wire
        proxy.check("alice", "deal:1", got.done(1));  // queued
        proxy.check("alice", "deal:2", got.done(2));  // beyond the queue
        ASSERT_TRUE(got.wait(1, 2s));
        EXPECT_EQ(got.of(2), proxy_verdict::unavailable);
        EXPECT_TRUE(backend.wait_for_requests(1, 2s));
        std::this_thread::sleep_for(50ms);
        EXPECT_EQ(got.answered(), 1U) << "the first two wait for the backend";
        EXPECT_EQ(backend.requests().size(), 1U) << "one request at a time";
    }
    EXPECT_EQ(got.of(0), proxy_verdict::unavailable);
    EXPECT_EQ(got.of(1), proxy_verdict::unavailable);
}

TEST(SubscribeProxy, QueuedPastItsDeadline_IsNotSent) {
    // The backend answers the first check after 100 ms; its callback then holds the proxy's thread
    // until the second check, queued behind it, is past its deadline.
    fake_backend backend([](const received&) {
        std::this_thread::sleep_for(100ms);
        return reply{.status = 200};
    });
    observability::metrics metrics;
    verdicts got;
    {
        auto s = settings_for(backend, 300ms);
        s.max_in_flight = 1;
        subscribe_proxy proxy(s, metrics);
        auto first = got.done(0);
        proxy.check("alice", "deal:0", [first](proxy_verdict v) {
            first(v);
            std::this_thread::sleep_for(500ms);
        });
        proxy.check("alice", "deal:1", got.done(1));
        ASSERT_TRUE(got.wait(2, 3s));
        EXPECT_EQ(got.of(0), proxy_verdict::allow);
        EXPECT_EQ(got.of(1), proxy_verdict::unavailable);
    }
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(backend.requests().size(), 1U) << "the expired check never reached the backend";
}

TEST(SubscribeProxy, ManyConcurrentChecks_AreEachAnsweredOnce) {
    // Users "ok-*" are allowed, the others forbidden.
    fake_backend backend([](const received& r) {
        return reply{.status = r.body.find(R"("userId":"ok-)") != std::string::npos ? 200U : 403U};
    });
    observability::metrics metrics;
    verdicts got;
    constexpr std::size_t k_threads = 4;
    constexpr std::size_t k_per_thread = 50;
    constexpr std::size_t k_checks = k_threads * k_per_thread;
    {
        auto s = settings_for(backend, 10s);
        s.max_in_flight = 8;
        subscribe_proxy proxy(s, metrics);
        std::vector<std::thread> callers;
        for (std::size_t t = 0; t < k_threads; ++t) {
            callers.emplace_back([&proxy, &got, t] {
                for (std::size_t i = 0; i < k_per_thread; ++i) {
                    const auto id = t * k_per_thread + i;
                    proxy.check((id % 3 == 0 ? "ok-" : "no-") + std::to_string(id), "deal:" + std::to_string(id),
                                got.done(id));
                }
            });
        }
        for (auto& caller : callers) caller.join();
        ASSERT_TRUE(got.wait(k_checks, 10s)) << got.answered() << " answered";
    }  // the proxy is gone: no callback can come after this
    for (std::size_t id = 0; id < k_checks; ++id) {
        EXPECT_EQ(got.calls(id), 1U) << id;
        EXPECT_EQ(got.of(id), id % 3 == 0 ? proxy_verdict::allow : proxy_verdict::forbid) << id;
    }
    EXPECT_EQ(backend.requests().size(), k_checks);
    EXPECT_LE(backend.connections(), 8U) << "at most max_in_flight connections";
    const auto threads = got.threads();
    ASSERT_EQ(threads.size(), 1U) << "every callback on the proxy's thread";
    EXPECT_NE(*threads.begin(), std::this_thread::get_id());
}

TEST(SubscribeProxy, Destruction_AnswersPendingChecksUnavailable) {
    fake_backend backend([](const received&) { return reply{.hold = true}; });
    observability::metrics metrics;
    verdicts got;
    auto s = settings_for(backend, 30s);
    s.max_in_flight = 2;
    auto proxy = std::make_unique<subscribe_proxy>(s, metrics);
    for (std::size_t i = 0; i < 5; ++i) proxy->check("alice", "deal:" + std::to_string(i), got.done(i));
    ASSERT_TRUE(backend.wait_for_requests(2, 2s));
    EXPECT_EQ(got.answered(), 0U);
    const auto start = steady::now();
    proxy.reset();
    EXPECT_LT(steady::now() - start, 2s) << "destruction does not wait for the backend";
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(got.calls(i), 1U) << i;
        EXPECT_EQ(got.of(i), proxy_verdict::unavailable) << i;
    }
}

TEST(SubscribeProxy, CallbackMayCheckAgain) {
    fake_backend backend([](const received&) { return reply{.status = 200}; });
    observability::metrics metrics;
    verdicts got;
    subscribe_proxy proxy(settings_for(backend), metrics);
    auto second = got.done(1);
    auto first = got.done(0);
    proxy.check("alice", "deal:0", [&proxy, first, second](proxy_verdict v) {
        first(v);
        proxy.check("alice", "deal:1", second);
    });
    ASSERT_TRUE(got.wait(2));
    EXPECT_EQ(got.of(0), proxy_verdict::allow);
    EXPECT_EQ(got.of(1), proxy_verdict::allow);
}

}  // namespace
}  // namespace zena::upstream
