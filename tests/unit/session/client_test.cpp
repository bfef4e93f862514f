#include "session/client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/jwt.hpp"
#include "protocol/envelope.hpp"
#include "protocol/shipped_catalog.hpp"
#include "ws/socket_pair.hpp"

namespace zena::session {
namespace {

using namespace std::chrono_literals;
using ws::opcode;
using ws::testing::socket_pair;

constexpr std::string_view k_head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
constexpr std::string_view k_secret = "unit-test-secret";

class ClientTest : public ::testing::Test {
protected:
    ClientTest() { settings.jwt_secret = k_secret; }
    static auth::jwt_settings hs256() {
        auth::jwt_settings s;
        s.secret = k_secret;
        return s;
    }

    std::string token_for(std::string_view user) { return auth::mint_jwt(jwt, user, 3600s, auth::unix_now()); }

    // A connection whose handshake carried `auth` (nullopt: none), started with the 101 head,
    // which the client side reads. Returns its socket pair; the connection is `clients.back()`.
    socket_pair& connect(std::optional<auth::jwt_result> auth, ws::testing::socket_buffers sizes = {}) {
        pairs.push_back(std::make_unique<socket_pair>(home.io, home.flush, sizes));
        auto& pair = *pairs.back();
        clients.push_back(std::make_shared<client>(ws::transport{pair.take_server()}, ws::endpoint::options{limits},
                                                   home, services, std::move(auth)));
        clients.back()->run(std::string(k_head), {});
        EXPECT_EQ(pair.read_head(), k_head);
        return pair;
    }
    socket_pair& connect_as(std::string_view user, ws::testing::socket_buffers sizes = {}) {
        return connect(verifier.verify(token_for(user)), sizes);
    }

    void TearDown() override {
        for (auto& c : clients) c->terminate();
        home.io.restart();
        home.io.poll();
    }

    // The next frame, which must be a text event; returns its JSON.
    static std::string next_text(socket_pair& pair) {
        auto f = pair.next_frame();
        if (!f) {
            ADD_FAILURE() << "no frame";
            return {};
        }
        EXPECT_EQ(f->op, opcode::text) << f->payload;
        return f->payload;
    }
    static bool has_type(std::string_view json, std::string_view type) {
        return json.starts_with(R"({"type":")" + std::string(type) + '"');
    }

    std::size_t hub_size() { return hubs.local(0).size(); }

    config::settings settings;
    auth::jwt_settings jwt = hs256();
    auth::jwt_verifier verifier{jwt};
    observability::metrics metrics;
    hub::user_registry registry;
    // Before the hub set and the connections: they hold sockets on its io_context.
    session::loop home{0, 100.0};
    hub::hub_set hubs{{[this](hub::hub_set::task t) { boost::asio::post(home.io, std::move(t)); }}, registry};
    int client_events = 0;
    shared services{
        settings, verifier, protocol::testing::shipped_catalog(),
        metrics,  hubs,     [this](const client_event_source&, const protocol::client_message&) { ++client_events; }};
    ws::endpoint::limits limits{64 * 1024, 1024 * 1024, 1000ms};
    std::vector<std::unique_ptr<socket_pair>> pairs;
    std::vector<std::shared_ptr<client>> clients;
};

TEST_F(ClientTest, ValidTokenInTheHandshake_WelcomeFirstThenInTheHubAndReachable) {
    auto& pair = connect_as("alice");
    const auto welcome = next_text(pair);
    EXPECT_TRUE(has_type(welcome, "connected")) << welcome;
    EXPECT_NE(welcome.find(R"("userId":"alice")"), std::string::npos) << welcome;
    EXPECT_NE(welcome.find(R"("connectionId":")" + std::to_string(clients[0]->id()) + '"'), std::string::npos)
        << welcome;
    EXPECT_EQ(registry.connections_of("alice"), 1U);
    EXPECT_EQ(hub_size(), 1U);
    EXPECT_EQ(metrics.connections_opened.load(), 1U);

    const ws::outbound event{protocol::make_event_frame("thread.new", R"({"threadId":"t1"})")};
    EXPECT_EQ(hubs.local(0).send_to_user("alice", event), 1U);
    EXPECT_EQ(next_text(pair), event.frame->payload());

    // The client's close: the connection leaves the hub.
    pair.send_frame(opcode::close, ws::testing::close_body(1000));
    auto f = pair.next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->op, opcode::close);
    EXPECT_TRUE(pair.wait_eof(ws::testing::k_prompt));
    ASSERT_TRUE(pair.turn_until([&] { return hub_size() == 0; }));
    EXPECT_EQ(registry.connections_of("alice"), 0U);
    EXPECT_EQ(metrics.connections_closed.load(), 1U);
}

TEST_F(ClientTest, InvalidTokenInTheHandshake_ClosesWith1008AndTheReason) {
    auto& pair = connect(verifier.verify("not.a.token"));
    auto f = pair.next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close) << "no welcome: " << f->payload;
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), auth::to_string(auth::jwt_error::malformed));
    EXPECT_EQ(hub_size(), 0U);
    EXPECT_EQ(metrics.auth_failures.load(), 1U);
    pair.send_frame(opcode::close, ws::testing::close_body(1008));
    EXPECT_TRUE(pair.wait_eof(ws::testing::k_prompt));
}

