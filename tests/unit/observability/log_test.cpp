#include "observability/log.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <string>

namespace zena::observability {
namespace {

TEST(LogLimiter, AllowsABurstThenCountsTheRest) {
    log_limiter limiter{5};
    int allowed = 0;
    for (int i = 0; i < 100; ++i) allowed += limiter.allow(1000) ? 1 : 0;
    EXPECT_EQ(allowed, 5);
    EXPECT_EQ(limiter.take_suppressed(), 95U);
    EXPECT_EQ(limiter.take_suppressed(), 0U);
}

TEST(LogLimiter, RefillsWithTime) {
    log_limiter limiter{2};
    EXPECT_TRUE(limiter.allow(0));
    EXPECT_TRUE(limiter.allow(0));
    EXPECT_FALSE(limiter.allow(0));
    EXPECT_TRUE(limiter.allow(500));  // one token back after half a second
    EXPECT_FALSE(limiter.allow(500));
    EXPECT_TRUE(limiter.allow(10'000));
}

TEST(LogLimiter, ZeroRate_LogsNothing) {
    log_limiter limiter{0};
    EXPECT_FALSE(limiter.allow(0));
    EXPECT_FALSE(limiter.allow(100000));
}

// The line parsed back by a validating JSON parser: every field as a string.
std::map<std::string, std::string> parse_line(const std::string& line) {
    simdjson::dom::parser parser;
    simdjson::dom::object object;
    const auto error = parser.parse(line).get(object);
    EXPECT_EQ(error, simdjson::SUCCESS) << line;
    std::map<std::string, std::string> fields;
    if (error) return fields;
    for (auto [key, value] : object) {
        std::string_view text;
        EXPECT_EQ(value.get(text), simdjson::SUCCESS) << key;
        fields[std::string{key}] = std::string{text};
    }
    return fields;
}

TEST(JsonLogLine, TextAndPairs_BecomeFields) {
    const auto line = json_log_line("2026-01-02T03:04:05.006Z", "info",
                                    R"(handshake refused reason="too many handshakes" address=1.2.3.4)");
    const auto f = parse_line(line);
    EXPECT_EQ(f.size(), 5U) << line;
    EXPECT_EQ(f.at("time"), "2026-01-02T03:04:05.006Z");
    EXPECT_EQ(f.at("level"), "info");
    EXPECT_EQ(f.at("msg"), "handshake refused");
    EXPECT_EQ(f.at("reason"), "too many handshakes");
    EXPECT_EQ(f.at("address"), "1.2.3.4");
}

TEST(JsonLogLine, QuotesControlsAndBadUtf8_StayOneValidObject) {
    const auto line = json_log_line("t", "warning", "bad \"x\"\n\x01 \xff\xfe origin=\"a\\\"b\" path=/x\ty");
    ASSERT_EQ(line.find('\n'), std::string::npos) << "one line";
    const auto f = parse_line(line);
    EXPECT_EQ(f.at("msg"), "bad \"x\"\n\x01 \xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(f.at("origin"), "a\"b");
    EXPECT_EQ(f.at("path"), "/x\ty");
}

TEST(JsonLogLine, MessageWithoutPairs_IsAllText) {
    auto f = parse_line(json_log_line("t", "info", "listening on 127.0.0.1:3000"));
    EXPECT_EQ(f.size(), 3U);
    EXPECT_EQ(f.at("msg"), "listening on 127.0.0.1:3000");
    // A tail that is not wholly pairs (an unclosed quote) is text too.
    f = parse_line(json_log_line("t", "info", "x a=\"open"));
    EXPECT_EQ(f.at("msg"), "x a=\"open");
    EXPECT_EQ(f.count("a"), 0U);
}

TEST(JsonLogLine, PairNamedLikeALineField_IsKeptApart) {
    const auto f = parse_line(json_log_line("t", "info", "event level=3 msg=hi"));
    EXPECT_EQ(f.at("level"), "info");
    EXPECT_EQ(f.at("_level"), "3");
    EXPECT_EQ(f.at("msg"), "event");
    EXPECT_EQ(f.at("_msg"), "hi");
}

TEST(JsonLogLine, ValidUtf8_PassesThrough) {
    const auto f = parse_line(json_log_line("t", "info", "caf\xC3\xA9 user=\xE2\x82\xAC"));
    EXPECT_EQ(f.at("msg"), "caf\xC3\xA9");
    EXPECT_EQ(f.at("user"), "\xE2\x82\xAC");
}

}  // namespace
}  // namespace zena::observability
