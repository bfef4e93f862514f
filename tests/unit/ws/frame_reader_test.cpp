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
// The server's defaults: 1000 frames a second, bursts of 5000, 10 s for a fragmented message.
const frame_reader::budget k_budget{};

TEST(FrameReader, WholeMessages_AreDelivered_AndNothingIsHeld) {
    frame_reader reader(k_max, false, k_budget);
    recorder r;
    const auto bytes = client_frame(0x81, "hello") + client_frame(0x82, std::string("\x00\x01", 2));
    EXPECT_EQ(reader.feed(bytes, r, 0), frame_reader::status::more);
    ASSERT_EQ(r.messages.size(), 2U);
    EXPECT_EQ(r.messages[0], "hello");
    EXPECT_TRUE(r.text[0]);
    EXPECT_FALSE(r.text[1]);
    EXPECT_EQ(reader.held_bytes(), 0U);
}

TEST(FrameReader, BytesOneAtATime_GiveTheSameMessages) {
    frame_reader reader(k_max, false, k_budget);
    recorder r;
    const auto bytes = client_frame(0x01, "frag") + client_frame(0x89, "p") + client_frame(0x80, "mented") +
                       client_frame(0x81, std::string(300, 'x'));
    for (const char c : bytes) ASSERT_EQ(reader.feed(std::string_view(&c, 1), r, 0), frame_reader::status::more);
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
        frame_reader reader(k_max, false, k_budget);
        recorder r;
        EXPECT_EQ(reader.feed(c.bytes, r, 0), frame_reader::status::failed) << c.name;
        EXPECT_EQ(reader.failure_code(), c.code) << c.name;
        EXPECT_TRUE(r.messages.empty()) << c.name;
        // Nothing more is read once failed.
        EXPECT_EQ(reader.feed(client_frame(0x81, "late"), r, 0), frame_reader::status::failed) << c.name;
        EXPECT_TRUE(r.messages.empty()) << c.name;
    }
}

TEST(FrameReader, Close_IsReported_AndEndsReading) {
    frame_reader reader(k_max, false, k_budget);
    recorder r;
    const auto bytes = client_frame(0x88,
                                    "\x03\xe8"
                                    "bye") +
                       client_frame(0x81, "late");
    EXPECT_EQ(reader.feed(bytes, r, 0), frame_reader::status::closed);
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.close_code, 1000);
    EXPECT_TRUE(r.messages.empty());
}

TEST(FrameReader, CompressedMessages_AreInflated_WhenNegotiated) {
    frame_reader reader(k_max, true, k_budget);
    recorder r;
    const std::string text(800, 'q');
    const auto z = compress_message(text);
    const auto half = z.size() / 2;
    const auto bytes =
        client_frame(0xC1, z) + client_frame(0x41, z.substr(0, half)) + client_frame(0x80, z.substr(half));
    EXPECT_EQ(reader.feed(bytes, r, 0), frame_reader::status::more);
    ASSERT_EQ(r.messages.size(), 2U);
    EXPECT_EQ(r.messages[0], text);
    EXPECT_EQ(r.messages[1], text);
}

TEST(FrameReader, CompressedBomb_FailsWith1009) {
    frame_reader reader(k_max, true, k_budget);
    recorder r;
    EXPECT_EQ(reader.feed(client_frame(0xC2, compress_message(std::string(100000, 'a'))), r, 0),
              frame_reader::status::failed);
    EXPECT_EQ(reader.failure_code(), 1009);
}

// ---- what a client may make the reader spend (issue 16)

std::string repeat(const std::string& bytes, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += bytes;
    return out;
}

TEST(FrameReader, EmptyContinuationsPastTheFrameBudget_FailWith1008) {
    const frame_reader::budget budget{.frames = {10, 20}};
    frame_reader reader(k_max, false, budget);
    recorder r;
    // A first fragment and 19 empty continuations: the burst of 20, all of it.
    EXPECT_EQ(reader.feed(client_frame(0x01, "a") + repeat(client_frame(0x00, ""), 19), r, 0),
              frame_reader::status::more);
    EXPECT_EQ(reader.failed_limit(), frame_reader::limit::none);
    EXPECT_EQ(reader.feed(client_frame(0x00, ""), r, 0), frame_reader::status::failed);
    EXPECT_EQ(reader.failure_code(), 1008);
    EXPECT_EQ(reader.failed_limit(), frame_reader::limit::frames);
    EXPECT_TRUE(r.messages.empty());
}