TEST_F(ClientTest, ExpiredTokenInTheHandshake_ClosesWith1008Expired) {
    const auto stale = auth::mint_jwt(jwt, "alice", -3600s, auth::unix_now());
    auto& pair = connect(verifier.verify(stale));
    auto f = pair.next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), auth::to_string(auth::jwt_error::expired));
}

TEST_F(ClientTest, InBandAuth_ATokenInTheFirstMessageAdmitsIt) {
    settings.inband_auth = true;
    auto& pair = connect(std::nullopt);
    // Not in the hub until the token came.
    pair.turn();
    EXPECT_EQ(hub_size(), 0U);
    pair.send_text(R"({"type":"auth","payload":{"token":")" + token_for("bob") + R"("}})");
    const auto welcome = next_text(pair);
    EXPECT_TRUE(has_type(welcome, "connected")) << welcome;
    EXPECT_NE(welcome.find(R"("userId":"bob")"), std::string::npos) << welcome;
    EXPECT_EQ(registry.connections_of("bob"), 1U);
    EXPECT_EQ(hub_size(), 1U);
    EXPECT_EQ(client_events, 0) << "auth never goes upstream";
}

TEST_F(ClientTest, InBandAuth_ABadTokenClosesWith1008) {
    settings.inband_auth = true;
    auto& pair = connect(std::nullopt);
    pair.send_text(R"({"type":"auth","payload":{"token":"forged"}})");
    auto f = pair.next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), auth::to_string(auth::jwt_error::malformed));
    EXPECT_EQ(hub_size(), 0U);
}

TEST_F(ClientTest, InBandAuth_AnotherFirstMessageClosesWith1008) {
    settings.inband_auth = true;
    auto& pair = connect(std::nullopt);
    pair.send_text(R"({"type":"sync.request","payload":{}})");
    auto f = pair.next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), "authentication required");
    EXPECT_EQ(client_events, 0);
}

TEST_F(ClientTest, InBandAuth_NoTokenWithinTheTimeoutClosesWith1008) {
    settings.inband_auth = true;
    settings.auth_timeout = 30ms;
    auto& pair = connect(std::nullopt);
    auto f = pair.next_frame(1000ms);
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), "authentication timeout");
}

// Issue 16, item 8: a binary first message is refused as at once as a text one.
TEST_F(ClientTest, InBandAuth_ABinaryFirstMessageClosesWith1008AtOnce) {
    settings.inband_auth = true;
    auto& pair = connect(std::nullopt);
    pair.send_frame(opcode::binary, "\x01\x02\x03");
    auto f = pair.next_frame(ws::testing::k_prompt);
    ASSERT_TRUE(f) << "closed at once, not at websocket.auth_timeout_ms";
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), "authentication required");
    EXPECT_EQ(metrics.auth_failures.load(), 1U);
    EXPECT_EQ(hub_size(), 0U);
}

// Issue 16, item 9: without websocket.inband_auth, no token in the handshake is a missing token.
TEST_F(ClientTest, NoTokenInTheHandshake_ClosesWith1008AtOnceByDefault) {
    ASSERT_FALSE(settings.inband_auth) << "off by default";
    auto& pair = connect(std::nullopt);
    auto f = pair.next_frame(ws::testing::k_prompt);
    ASSERT_TRUE(f) << "closed at once, not at websocket.auth_timeout_ms";
    ASSERT_EQ(f->op, opcode::close) << "no welcome: " << f->payload;
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), auth::to_string(auth::jwt_error::missing));
    EXPECT_EQ(metrics.auth_failures.load(), 1U);
    // An `auth` message after it changes nothing.
    pair.send_text(R"({"type":"auth","payload":{"token":")" + token_for("bob") + R"("}})");
    pair.send_frame(opcode::close, ws::testing::close_body(1008));
    EXPECT_TRUE(pair.wait_eof(ws::testing::k_prompt));
    EXPECT_EQ(hub_size(), 0U);
    EXPECT_EQ(registry.connections_of("bob"), 0U);
}

