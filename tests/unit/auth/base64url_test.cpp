#include "auth/base64url.hpp"

#include <gtest/gtest.h>

namespace zena::auth {
namespace {

TEST(Base64url, RoundTrips_EveryLength) {
    std::string bytes;
    for (int i = 0; i < 70; ++i) {
        const auto encoded = base64url_encode(bytes);
        EXPECT_EQ(encoded.find('='), std::string::npos);
        EXPECT_EQ(base64url_decode(encoded), bytes);
        bytes += static_cast<char>(i * 37);
    }
}

TEST(Base64url, KnownVectors_Rfc4648) {
    EXPECT_EQ(base64url_encode("f"), "Zg");
    EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
    EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
}

TEST(Base64url, Padding_IsRefused) { EXPECT_FALSE(base64url_decode("Zg==")); }

TEST(Base64url, StandardAlphabet_IsRefused) { EXPECT_FALSE(base64url_decode("+/8")); }

TEST(Base64url, ImpossibleLength_IsRefused) { EXPECT_FALSE(base64url_decode("Zm9vY")); }

TEST(Base64url, NonZeroTrailingBits_AreRefused) {
    EXPECT_TRUE(base64url_decode("Zg"));
    EXPECT_FALSE(base64url_decode("Zh"));
}

}  // namespace
}  // namespace zena::auth
