#include "ws/deflate.hpp"

#include <gtest/gtest.h>

namespace zena::ws {
namespace {

TEST(Deflate, Negotiate_BrowserOffer_AnswersNoContextTakeoverBothWays) {
    const auto agreement = negotiate_deflate("permessage-deflate; client_max_window_bits");
    ASSERT_TRUE(agreement);
    EXPECT_EQ(agreement->response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    EXPECT_TRUE(agreement->compress_outgoing);
}

TEST(Deflate, Negotiate_SmallServerWindow_IsHonouredWithPlainFrames) {
    const auto agreement = negotiate_deflate("permessage-deflate; server_max_window_bits=10");
    ASSERT_TRUE(agreement);
    EXPECT_NE(agreement->response.find("server_max_window_bits=10"), std::string::npos);
    EXPECT_FALSE(agreement->compress_outgoing);
}

TEST(Deflate, Negotiate_DeclinesBadOffers_TakesTheNextGoodOne) {
    EXPECT_FALSE(negotiate_deflate(""));
    EXPECT_FALSE(negotiate_deflate("x-webkit-deflate-frame"));
    EXPECT_FALSE(negotiate_deflate("permessage-deflate; server_max_window_bits=16"));
    EXPECT_FALSE(negotiate_deflate("permessage-deflate; server_max_window_bits"));
    EXPECT_FALSE(negotiate_deflate("permessage-deflate; unknown"));
    EXPECT_FALSE(negotiate_deflate("permessage-deflate; server_no_context_takeover; server_no_context_takeover"));
    EXPECT_FALSE(negotiate_deflate("permessage-deflate; client_no_context_takeover=1"));
    const auto agreement =
        negotiate_deflate("permessage-deflate; bogus, permessage-deflate; client_max_window_bits=\"12\"");
    ASSERT_TRUE(agreement);
    EXPECT_TRUE(agreement->compress_outgoing);
}

TEST(Deflate, CompressThenInflate_RoundTrips) {
    const std::string text(5000, 'z');
    const auto compressed = compress_message(text);
    EXPECT_LT(compressed.size(), text.size() / 10);
    std::string out;
    ASSERT_EQ(inflate_message(compressed, 1 << 20, out), inflate_status::ok);
    EXPECT_EQ(out, text);
    // Twice with the same per-thread streams: nothing carried over.
    EXPECT_EQ(compress_message(text), compressed);
}

TEST(Deflate, Inflate_StopsAtTheLimit_AndRefusesGarbage) {
    const auto bomb = compress_message(std::string(1 << 20, 'a'));
    std::string out;
    EXPECT_EQ(inflate_message(bomb, 64 * 1024, out), inflate_status::too_large);
    EXPECT_LE(out.size(), 64U * 1024U);
    EXPECT_EQ(inflate_message("\xff\xff\xff\xff garbage", 1 << 20, out), inflate_status::corrupt);
}

}  // namespace
}  // namespace zena::ws