TEST_F(ClientTest, ClientEvents_GoToTheHandler) {
    auto& pair = connect_as("alice");
    EXPECT_TRUE(has_type(next_text(pair), "connected"));
    pair.send_text(R"({"type":"thread.view","payload":{"threadId":"t1"}})");
    pair.send_text(R"({"type":"no.such.event","payload":{}})");
    ASSERT_TRUE(pair.turn_until([&] { return metrics.client_messages_invalid.load() == 1; }));
    EXPECT_EQ(client_events, 1);
    EXPECT_EQ(metrics.client_messages_valid.load(), 1U);
    EXPECT_FALSE(clients[0]->closing()) << "an invalid message is ignored, not fatal";
}

TEST_F(ClientTest, SlowConsumer_SaysItFellBehindThenClosesWith4000) {
    limits.send_queue_max_bytes = 64 * 1024;
    auto& pair = connect_as("alice", {.server_send = 4096, .client_receive = 4096});
    EXPECT_TRUE(has_type(next_text(pair), "connected"));

    // The client reads nothing while events keep coming.
    const std::string filler(8 * 1024, 'x');
    const ws::outbound event{protocol::make_event_frame("thread.new", R"({"threadId":")" + filler + R"("})")};
    int taken = 0;
    for (int i = 0; i < 100 && hubs.local(0).send_to_user("alice", event) == 1; ++i) {
        ++taken;
        pair.turn();
    }
    EXPECT_LT(taken, 100) << "the budget should have run out";
    const auto budget_frames = limits.send_queue_max_bytes / event.frame->wire().size();
    EXPECT_GE(static_cast<std::size_t>(taken), budget_frames) << "at least what the budget holds";
    EXPECT_TRUE(clients[0]->closing());
    EXPECT_EQ(metrics.slow_consumer_closes.load(), 1U);
    EXPECT_EQ(hubs.local(0).send_to_user("alice", event), 0U) << "refused once closing";

    // Now it reads: some of the events, the notice, then the close.
    std::vector<ws::testing::server_frame> frames;
    while (auto f = pair.next_frame()) {
        frames.push_back(std::move(*f));
        if (frames.back().op == opcode::close) break;
    }
    ASSERT_GE(frames.size(), 2U);
    const auto& close = frames.back();
    ASSERT_EQ(close.op, opcode::close);
    EXPECT_EQ(close.close_code(), 4000);
    EXPECT_EQ(close.close_reason(), "send queue full");
    const auto& notice = frames[frames.size() - 2];
    EXPECT_TRUE(has_type(notice.payload, "connection.behind")) << notice.payload.substr(0, 80);
    for (std::size_t i = 0; i + 2 < frames.size(); ++i) {
        EXPECT_TRUE(frames[i].payload == event.frame->payload()) << "frame " << i << " is whole and unchanged";
    }
    EXPECT_LT(frames.size() - 2, static_cast<std::size_t>(taken)) << "the waiting events were dropped";

    pair.send_frame(opcode::close, ws::testing::close_body(4000));
    EXPECT_TRUE(pair.wait_eof(ws::testing::k_prompt));
    ASSERT_TRUE(pair.turn_until([&] { return hub_size() == 0; }));
    EXPECT_EQ(registry.connections_of("alice"), 0U);
}

TEST_F(ClientTest, MessageRate_OverTheBurstDropsThenClosesWith1008) {
    settings.client_messages_per_second = 1;  // no token comes back within the test
    settings.client_messages_burst = 3;
    auto& pair = connect_as("alice");
    EXPECT_TRUE(has_type(next_text(pair), "connected"));
    // 3 within the burst, 5 over the rate (the excess allowance: 5 s at the rate), then the close.
    for (int i = 0; i < 12; ++i) pair.send_text(R"({"type":"sync.request","payload":{}})");
    auto f = pair.next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), "message rate limit exceeded");
    EXPECT_EQ(client_events, 3);
    EXPECT_EQ(metrics.client_messages_rate_limited.load(), 6U);
    EXPECT_EQ(metrics.rate_limit_closes.load(), 1U);
}

