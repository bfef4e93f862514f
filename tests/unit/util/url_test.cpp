#include "util/url.hpp"

#include <gtest/gtest.h>

namespace zena::util {
namespace {

TEST(Url, TargetPath_DropsTheQuery) {
    EXPECT_EQ(target_path("/ws?token=x"), "/ws");
    EXPECT_EQ(target_path("/api/stats"), "/api/stats");
}

TEST(Url, RedactTarget_HidesTheWholeQuery) {
    EXPECT_EQ(redact_target("/ws?token=secret&x=1"), "/ws?<redacted>");
    EXPECT_EQ(redact_target("/healthz"), "/healthz");
}

TEST(Url, PercentDecode_HandlesEscapesAndRefusesBadOnes) {
    EXPECT_EQ(percent_decode("a%20b%2fc", false), "a b/c");
    EXPECT_EQ(percent_decode("a+b", true), "a b");
    EXPECT_EQ(percent_decode("a+b", false), "a+b");
    EXPECT_FALSE(percent_decode("%", false));
    EXPECT_FALSE(percent_decode("%4", false));
    EXPECT_FALSE(percent_decode("%g0", false));
}

TEST(Url, PathSegments_SplitBeforeDecodingSoAnEncodedSlashStaysInItsSegment) {
    using list = std::vector<std::string>;
    EXPECT_EQ(path_segments("/api/users/tenant%2F42/connections"), (list{"api", "users", "tenant/42", "connections"}));
    EXPECT_EQ(path_segments("/api/users/a/b/connections"), (list{"api", "users", "a", "b", "connections"}));
    EXPECT_EQ(path_segments("/a%252F/%20+"), (list{"a%2F", " +"}));  // decoded once; '+' stays
    EXPECT_EQ(path_segments("/x//y/"), (list{"x", "", "y", ""}));
    EXPECT_EQ(path_segments("/"), (list{""}));
    EXPECT_EQ(path_segments("rel/x"), (list{"rel", "x"}));
    EXPECT_FALSE(path_segments("/api/users/%2/connections"));
    EXPECT_FALSE(path_segments("/ok/%zz"));
}

TEST(Url, QueryParam_FindsTheFirstExactName) {
    EXPECT_EQ(query_param("/p?a=1&token=t&token=u", "token"), "t");
    EXPECT_EQ(query_param("/p?xtoken=1", "token"), std::nullopt);
    EXPECT_EQ(query_param("/p?token", "token"), "");
    EXPECT_EQ(query_param("/p?token=a#frag", "token"), "a");
    EXPECT_EQ(query_param("/p", "token"), std::nullopt);
}

TEST(HttpUrl, ParsesHostPortAndTarget) {
    auto u = parse_http_url("http://127.0.0.1:4000/zena/events?x=1");
    EXPECT_EQ(u.host, "127.0.0.1");
    EXPECT_EQ(u.port, "4000");
    EXPECT_EQ(u.target, "/zena/events?x=1");
    u = parse_http_url("http://backend");
    EXPECT_EQ(u.host, "backend");
    EXPECT_EQ(u.port, "80");
    EXPECT_EQ(u.target, "/");
}

TEST(HttpUrl, Https_IsMarkedTlsWithPort443) {
    const auto u = parse_http_url("https://issuer.example/.well-known/jwks.json");
    EXPECT_EQ(u.host, "issuer.example");
    EXPECT_EQ(u.port, "443");
    EXPECT_TRUE(u.tls);
    EXPECT_FALSE(parse_http_url("http://h/").tls);
}

TEST(HttpUrl, RefusesWhatItCannotCall) {
    for (const auto* bad : {"ftp://x", "http://", "http://:80/x", "http://h:port/x", "http://user@h/x", "backend/x",
                            "http://h:123456/"}) {
        EXPECT_TRUE(parse_http_url(bad).host.empty()) << bad;
    }
}

}  // namespace
}  // namespace zena::util
