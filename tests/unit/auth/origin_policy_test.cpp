#include "auth/origin_policy.hpp"

#include <gtest/gtest.h>

namespace zena::auth {
namespace {

origin_policy parse(std::string_view allowed) {
    std::string error;
    auto p = origin_policy::parse(allowed, error);
    EXPECT_TRUE(p) << error;
    return p.value_or(origin_policy{});
}

TEST(OriginPolicy, EmptyOrStar_AllowsAny) {
    EXPECT_TRUE(parse("").allows("https://anything.example"));
    EXPECT_TRUE(parse(" * ").allows_any());
}

TEST(OriginPolicy, ListedOrigins_MatchSchemeHostAndPortWithoutCase) {
    const auto p = parse("https://app.example.com, http://localhost:5173");
    EXPECT_TRUE(p.allows("https://app.example.com"));
    EXPECT_TRUE(p.allows("HTTPS://App.Example.COM"));
    EXPECT_TRUE(p.allows("http://localhost:5173"));
    EXPECT_FALSE(p.allows("http://app.example.com")) << "another scheme";
    EXPECT_FALSE(p.allows("https://app.example.com:8443")) << "another port";
    EXPECT_FALSE(p.allows("http://localhost:5174"));
    EXPECT_FALSE(p.allows("https://app.example.com.evil.example"));
    EXPECT_FALSE(p.allows("null"));
    EXPECT_FALSE(p.allows("https://app.example.com/path"));
}

TEST(OriginPolicy, Wildcard_MatchesSubdomainsOnly) {
    const auto p = parse("https://*.zena.dev");
    EXPECT_TRUE(p.allows("https://eu.zena.dev"));
    EXPECT_TRUE(p.allows("https://a.b.zena.dev"));
    EXPECT_FALSE(p.allows("https://zena.dev"));
    EXPECT_FALSE(p.allows("https://evilzena.dev"));
    EXPECT_FALSE(p.allows("https://*.zena.dev")) << "a wildcard is not an origin";
}

TEST(OriginPolicy, NoOriginHeader_IsNotABrowserAndIsAllowed) { EXPECT_TRUE(parse("https://a.example").allows("")); }

TEST(OriginPolicy, MalformedEntries_AreRefused) {
    for (const auto* bad :
         {"app.example.com", "https://", "https://a.example/path", "https://a.example:port", "https://a example"}) {
        std::string error;
        EXPECT_FALSE(origin_policy::parse(bad, error)) << bad;
        EXPECT_FALSE(error.empty());
    }
}

}  // namespace
}  // namespace zena::auth