TEST_F(ClientTest, MessageRate_WithinTheBurstNothingIsDropped) {
    settings.client_messages_per_second = 1;
    settings.client_messages_burst = 3;
    auto& pair = connect_as("alice");
    EXPECT_TRUE(has_type(next_text(pair), "connected"));
    for (int i = 0; i < 3; ++i) pair.send_text(R"({"type":"sync.request","payload":{}})");
    ASSERT_TRUE(pair.turn_until([&] { return client_events == 3; }));
    EXPECT_EQ(metrics.client_messages_rate_limited.load(), 0U);
    EXPECT_FALSE(clients[0]->closing());
}

// Issue 16, item 2: binary messages count against the same rate, and the same close.
TEST_F(ClientTest, MessageRate_BinaryMessagesCountAndCloseWith1008) {
    settings.client_messages_per_second = 1;
    settings.client_messages_burst = 3;
    auto& pair = connect_as("alice");
    EXPECT_TRUE(has_type(next_text(pair), "connected"));
    const std::string blob(1024, '\x7f');
    for (int i = 0; i < 12; ++i) pair.send_frame(opcode::binary, blob);
    auto f = pair.next_frame();
    ASSERT_TRUE(f) << "an over-rate binary sender is closed";
    ASSERT_EQ(f->op, opcode::close);
    EXPECT_EQ(f->close_code(), 1008);
    EXPECT_EQ(f->close_reason(), "message rate limit exceeded");
    EXPECT_EQ(metrics.client_messages_rate_limited.load(), 6U);
    EXPECT_EQ(metrics.rate_limit_closes.load(), 1U);
}

TEST_F(ClientTest, MessageRate_TextAndBinaryShareOneBudget) {
    settings.client_messages_per_second = 1;
    settings.client_messages_burst = 3;
    auto& pair = connect_as("alice");
    EXPECT_TRUE(has_type(next_text(pair), "connected"));
    for (int i = 0; i < 3; ++i) pair.send_frame(opcode::binary, "x");
    pair.send_text(R"({"type":"sync.request","payload":{}})");
    ASSERT_TRUE(pair.turn_until([&] { return metrics.client_messages_rate_limited.load() == 1; }))
        << "the burst was spent by the binary messages";
    EXPECT_EQ(client_events, 0);
    EXPECT_FALSE(clients[0]->closing());
}

// Issue 16, item 6: every binary message is counted; only the log line is rate-limited.
TEST_F(ClientTest, BinaryMessages_EveryOneCountedAsInvalidEvenWhenNotLogged) {
    settings.client_messages_per_second = 100000;
    settings.client_messages_burst = 100000;
    auto& pair = connect_as("alice");
    EXPECT_TRUE(has_type(next_text(pair), "connected"));
    // More than the log limiter's burst (100 lines a second here).
    constexpr std::uint64_t k_sent = 300;
    for (std::uint64_t i = 0; i < k_sent; ++i) pair.send_frame(opcode::binary, "x");
    ASSERT_TRUE(pair.turn_until([&] { return metrics.client_messages_invalid.load() >= k_sent; }))
        << "counted " << metrics.client_messages_invalid.load() << " of " << k_sent;
    EXPECT_EQ(metrics.client_messages_invalid.load(), k_sent);
    EXPECT_FALSE(clients[0]->closing()) << "ignored, not fatal";
}

TEST_F(ClientTest, UserConnectionLimit_OneTooManyClosesWith1013) {
    settings.max_connections_per_user = 1;
    auto& first = connect_as("alice");
    EXPECT_TRUE(has_type(next_text(first), "connected"));
    auto& second = connect_as("alice");
    auto f = second.next_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->op, opcode::close) << "no welcome: " << f->payload;
    EXPECT_EQ(f->close_code(), 1013);
    EXPECT_EQ(f->close_reason(), "too many connections for this user");
    EXPECT_EQ(registry.connections_of("alice"), 1U);
    EXPECT_EQ(metrics.connections_refused_user_limit.load(), 1U);

    // The refused one ends without touching the admitted one.
    second.send_frame(opcode::close, ws::testing::close_body(1013));
    EXPECT_TRUE(second.wait_eof(ws::testing::k_prompt));
    second.turn_until([] { return false; }, 10ms);
    EXPECT_EQ(registry.connections_of("alice"), 1U);
    EXPECT_EQ(hub_size(), 1U);
    // Another user is not limited by alice's.
    auto& other = connect_as("bob");
    EXPECT_TRUE(has_type(next_text(other), "connected"));
}

}  // namespace
}  // namespace zena::session
