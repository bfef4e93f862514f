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

}  // namespace
}  // namespace zena::auth
