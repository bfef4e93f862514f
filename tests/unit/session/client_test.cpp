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
#include "engine/memory/memory_broker.hpp"
#include "engine/memory/memory_history.hpp"
#include "engine/memory/memory_presence.hpp"
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
    socket_pair& connect(std::optional<auth::jwt_result> auth, ws::testing::socket_buffers sizes = {},
                         std::string since = {}) {
        pairs.push_back(std::make_unique<socket_pair>(home.io, home.flush, sizes));
        auto& pair = *pairs.back();
        clients.push_back(std::make_shared<client>(ws::transport{pair.take_server()}, ws::endpoint::options{limits},
                                                   home, services, std::move(auth), std::move(since)));
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
    engine::memory_history history;
    engine::memory_broker broker{hubs, history};
    engine::memory_presence presence;
    shared services{
        settings, verifier, protocol::testing::shipped_catalog(),
        metrics,  hubs,     [this](const client_event_source&, const protocol::client_message&) { ++client_events; },
        history,  {},       broker,
        presence};
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

// A broadcast to everyone waits for the turn's end (hub::visit); a reply the session sends
// before then still comes after it: the session's own send visits first.
TEST_F(ClientTest, OwnReply_ComesAfterABroadcastMadeEarlierInTheTurn) {
    auto& pair = connect_as("alice");
    EXPECT_TRUE(has_type(next_text(pair), "connected"));
    const ws::outbound broadcast{protocol::make_event_frame("system.notice", R"({"n":1})")};
    EXPECT_EQ(hubs.local(0).send_to_all(broadcast), 1U);
    pair.send_text(R"({"type":"ping","payload":{}})");
    // This loop's turns do not visit (socket_pair::turn): only the reply's send can.
    EXPECT_EQ(next_text(pair), broadcast.frame->payload());
    EXPECT_TRUE(has_type(next_text(pair), "pong"));
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

// ---- channels (docs/channels.md)

// Appends a thread.new labelled `label` to `channel` in `h`; its position.
engine::appended append_to(engine::history& h, std::string_view channel, std::string_view label) {
    auto e = std::make_shared<engine::event>();
    e->type = "thread.new";
    e->payload = R"({"threadId":")" + std::string(label) + R"("})";
    std::optional<engine::appended> out;
    h.append(channel, e, {}, [&](util::result<engine::appended> r) {
        if (r) out = std::move(*r);
    });
    EXPECT_TRUE(out);
    return out.value_or(engine::appended{});
}

TEST_F(ClientTest, Resume_WelcomeSaysRecoveredThenTheMissedInOrderThenOnlyNewerLiveOnes) {
    const auto first = append_to(history, "user:alice", "1");
    append_to(history, "user:alice", "2");
    const auto third = append_to(history, "user:alice", "3");
    auto& pair = connect(verifier.verify(token_for("alice")), {}, first.at.epoch + ":1");
    const auto welcome = next_text(pair);
    EXPECT_NE(welcome.find(R"("channel":"user:alice","epoch":")" + first.at.epoch +
                           R"(","seq":3,"recovered":true,"missed":2)"),
              std::string::npos)
        << welcome;
    EXPECT_NE(next_text(pair).find(R"({"threadId":"2"})"), std::string::npos);
    EXPECT_EQ(next_text(pair), third.message.frame->payload());
    // A live copy of what was replayed (its hub task ran after the read) is dropped; newer ones pass.
    EXPECT_EQ(hubs.local(0).send_to_channel("user:alice", third.message, third.at.epoch, 3), 0U);
    const auto fourth = append_to(history, "user:alice", "4");
    EXPECT_EQ(hubs.local(0).send_to_channel("user:alice", fourth.message, fourth.at.epoch, 4), 1U);
    EXPECT_EQ(next_text(pair), fourth.message.frame->payload());
}

// A replay is queued half a send budget at a time; the rest goes as the socket drains. A
// connection asks to hear of its drained queue only while a replay waits (a fan-out drains every
// queue at each flush): if it stopped asking too soon, the replay would stall here.
TEST_F(ClientTest, Resume_AReplayOfManySendBudgets_GoesOnAsTheSocketDrains) {
    settings.send_queue_max_bytes = 2048;  // a half budget holds a few of these events
    const auto first = append_to(history, "user:alice", "0");
    constexpr int k_missed = 300;
    for (int i = 1; i <= k_missed; ++i) append_to(history, "user:alice", std::to_string(i));
    auto& pair = connect(verifier.verify(token_for("alice")), {}, first.at.epoch + ":1");
    const auto welcome = next_text(pair);
    EXPECT_NE(welcome.find(R"("recovered":true,"missed":300)"), std::string::npos) << welcome;
    for (int i = 1; i <= k_missed; ++i) {
        const auto event = next_text(pair);
        ASSERT_NE(event.find(R"({"threadId":")" + std::to_string(i) + R"("})"), std::string::npos)
            << i << ": " << event;
    }
    // Done: live events flow again.
    const auto live = append_to(history, "user:alice", "live");
    EXPECT_EQ(hubs.local(0).send_to_channel("user:alice", live.message, live.at.epoch, live.at.seq), 1U);
    EXPECT_EQ(next_text(pair), live.message.frame->payload());
}

TEST_F(ClientTest, Resume_FromAnotherEpochOrUnreadable_IsNotRecoveredAndReplaysNothing) {
    append_to(history, "user:alice", "1");
    for (const auto* since : {"zzzz:0", "not a position"}) {
        auto& pair = connect(verifier.verify(token_for("alice")), {}, since);
        const auto welcome = next_text(pair);
        EXPECT_NE(welcome.find(R"("seq":1,"recovered":false,"missed":0})"), std::string::npos) << welcome;
    }
}

TEST_F(ClientTest, Subscribe_GrantedByTheClaim_AnsweredThenLiveAndUnsubscribed) {
    settings.channel_namespace_overrides["deal"].presence = false;  // presence has its own tests
    auth::jwt_mint_options claims;
    claims.channels = {"deal:*"};
    auto& pair = connect(verifier.verify(auth::mint_jwt(jwt, "alice", 3600s, auth::unix_now(), claims)));
    next_text(pair);  // the welcome
    pair.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"deal:1"}})");
    home.io.poll();
    const auto subscribed = next_text(pair);
    EXPECT_TRUE(subscribed.starts_with(R"({"type":"subscribed","payload":{"channel":"deal:1","epoch":")"))
        << subscribed;
    EXPECT_EQ(hubs.local(0).channel_holders("deal:1"), 1U);
    const auto e = append_to(history, "deal:1", "d");
    EXPECT_EQ(hubs.local(0).send_to_channel("deal:1", e.message, e.at.epoch, e.at.seq), 1U);
    EXPECT_EQ(next_text(pair), e.message.frame->payload());

    pair.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"dealer:1"}})");
    pair.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"user:bob"}})");
    pair.send_frame(opcode::text, R"({"type":"unsubscribe","payload":{"channel":"deal:1"}})");
    home.io.poll();
    EXPECT_EQ(next_text(pair), R"({"type":"subscribe.error","payload":{"channel":"dealer:1","reason":"forbidden"}})");
    EXPECT_EQ(next_text(pair),
              R"({"type":"subscribe.error","payload":{"channel":"user:bob","reason":"invalid_channel"}})");
    EXPECT_EQ(next_text(pair), R"({"type":"unsubscribed","payload":{"channel":"deal:1"}})");
    EXPECT_EQ(hubs.local(0).channel_holders("deal:1"), 0U);
}

