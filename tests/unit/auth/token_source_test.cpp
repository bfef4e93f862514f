#include "auth/token_source.hpp"

#include <gtest/gtest.h>

namespace zena::auth {
namespace {

TEST(TokenSource, QueryParameter_IsFound) { EXPECT_EQ(find_token("/ws?token=abc.def.ghi", ""), "abc.def.ghi"); }

TEST(TokenSource, QueryParameter_IsPercentDecoded) { EXPECT_EQ(find_token("/ws?x=1&token=a%2Eb", ""), "a.b"); }

TEST(TokenSource, BearerHeader_WinsOverQuery) {
    EXPECT_EQ(find_token("/ws?token=from-query", "Bearer from-header"), "from-header");
    EXPECT_EQ(find_token("/ws", "bearer  spaced "), "spaced");
}

TEST(TokenSource, Nothing_IsEmpty) {
    EXPECT_EQ(find_token("/ws", ""), "");
    EXPECT_EQ(find_token("/ws?tokens=x", "Basic abc"), "");
    EXPECT_EQ(find_token("/ws?token=%zz", ""), "");
}

TEST(TokenSource, BearerCredential_NeedsTheScheme) {
    EXPECT_EQ(bearer_credential("Bearer k"), "k");
    EXPECT_EQ(bearer_credential("Bearer"), "");
    EXPECT_EQ(bearer_credential("Bearerk"), "");
    EXPECT_EQ(bearer_credential("Token k"), "");
}

TEST(TokenSource, Subprotocol_IsFoundAfterTheHeaderAndBeforeTheQuery) {
    EXPECT_EQ(find_token("/ws?token=q", "", "zena-realtime, bearer.a.b.c"), "a.b.c");
    EXPECT_EQ(find_token("/ws?token=q", "Bearer h", "zena-realtime, bearer.a.b.c"), "h");
    EXPECT_EQ(find_token("/ws?token=q", "", "zena-realtime, bearer."), "q") << "an empty offer is no token";
    EXPECT_EQ(find_token("/ws", "", "zena-realtime"), "");
}

TEST(TokenSource, OffersSubprotocol_MatchesWholeItems) {
    EXPECT_TRUE(offers_subprotocol("bearer.x, zena-realtime", "zena-realtime"));
    EXPECT_FALSE(offers_subprotocol("zena-realtime-v2", "zena-realtime"));
    EXPECT_FALSE(offers_subprotocol("", "zena-realtime"));
}

}  // namespace
}  // namespace zena::auth
