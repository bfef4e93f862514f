#include "upstream/webhook_body.hpp"

#include <gtest/gtest.h>

namespace zena::upstream {
namespace {

TEST(WebhookBody, HasTheContractsFields) {
    EXPECT_EQ(client_event_body("alice", 17, "thread.view", R"({"threadId":"t"})", 1795744648123),
              R"({"userId":"alice","connectionId":"17","type":"thread.view","payload":{"threadId":"t"},)"
              R"("receivedAt":"2026-11-27T01:57:28.123Z"})");
}

TEST(WebhookSignature, IsHmacSha256InHex) {
    // RFC 4231 test case 2.
    EXPECT_EQ(webhook_signature("Jefe", "what do ya want for nothing?"),
              "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HttpUrl, ParsesHostPortAndTarget) {
    auto u = parse_http_url("http://127.0.0.1:4000/zena/events?x=1");
    EXPECT_EQ(u.host, "127.0.0.1");
    EXPECT_EQ(u.port, "4000");
    EXPECT_EQ(u.target, "/zena/events?x=1");
    u = parse_http_url("http://backend");
    EXPECT_EQ(u.host, "backend");
    EXPECT_EQ(u.port, "80");
    EXPECT_EQ(u.target, "/");
}

TEST(HttpUrl, Https_IsMarkedTlsWithPort443) {
    const auto u = parse_http_url("https://issuer.example/.well-known/jwks.json");
    EXPECT_EQ(u.host, "issuer.example");
    EXPECT_EQ(u.port, "443");
    EXPECT_TRUE(u.tls);
    EXPECT_FALSE(parse_http_url("http://h/").tls);
}

TEST(HttpUrl, RefusesWhatItCannotCall) {
    for (const auto* bad : {"ftp://x", "http://", "http://:80/x", "http://h:port/x", "http://user@h/x", "backend/x",
                            "http://h:123456/"}) {
        EXPECT_TRUE(parse_http_url(bad).host.empty()) << bad;
    }
}

}  // namespace
}  // namespace zena::upstream