TEST_F(ClientTest, Subscribe_WithSince_ReplaysTheMissedEventsAfterSubscribed) {
    auth::jwt_mint_options claims;
    claims.channels = {"deal:1"};
    const auto one = append_to(history, "deal:1", "1");
    append_to(history, "deal:1", "2");
    auto& pair = connect(verifier.verify(auth::mint_jwt(jwt, "alice", 3600s, auth::unix_now(), claims)));
    next_text(pair);
    pair.send_frame(opcode::text,
                    R"({"type":"subscribe","payload":{"channel":"deal:1","since":")" + one.at.epoch + R"(:1"}})");
    home.io.poll();
    EXPECT_EQ(next_text(pair), R"({"type":"subscribed","payload":{"channel":"deal:1","epoch":")" + one.at.epoch +
                                   R"(","seq":2,"recovered":true,"missed":1}})");
    EXPECT_NE(next_text(pair).find(R"({"threadId":"2"},"channel":"deal:1")"), std::string::npos);
}

TEST_F(ClientTest, Subscribe_ChannelTokenForThisUserAndChannel_OthersForbidden) {
    auto& pair = connect_as("alice");
    next_text(pair);
    const auto token = [&](std::string_view user, std::string_view channel) {
        auth::jwt_mint_options o;
        o.channel = channel;
        return auth::mint_jwt(jwt, user, 3600s, auth::unix_now(), o);
    };
    pair.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"thread:9","token":")" +
                                      token("bob", "thread:9") + R"("}})");
    pair.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"thread:9","token":")" +
                                      token("alice", "thread:8") + R"("}})");
    pair.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"thread:9","token":")" +
                                      token("alice", "thread:9") + R"("}})");
    home.io.poll();
    EXPECT_EQ(next_text(pair), R"({"type":"subscribe.error","payload":{"channel":"thread:9","reason":"forbidden"}})");
    EXPECT_EQ(next_text(pair), R"({"type":"subscribe.error","payload":{"channel":"thread:9","reason":"forbidden"}})");
    EXPECT_TRUE(next_text(pair).starts_with(R"({"type":"subscribed","payload":{"channel":"thread:9")"));
}

