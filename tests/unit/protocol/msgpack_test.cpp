#include "protocol/msgpack.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "protocol/envelope.hpp"

namespace zena::protocol {
namespace {

std::string bytes(std::initializer_list<unsigned> list) {
    std::string out;
    for (const auto b : list) out += static_cast<char>(b);
    return out;
}

std::string encode(std::string_view json) {
    std::string out;
    EXPECT_TRUE(json_to_msgpack(json, out)) << json;
    return out;
}

std::string decode(std::string_view msgpack, msgpack_error expected = msgpack_error::none) {
    std::string out;
    EXPECT_EQ(msgpack_to_json(msgpack, out), expected);
    return out;
}

TEST(MsgpackEncode, Scalars_TakeTheirSmallestForm) {
    EXPECT_EQ(encode("null"), bytes({0xc0}));
    EXPECT_EQ(encode("[true,false]"), bytes({0x92, 0xc3, 0xc2}));
    EXPECT_EQ(encode("[0,127,128,255,256,65535,65536]"), bytes({0x97, 0x00, 0x7f, 0xcc, 0x80, 0xcc, 0xff, 0xcd, 0x01,
                                                                0x00, 0xcd, 0xff, 0xff, 0xce, 0x00, 0x01, 0x00, 0x00}));
    EXPECT_EQ(encode("[-1,-32,-33,-128,-129,-32768,-32769]"),
              bytes({0x97, 0xff, 0xe0, 0xd0, 0xdf, 0xd0, 0x80, 0xd1, 0xff, 0x7f, 0xd1, 0x80, 0x00, 0xd2, 0xff, 0xff,
                     0x7f, 0xff}));
    EXPECT_EQ(encode("4294967296"), bytes({0xcf, 0, 0, 0, 1, 0, 0, 0, 0}));
    EXPECT_EQ(encode("18446744073709551615"), bytes({0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
    EXPECT_EQ(encode("-9223372036854775808"), bytes({0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(encode("1.5"), bytes({0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}));
}

TEST(MsgpackEncode, StringsAreUnescaped_AndSizedByTheirHead) {
    EXPECT_EQ(encode(R"("a\"\u00e9")"), bytes({0xa4, 'a', '"', 0xc3, 0xa9}));
    const std::string s31(31, 'x');
    const std::string s32(32, 'x');
    const std::string s256(256, 'x');
    const std::string s65536(65536, 'x');
    EXPECT_EQ(encode("\"" + s31 + "\""), bytes({0xbf}) + s31);
    EXPECT_EQ(encode("\"" + s32 + "\""), bytes({0xd9, 32}) + s32);
    EXPECT_EQ(encode("\"" + s256 + "\""), bytes({0xda, 0x01, 0x00}) + s256);
    EXPECT_EQ(encode("\"" + s65536 + "\""), bytes({0xdb, 0x00, 0x01, 0x00, 0x00}) + s65536);
}

TEST(MsgpackEncode, ObjectsAndArrays_AreMapsAndArraysInOrder) {
    EXPECT_EQ(encode(R"({"type":"x","payload":{}})"),
              bytes({0x82, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'x', 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0x80}));
    std::string sixteen = "[";
    for (int i = 0; i < 16; ++i) sixteen += i ? ",0" : "0";
    sixteen += "]";
    EXPECT_EQ(encode(sixteen), bytes({0xdc, 0x00, 0x10}) + std::string(16, '\0'));
}

TEST(MsgpackEncode, InvalidJson_IsRefused) {
    std::string out;
    EXPECT_FALSE(json_to_msgpack("{\"a\":", out));
}

TEST(MsgpackDecode, WhatTheEncoderWrites_ReadsBackAsTheSameJson) {
    for (
        const auto* json :
        {R"({"type":"sync.progress","payload":{"accountId":"a1","progress":42,"total":-7},"channel":"user:u","epoch":"e1","seq":3})",
         R"([null,true,false,0,-1,127,-32768,18446744073709551615,-9223372036854775808,0.1,1e+300,"é\n\"🏠"])",
         R"({"nested":{"a":[{"b":[]},{}]}})"}) {
        EXPECT_EQ(decode(encode(json)), json);
    }
}

TEST(MsgpackDecode, Float32AndWideForms_AreRead) {
    EXPECT_EQ(decode(bytes({0xca, 0x3f, 0xc0, 0, 0})), "1.5");
    EXPECT_EQ(decode(bytes({0xd9, 0x01, 'a'})), R"("a")");
    EXPECT_EQ(decode(bytes({0xde, 0x00, 0x01, 0xa1, 'k', 0xd0, 0x80})), R"({"k":-128})");
    EXPECT_EQ(decode(bytes({0xdd, 0, 0, 0, 1, 0xcd, 0x01, 0x00})), "[256]");
}

TEST(MsgpackDecode, FloatsReadBackAsTheSameValue) {
    // -0 keeps its sign; 2^64 as a double is not written as a 20-digit integer no parser takes.
    EXPECT_EQ(decode(bytes({0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0})), "-0.0");
    EXPECT_EQ(decode(bytes({0xcb, 0x43, 0xf0, 0, 0, 0, 0, 0, 0})), "1.8446744073709552e+19");
    EXPECT_EQ(decode(bytes({0xcb, 0x41, 0x2e, 0x84, 0x80, 0, 0, 0, 0})), "1e+06");
    for (const auto* json : {"-0.0", "1.8446744073709552e+19", "0.1"}) EXPECT_EQ(decode(encode(json)), json);
}

TEST(MsgpackDecode, HostileInput_IsRefusedWithItsReason) {
    decode(bytes({0x92, 0x01}), msgpack_error::truncated);
    decode(bytes({0xa5, 'a'}), msgpack_error::truncated);
    decode(bytes({0xcb, 0x00}), msgpack_error::truncated);
    decode("", msgpack_error::truncated);
    // A count far past the bytes left is refused before anything is reserved or looped over.
    decode(bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), msgpack_error::truncated);
    decode(bytes({0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0}), msgpack_error::truncated);
    decode(bytes({0xdb, 0xff, 0xff, 0xff, 0xff}), msgpack_error::truncated);
    decode(bytes({0x01, 0x02}), msgpack_error::trailing_bytes);
    decode(bytes({0x81, 0x01, 0x02}), msgpack_error::key_not_string);
    decode(bytes({0xc4, 0x01, 0x00}), msgpack_error::unsupported_type);  // bin
    decode(bytes({0xd4, 0x01, 0x00}), msgpack_error::unsupported_type);  // fixext
    decode(bytes({0xc1}), msgpack_error::unsupported_type);
    decode(bytes({0xa1, 0xff}), msgpack_error::invalid_utf8);
    decode(bytes({0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}), msgpack_error::not_finite);  // NaN
    decode(bytes({0xca, 0x7f, 0x80, 0, 0}), msgpack_error::not_finite);              // +inf
}

TEST(MsgpackDecode, NestingPastTheLimit_IsTooDeep) {
    const auto nested = [](std::size_t n) { return std::string(n, '\x91') + '\x01'; };
    EXPECT_EQ(decode(nested(k_max_msgpack_depth)),
              std::string(k_max_msgpack_depth, '[') + "1" + std::string(k_max_msgpack_depth, ']'));
    decode(nested(k_max_msgpack_depth + 1), msgpack_error::too_deep);
    decode(nested(100000), msgpack_error::too_deep);
}

TEST(MsgpackFrame, AChannelFrame_HasABinaryTwinOfTheSameEnvelope) {
    const auto json = make_channel_frame("thread.new", R"({"threadId":"t1"})", "user:u", "e1", 9);
    const auto twin = make_msgpack_frame(*json);
    ASSERT_NE(twin, nullptr);
    EXPECT_EQ(twin->op(), ws::opcode::binary);
    EXPECT_EQ(twin->payload(), encode(json->payload()));
    EXPECT_EQ(decode(twin->payload()), json->payload());
    EXPECT_LT(twin->size(), json->size());
}

TEST(MsgpackFrame, AsMsgpack_KeepsClassAndKey_AndMakesTheTwinOnce) {
    const ws::outbound message{make_event_frame("sync.progress", R"({"accountId":"a"})"), ws::delivery_class::latest,
                               77};
    const auto a = as_msgpack(message);
    EXPECT_EQ(a.delivery, ws::delivery_class::latest);
    EXPECT_EQ(a.latest_key, 77U);
    EXPECT_EQ(a.frame->op(), ws::opcode::binary);
    // Every connection, on every thread, gets the same bytes.
    std::vector<ws::shared_frame> seen(4);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < seen.size(); ++i) {
        threads.emplace_back([&, i] { seen[i] = as_msgpack(message).frame; });
    }
    for (auto& t : threads) t.join();
    for (const auto& f : seen) EXPECT_EQ(f, a.frame);
}

std::atomic<int> g_made{0};
ws::shared_frame counting_maker(const ws::frame& f) {
    ++g_made;
    return make_msgpack_frame(f);
}

TEST(MsgpackFrame, Twin_IsMadeByTheFirstCallerOnly) {
    const auto json = make_event_frame("pong", R"({"serverTime":1})");
    g_made = 0;
    const auto& first = json->twin(&counting_maker);
    const auto& second = json->twin(&counting_maker);
    EXPECT_EQ(g_made.load(), 1);
    EXPECT_EQ(first, second);
}

}  // namespace
}  // namespace zena::protocol
