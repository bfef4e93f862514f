#include "ws/frame.hpp"

#include <gtest/gtest.h>

namespace zena::ws {
namespace {

TEST(Frame, Header_UsesTheShortestLengthForm) {
    EXPECT_EQ(make_frame(opcode::text, "hi"), std::string("\x81\x02hi", 4));
    const auto medium = make_frame(opcode::binary, std::string(126, 'x'));
    EXPECT_EQ(medium.substr(0, 4), std::string("\x82\x7e\x00\x7e", 4));
    EXPECT_EQ(medium.size(), 4U + 126U);
    const auto large = make_frame(opcode::text, std::string(65536, 'x'));
    EXPECT_EQ(large.substr(0, 10), std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST(Frame, Header_CompressedSetsRsv1) {
    EXPECT_EQ(static_cast<unsigned char>(make_frame(opcode::text, "x", true)[0]), 0xC1U);
}

TEST(Frame, ClosePayload_CutsLongReasonsAtACharacterBoundary) {
    EXPECT_EQ(close_payload(1000, "bye"), std::string("\x03\xe8"
                                                      "bye",
                                                      5));
    std::string reason(122, 'a');
    reason += "\xc3\xa9";  // é across the 123-byte limit
    const auto payload = close_payload(4000, reason);
    EXPECT_LE(payload.size(), k_max_control_payload);
    EXPECT_TRUE(valid_utf8(std::string_view(payload).substr(2)));
    EXPECT_EQ(payload.size(), 2U + 122U);
}

TEST(Frame, ValidCloseCode_FollowsTheRegistry) {
    for (const std::uint16_t code :
         {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999}) {
        EXPECT_TRUE(valid_close_code(code)) << code;
    }
    for (const std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
        EXPECT_FALSE(valid_close_code(code)) << code;
    }
}

TEST(Utf8Validator, AcceptsValidText_AcrossSplits) {
    const std::string text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";  // a é € 😀 z
    EXPECT_TRUE(valid_utf8(text));
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        utf8_validator v;
        EXPECT_TRUE(v.feed(text.substr(0, cut)));
        EXPECT_TRUE(v.feed(text.substr(cut)));
        EXPECT_TRUE(v.complete()) << cut;
    }
}

TEST(Utf8Validator, RejectsOverlongSurrogatesAndOutOfRange) {
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
    EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));      // overlong three-byte
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // U+D800
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(valid_utf8("\xff"));
    EXPECT_FALSE(valid_utf8("\xe2\x82"));  // truncated
    utf8_validator v;
    EXPECT_FALSE(v.feed("ok\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"));  // fails at once
}

TEST(Frame, AcceptKey_MatchesTheRfcExample) {
    EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

}  // namespace
}  // namespace zena::ws