TEST_F(ClientTest, Subscribe_PastTheLimitOrTheRate_IsRefused) {
    settings.channels_max_per_connection = 2;
    settings.channels_subscribes_burst = 3;
    settings.channels_subscribes_per_second = 0.001;
    auth::jwt_mint_options claims;
    claims.channels = {"*"};
    auto& pair = connect(verifier.verify(auth::mint_jwt(jwt, "alice", 3600s, auth::unix_now(), claims)));
    next_text(pair);
    for (const auto* c : {"a", "b", "c", "d"}) {
        pair.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":")" + std::string(c) + R"("}})");
    }
    home.io.poll();
    EXPECT_TRUE(next_text(pair).starts_with(R"({"type":"subscribed","payload":{"channel":"a")"));
    EXPECT_TRUE(next_text(pair).starts_with(R"({"type":"subscribed","payload":{"channel":"b")"));
    EXPECT_EQ(next_text(pair), R"({"type":"subscribe.error","payload":{"channel":"c","reason":"too_many_channels"}})");
    EXPECT_EQ(next_text(pair), R"({"type":"subscribe.error","payload":{"channel":"d","reason":"rate_limited"}})");
}

TEST_F(ClientTest, ServerSubscription_AnsweredAndRemovedWithAReason_AndLeftWhenTheConnectionEnds) {
    settings.channel_namespace_overrides["deal"].presence = false;
    auto& pair = connect_as("alice");
    next_text(pair);
    EXPECT_EQ(hubs.local(0).subscribe_user("alice", "deal:5"), 1U);
    home.io.poll();
    EXPECT_TRUE(next_text(pair).starts_with(R"({"type":"subscribed","payload":{"channel":"deal:5")"));
    EXPECT_EQ(hubs.local(0).unsubscribe_user("alice", "deal:5"), 1U);
    home.io.poll();
    EXPECT_EQ(next_text(pair), R"({"type":"unsubscribed","payload":{"channel":"deal:5","reason":"server"}})");
    EXPECT_EQ(hubs.local(0).subscribe_user("alice", "deal:6"), 1U);
    EXPECT_EQ(registry.channels(), 1U);
    clients.back()->terminate();
    home.io.restart();
    home.io.poll();
    EXPECT_EQ(hubs.local(0).channel_holders("deal:6"), 0U);
    EXPECT_EQ(registry.channels(), 0U) << "the channel is let go with the connection";
}

// ---- presence, typing, receipts (docs/presence.md)

TEST_F(ClientTest, Presence_JoinOncePerUser_StateOnRequest_LeaveWithTheLastConnection) {
    auth::jwt_mint_options claims;
    claims.channels = {"thread:*"};
    const auto connect_with_grant = [&](std::string_view user) -> socket_pair& {
        auto& p = connect(verifier.verify(auth::mint_jwt(jwt, user, 3600s, auth::unix_now(), claims)));
        next_text(p);  // the welcome
        p.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"thread:9"}})");
        home.io.poll();
        EXPECT_TRUE(next_text(p).starts_with(R"({"type":"subscribed")"));
        return p;
    };
    auto& a1 = connect_with_grant("alice");
    EXPECT_EQ(next_text(a1),
              R"({"type":"presence.join","payload":{"channel":"thread:9","userId":"alice"},"channel":"thread:9"})");
    auto& a2 = connect_with_grant("alice");
    auto& b = connect_with_grant("bob");
    const std::string bob_joined =
        R"({"type":"presence.join","payload":{"channel":"thread:9","userId":"bob"},"channel":"thread:9"})";
    EXPECT_EQ(next_text(a1), bob_joined) << "alice's second tab joined nobody new";
    EXPECT_EQ(next_text(a2), bob_joined);
    EXPECT_EQ(next_text(b), bob_joined);

    b.send_frame(opcode::text, R"({"type":"presence.get","payload":{"channel":"thread:9"}})");
    b.send_frame(opcode::text, R"({"type":"presence.get","payload":{"channel":"thread:10"}})");
    home.io.poll();
    EXPECT_EQ(next_text(b),
              R"({"type":"presence.state","payload":{"channel":"thread:9","users":["alice","bob"],"count":2}})");
    EXPECT_EQ(next_text(b), R"({"type":"presence.state","payload":{"channel":"thread:10","error":"not_subscribed"}})");

    // alice's first tab leaves: she is still there; her last one leaves: she is gone.
    a1.send_frame(opcode::text, R"({"type":"unsubscribe","payload":{"channel":"thread:9"}})");
    home.io.poll();
    a2.send_frame(opcode::text, R"({"type":"unsubscribe","payload":{"channel":"thread:9"}})");
    home.io.poll();
    EXPECT_EQ(next_text(b),
              R"({"type":"presence.leave","payload":{"channel":"thread:9","userId":"alice"},"channel":"thread:9"})");
}

