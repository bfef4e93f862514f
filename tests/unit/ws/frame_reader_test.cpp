#include "ws/frame_reader.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "ws/deflate.hpp"

namespace zena::ws {
namespace {

// A client frame: masked, with the length in the form asked for (0: the shortest).
std::string client_frame(std::uint8_t first_byte, std::string_view payload, int length_form = 0) {
    std::string out(1, static_cast<char>(first_byte));
    const auto n = payload.size();
    const int form = length_form != 0 ? length_form : n < 126 ? 7 : n <= 0xFFFF ? 16 : 64;
    if (form == 7) {
        out += static_cast<char>(0x80U | n);
    } else if (form == 16) {
        out += static_cast<char>(0x80U | 126U);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xFFU);
    } else {
        out += static_cast<char>(0x80U | 127U);
        for (int i = 7; i >= 0; --i) out += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFFU);
    }
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    out.append(mask, 4);
    for (std::size_t i = 0; i < n; ++i) out += static_cast<char>(payload[i] ^ mask[i % 4]);
    return out;
}

struct recorder : frame_reader::handler {
    std::vector<std::string> messages;
    std::vector<bool> text;
    std::vector<std::string> pings;
    int pongs = 0;
    std::optional<std::uint16_t> close_code;
    bool closed = false;
    void on_message(std::string_view data, bool is_text) override {
        messages.emplace_back(data);
        text.push_back(is_text);
    }
    void on_ping(std::string_view payload) override { pings.emplace_back(payload); }
    void on_pong() override { ++pongs; }
    void on_close(std::optional<std::uint16_t> code, std::string_view) override {
        closed = true;
        close_code = code;
    }
};

constexpr std::size_t k_max = 1000;

TEST(FrameReader, WholeMessages_AreDelivered_AndNothingIsHeld) {
    frame_reader reader(k_max, false);
    recorder r;
    const auto bytes = client_frame(0x81, "hello") + client_frame(0x82, std::string("\x00\x01", 2));
    EXPECT_EQ(reader.feed(bytes, r), frame_reader::status::more);
    ASSERT_EQ(r.messages.size(), 2U);
    EXPECT_EQ(r.messages[0], "hello");
    EXPECT_TRUE(r.text[0]);
    EXPECT_FALSE(r.text[1]);
    EXPECT_EQ(reader.held_bytes(), 0U);
}

TEST(FrameReader, BytesOneAtATime_GiveTheSameMessages) {
    frame_reader reader(k_max, false);
    recorder r;
    const auto bytes = client_frame(0x01, "frag") + client_frame(0x89, "p") + client_frame(0x80, "mented") +
                       client_frame(0x81, std::string(300, 'x'));
    for (const char c : bytes) ASSERT_EQ(reader.feed(std::string_view(&c, 1), r), frame_reader::status::more);
    ASSERT_EQ(r.messages.size(), 2U);
    EXPECT_EQ(r.messages[0], "fragmented");
    EXPECT_EQ(r.messages[1], std::string(300, 'x'));
    EXPECT_EQ(r.pings, std::vector<std::string>{"p"});
    EXPECT_EQ(reader.held_bytes(), 0U);
}

struct failure_case {
    const char* name;
    std::string bytes;
    std::uint16_t code;
};

TEST(FrameReader, ProtocolViolations_FailWithTheRfcCode) {
    std::string unmasked = client_frame(0x81, "x");
    unmasked[1] = static_cast<char>(unmasked[1] & 0x7F);
    const std::vector<failure_case> cases = {
        {"unmasked", unmasked, 1002},
        {"rsv2", client_frame(0xA1, "x"), 1002},
        {"rsv1 without deflate", client_frame(0xC1, "x"), 1002},
        {"reserved opcode", client_frame(0x83, "x"), 1002},
        {"16-bit length under 126", client_frame(0x81, "short", 16), 1002},
        {"64-bit length under 65536", client_frame(0x82, std::string(200, 'x'), 64), 1002},
        {"64-bit length top bit", std::string("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01", 10), 1002},
        {"fragmented ping", client_frame(0x09, "p"), 1002},
        {"long ping", client_frame(0x89, std::string(126, 'p')), 1002},
        {"continuation first", client_frame(0x80, "x"), 1002},
        {"new message inside one", client_frame(0x01, "a") + client_frame(0x81, "b"), 1002},
        {"too big, from the header", std::string("\x82\xfe\x03\xe9", 4), 1009},
        {"too big across fragments",
         client_frame(0x02, std::string(600, 'a')) + client_frame(0x80, std::string(600, 'a')), 1009},
        {"invalid UTF-8", client_frame(0x81, "\xff"), 1007},
        {"invalid UTF-8 in a first fragment", client_frame(0x01, "\xed\xa0\x80"), 1007},
        {"truncated UTF-8 at the end", client_frame(0x01, "a") + client_frame(0x80, "\xe2\x82"), 1007},
        {"one-byte close", client_frame(0x88, "\x03"), 1002},
        {"close code 1005", client_frame(0x88, "\x03\xed"), 1002},
        {"close reason not UTF-8", client_frame(0x88, "\x03\xe8\xff"), 1007},
    };
    for (const auto& c : cases) {
        frame_reader reader(k_max, false);
        recorder r;
        EXPECT_EQ(reader.feed(c.bytes, r), frame_reader::status::failed) << c.name;
        EXPECT_EQ(reader.failure_code(), c.code) << c.name;
        EXPECT_TRUE(r.messages.empty()) << c.name;
        // Nothing more is read once failed.
        EXPECT_EQ(reader.feed(client_frame(0x81, "late"), r), frame_reader::status::failed) << c.name;
        EXPECT_TRUE(r.messages.empty()) << c.name;
    }
}

TEST(FrameReader, Close_IsReported_AndEndsReading) {
    frame_reader reader(k_max, false);
    recorder r;
    const auto bytes = client_frame(0x88,
                                    "\x03\xe8"
                                    "bye") +
                       client_frame(0x81, "late");
    EXPECT_EQ(reader.feed(bytes, r), frame_reader::status::closed);
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.close_code, 1000);
    EXPECT_TRUE(r.messages.empty());
}

TEST(FrameReader, CompressedMessages_AreInflated_WhenNegotiated) {
    frame_reader reader(k_max, true);
    recorder r;
    const std::string text(800, 'q');
    const auto z = compress_message(text);
    const auto half = z.size() / 2;
    const auto bytes =
        client_frame(0xC1, z) + client_frame(0x41, z.substr(0, half)) + client_frame(0x80, z.substr(half));
    EXPECT_EQ(reader.feed(bytes, r), frame_reader::status::more);
    ASSERT_EQ(r.messages.size(), 2U);
    EXPECT_EQ(r.messages[0], text);
    EXPECT_EQ(r.messages[1], text);
}

TEST(FrameReader, CompressedBomb_FailsWith1009) {
    frame_reader reader(k_max, true);
    recorder r;
    EXPECT_EQ(reader.feed(client_frame(0xC2, compress_message(std::string(100000, 'a'))), r),
              frame_reader::status::failed);
    EXPECT_EQ(reader.failure_code(), 1009);
}

}  // namespace
}  // namespace zena::ws
