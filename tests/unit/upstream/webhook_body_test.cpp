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

}  // namespace
}  // namespace zena::upstream