TEST_F(ClientTest, Typing_RelayedToOthersOnly_ThrottledAndEndedBySilence) {
    settings.typing_timeout = 50ms;
    settings.channel_namespace_overrides["thread"].presence = false;
    auth::jwt_mint_options claims;
    claims.channels = {"thread:*"};
    std::vector<socket_pair*> tabs;
    for (const auto* user : {"alice", "alice", "bob"}) {
        auto& p = connect(verifier.verify(auth::mint_jwt(jwt, user, 3600s, auth::unix_now(), claims)));
        next_text(p);
        p.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"thread:9"}})");
        home.io.poll();
        next_text(p);
        tabs.push_back(&p);
    }
    for (int i = 0; i < 5; ++i)
        tabs[0]->send_frame(opcode::text, R"({"type":"typing.start","payload":{"channel":"thread:9"}})");
    home.io.poll();
    const std::string on =
        R"({"type":"typing","payload":{"channel":"thread:9","userId":"alice","active":true},"channel":"thread:9"})";
    const std::string off =
        R"({"type":"typing","payload":{"channel":"thread:9","userId":"alice","active":false},"channel":"thread:9"})";
    EXPECT_EQ(next_text(*tabs[2]), on) << "once, throttled";
    // Silence for the timeout: active:false by itself.
    home.io.restart();
    home.io.run_for(150ms);
    EXPECT_EQ(next_text(*tabs[2]), off);
    // Nothing reached alice's own tabs: the next thing they get is a marker.
    const ws::outbound marker{protocol::make_event_frame("marker", "{}")};
    hubs.local(0).send_to_user("alice", marker);
    home.io.poll();
    EXPECT_EQ(next_text(*tabs[0]), marker.frame->payload());
    EXPECT_EQ(next_text(*tabs[1]), marker.frame->payload());
    EXPECT_EQ(client_events, 0) << "a typing.start on a channel does not go upstream";
}

TEST_F(ClientTest, ThreadView_ReadReceiptToTheOtherTabsAndTheThreadsOtherSubscribers) {
    settings.channel_namespace_overrides["thread"].presence = false;
    auth::jwt_mint_options claims;
    claims.channels = {"thread:*"};
    std::vector<socket_pair*> tabs;
    for (const auto* user : {"alice", "alice", "bob", "carol"}) {
        auto& p = connect(verifier.verify(auth::mint_jwt(jwt, user, 3600s, auth::unix_now(), claims)));
        next_text(p);
        if (std::string_view(user) != "carol") {
            p.send_frame(opcode::text, R"({"type":"subscribe","payload":{"channel":"thread:t9"}})");
            home.io.poll();
            next_text(p);
        }
        tabs.push_back(&p);
    }
    tabs[0]->send_frame(opcode::text, R"({"type":"thread.view","payload":{"threadId":"t9"}})");
    home.io.poll();
    EXPECT_EQ(client_events, 1) << "thread.view still goes upstream";
    const auto other_tab = next_text(*tabs[1]);
    EXPECT_TRUE(other_tab.starts_with(R"({"type":"thread.read","payload":{"threadId":"t9","userId":"alice","readAt":)"))
        << other_tab;
    EXPECT_NE(other_tab.find(R"("channel":"user:alice","epoch":")"), std::string::npos) << "stored: " << other_tab;
    const auto bob = next_text(*tabs[2]);
    EXPECT_TRUE(bob.starts_with(R"({"type":"thread.read","payload":{"threadId":"t9","userId":"alice")")) << bob;
    EXPECT_NE(bob.find(R"("channel":"thread:t9"})"), std::string::npos) << "live on the thread's channel: " << bob;
    // Neither the reading tab nor carol (who does not hold the thread) got anything.
    const ws::outbound marker{protocol::make_event_frame("marker", "{}")};
    hubs.local(0).send_to_user("alice", marker);
    hubs.local(0).send_to_user("carol", marker);
    home.io.poll();
    EXPECT_EQ(next_text(*tabs[0]), marker.frame->payload());
    EXPECT_EQ(next_text(*tabs[3]), marker.frame->payload());
}

}  // namespace
}  // namespace zena::session