TEST(FrameReader, UnsolicitedPongsAndPings_CountAgainstTheFrameBudgetToo) {
    const frame_reader::budget budget{.frames = {10, 20}};
    for (const std::uint8_t op : {0x8A, 0x89}) {
        frame_reader reader(k_max, false, budget);
        recorder r;
        EXPECT_EQ(reader.feed(repeat(client_frame(op, "x"), 20), r, 0), frame_reader::status::more);
        EXPECT_EQ(reader.feed(client_frame(op, "x"), r, 0), frame_reader::status::failed) << int{op};
        EXPECT_EQ(reader.failure_code(), 1008);
        EXPECT_EQ(reader.failed_limit(), frame_reader::limit::frames);
        EXPECT_EQ(r.pongs + static_cast<int>(r.pings.size()), 20) << "the frame past the budget is not handled";
    }
}

TEST(FrameReader, FrameBudget_RefillsAtItsRate) {
    const frame_reader::budget budget{.frames = {10, 20}};
    frame_reader reader(k_max, false, budget);
    recorder r;
    EXPECT_EQ(reader.feed(repeat(client_frame(0x81, "m"), 20), r, 0), frame_reader::status::more);
    // A second later, 10 more; never the 11th.
    EXPECT_EQ(reader.feed(repeat(client_frame(0x81, "m"), 10), r, 1000), frame_reader::status::more);
    EXPECT_EQ(reader.feed(client_frame(0x81, "m"), r, 1000), frame_reader::status::failed);
    EXPECT_EQ(r.messages.size(), 30U);
}

TEST(FrameReader, MessageNotFinishedInTime_FailsWith1008AtTheNextRead) {
    const frame_reader::budget budget{.message_timeout = std::chrono::milliseconds(100)};
    frame_reader reader(k_max, false, budget);
    recorder r;
    EXPECT_EQ(reader.feed(client_frame(0x01, "started"), r, 1000), frame_reader::status::more);
    EXPECT_FALSE(reader.message_overdue(1100));
    // Pings are answered meanwhile; they do not extend the message's time.
    EXPECT_EQ(reader.feed(client_frame(0x89, "p"), r, 1100), frame_reader::status::more);
    EXPECT_TRUE(reader.message_overdue(1101));
    EXPECT_EQ(reader.feed(client_frame(0x89, "p"), r, 1101), frame_reader::status::failed);
    EXPECT_EQ(reader.failure_code(), 1008);
    EXPECT_EQ(reader.failed_limit(), frame_reader::limit::message_timeout);
    EXPECT_EQ(r.pings.size(), 1U);
    EXPECT_EQ(reader.held_bytes(), 0U) << "the fragments are let go";
}

TEST(FrameReader, MessageDeadline_StartsAtEachFirstFragmentAndEndsWithTheMessage) {
    const frame_reader::budget budget{.message_timeout = std::chrono::milliseconds(100)};
    frame_reader reader(k_max, false, budget);
    recorder r;
    // An empty first fragment starts a message too.
    EXPECT_EQ(reader.feed(client_frame(0x01, ""), r, 0), frame_reader::status::more);
    EXPECT_TRUE(reader.message_overdue(101));
    EXPECT_EQ(reader.feed(client_frame(0x80, "done"), r, 100), frame_reader::status::more);
    EXPECT_FALSE(reader.message_overdue(100000)) << "no message in progress";
    EXPECT_EQ(reader.feed(client_frame(0x81, "whole"), r, 100000), frame_reader::status::more);
    EXPECT_EQ(reader.feed(client_frame(0x02, "next"), r, 200000), frame_reader::status::more);
    EXPECT_FALSE(reader.message_overdue(200100));
    EXPECT_EQ(reader.feed(client_frame(0x80, "!"), r, 200100), frame_reader::status::more);
    ASSERT_EQ(r.messages.size(), 3U);
    EXPECT_EQ(r.messages[2], "next!");
    EXPECT_EQ(reader.held_bytes(), 0U);
    EXPECT_EQ(reader.fail_overdue_message(), frame_reader::status::failed) << "what the heartbeat calls";
    EXPECT_EQ(reader.failure_code(), 1008);
}

