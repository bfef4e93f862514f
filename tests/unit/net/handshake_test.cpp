#include "net/handshake.hpp"

#include <gtest/gtest.h>

namespace zena::net {
namespace {

TEST(WebSocketKey, TheBase64Of16Bytes_IsValid) {
    EXPECT_TRUE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));  // RFC 6455 §1.3
    EXPECT_TRUE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAA=="));
    EXPECT_TRUE(valid_websocket_key("/+/+/+/+/+/+/+/+/+/+/w=="));
}

TEST(WebSocketKey, AnythingElse_IsRefused) {
    for (const auto* bad : {"", "dG9vc2hvcnQ=", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==x",
                            "dGhlIHNhbXBsZSBub25jZR==", "dGhl-HNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=A",
                            "dGhlIHNhbXBsZSBub25jZQ= "}) {
        EXPECT_FALSE(valid_websocket_key(bad)) << bad;
    }
}

TEST(Subprotocol, Msgpack_IsChosenWhenOffered_BesideAToken) {
    EXPECT_EQ(choose_subprotocol("zena-realtime.msgpack, bearer.abc.def.ghi"), "zena-realtime.msgpack");
    EXPECT_EQ(choose_subprotocol("zena-realtime, zena-realtime.msgpack"), "zena-realtime.msgpack");
    EXPECT_EQ(choose_subprotocol("bearer.x,zena-realtime.msgpack"), "zena-realtime.msgpack");
}

TEST(Subprotocol, OtherwiseJson_WithOrWithoutAName) {
    EXPECT_EQ(choose_subprotocol("zena-realtime, bearer.abc"), "zena-realtime");
    EXPECT_EQ(choose_subprotocol("bearer.abc"), "");
    EXPECT_EQ(choose_subprotocol(""), "");
    EXPECT_EQ(choose_subprotocol("zena-realtime.msgpackx, chat"), "");
}

}  // namespace
}  // namespace zena::net