TEST(FrameReader, AfterDiscard_NothingIsReadOrInflatedUntilTheClientsClose) {
    frame_reader reader(k_max, true, k_budget);
    recorder r;
    EXPECT_EQ(reader.feed(client_frame(0x01, "half a "), r, 0), frame_reader::status::more);
    reader.discard(4096);
    EXPECT_TRUE(reader.discarding());
    EXPECT_EQ(reader.held_bytes(), 0U) << "the message begun is dropped";
    // A compressed bomb (inflated it fails with 1009), invalid UTF-8 (1007), a ping, a
    // continuation of nothing (1002) and a message of 300 bytes (a 16-bit length): all skipped.
    const auto bytes = client_frame(0xC2, compress_message(std::string(100000, 'a'))) + client_frame(0x81, "\xff") +
                       client_frame(0x89, "p") + client_frame(0x80, "x") + client_frame(0x82, std::string(300, 'b'));
    EXPECT_EQ(reader.feed(bytes, r, 0), frame_reader::status::more);
    // The close frame, byte by byte: its header is enough.
    const auto close = client_frame(0x88, "\x03\xe8");
    EXPECT_EQ(reader.feed(close.substr(0, 1), r, 0), frame_reader::status::more);
    EXPECT_EQ(reader.feed(close.substr(1), r, 0), frame_reader::status::closed);
    EXPECT_TRUE(r.closed);
    EXPECT_FALSE(r.close_code) << "its payload is not read";
    EXPECT_TRUE(r.messages.empty());
    EXPECT_TRUE(r.pings.empty());
}

TEST(FrameReader, AfterDiscard_AFrameSplitAcrossReadsIsSkippedAsItComes) {
    frame_reader reader(k_max, false, k_budget);
    recorder r;
    reader.discard(4096);
    const auto bytes = client_frame(0x82, std::string(900, 'z')) + client_frame(0x88, "");
    for (const char c : bytes) {
        if (reader.feed(std::string_view(&c, 1), r, 0) != frame_reader::status::more) break;
        EXPECT_LE(reader.held_bytes(), 14U) << "at most a header is kept";
    }
    EXPECT_TRUE(r.closed);
    EXPECT_TRUE(r.messages.empty());
}

TEST(FrameReader, AfterDiscard_MoreThanTheAllowanceFails) {
    frame_reader reader(k_max, false, k_budget);
    recorder r;
    reader.discard(1000);
    EXPECT_EQ(reader.feed(client_frame(0x82, std::string(900, 'z')), r, 0), frame_reader::status::more);
    EXPECT_EQ(reader.feed(client_frame(0x82, std::string(200, 'z')), r, 0), frame_reader::status::failed);
    EXPECT_TRUE(r.messages.empty());
}

// A handler that discards from inside its first message, as a connection closing on a message does.
struct discarding_recorder : recorder {
    frame_reader* reader = nullptr;
    void on_message(std::string_view data, bool is_text) override {
        recorder::on_message(data, is_text);
        reader->discard(4096);
    }
};

TEST(FrameReader, DiscardFromInsideAHandler_SkipsTheFramesAfterInTheSameRead) {
    for (const bool fragmented : {false, true}) {
        frame_reader reader(k_max, false, k_budget);
        discarding_recorder r;
        r.reader = &reader;
        const auto first =
            fragmented ? client_frame(0x01, "fir") + client_frame(0x80, "st") : client_frame(0x81, "first");
        const auto bytes = first + client_frame(0x81, "second") + client_frame(0x89, "p") + client_frame(0x88, "");
        EXPECT_EQ(reader.feed(bytes, r, 0), frame_reader::status::closed);
        ASSERT_EQ(r.messages.size(), 1U);
        EXPECT_EQ(r.messages[0], "first");
        EXPECT_TRUE(r.pings.empty());
        EXPECT_TRUE(r.closed);
    }
}

}  // namespace
}  // namespace zena::ws
