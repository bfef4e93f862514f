#include "auth/jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/base64url.hpp"

namespace zena::auth {
namespace {

constexpr std::int64_t k_now = 1'800'000'000;
const std::string k_secret(32, 's');

jwt_settings settings_with(jwt_algorithm alg = jwt_algorithm::hs256) {
    jwt_settings s;
    s.algorithm = alg;
    s.secret = k_secret;
    s.leeway = std::chrono::seconds(30);
    return s;
}

jwt_verifier verifier(jwt_settings s = settings_with()) {
    return jwt_verifier(std::move(s), [] { return k_now; });
}

// Signs arbitrary header and claims JSON with HS256 and `secret`, independently of mint_jwt.
std::string forge(std::string_view header, std::string_view claims, const std::string& secret = k_secret) {
    const auto input = base64url_encode(header) + "." + base64url_encode(claims);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return input + "." + base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

TEST(Jwt, ValidToken_YieldsUserAndExpiry) {
    const auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now);
    const auto result = verifier().verify(token);
    ASSERT_TRUE(result) << to_string(result.error);
    EXPECT_EQ(result.identity.user_id, "alice");
    EXPECT_EQ(result.identity.expires_at, k_now + 60);
}

TEST(Jwt, EachHmacAlgorithm_VerifiesWhenPinned) {
    for (auto alg : {jwt_algorithm::hs256, jwt_algorithm::hs384, jwt_algorithm::hs512}) {
        auto s = settings_with(alg);
        s.secret = std::string(64, 'k');
        const auto token = mint_jwt(s, "bob", std::chrono::seconds(60), k_now);
        EXPECT_TRUE(verifier(s).verify(token)) << to_string(alg);
    }
}

TEST(Jwt, Empty_IsMissing) { EXPECT_EQ(verifier().verify("").error, jwt_error::missing); }

TEST(Jwt, NotThreeParts_IsMalformed) {
    EXPECT_EQ(verifier().verify("abc").error, jwt_error::malformed);
    EXPECT_EQ(verifier().verify("a.b").error, jwt_error::malformed);
    EXPECT_EQ(verifier().verify("a.b.c.d").error, jwt_error::malformed);
}

TEST(Jwt, BadBase64_IsMalformed) { EXPECT_EQ(verifier().verify("a*b.c.d").error, jwt_error::malformed); }

TEST(Jwt, HeaderNotJson_IsMalformed) {
    const auto token = base64url_encode("not json") + "." + base64url_encode("{}") + ".sig";
    EXPECT_EQ(verifier().verify(token).error, jwt_error::malformed);
}

TEST(Jwt, TooLong_IsMalformed) {
    EXPECT_EQ(verifier().verify(std::string(k_max_token_bytes + 1, 'a')).error, jwt_error::malformed);
}

TEST(Jwt, OtherAlgorithm_IsRefusedBeforeSignature) {
    auto s512 = settings_with(jwt_algorithm::hs512);
    s512.secret = k_secret;
    const auto token = mint_jwt(s512, "alice", std::chrono::seconds(60), k_now);
    EXPECT_EQ(verifier().verify(token).error, jwt_error::bad_algorithm);
}

TEST(Jwt, AlgNone_IsRefused) {
    auto token = forge(R"({"alg":"none","typ":"JWT"})", R"({"sub":"alice"})");
    token = token.substr(0, token.rfind('.') + 1);
    EXPECT_EQ(verifier().verify(token).error, jwt_error::bad_algorithm);
}

TEST(Jwt, AsymmetricAlgorithmName_IsRefused) {
    const auto token = forge(R"({"alg":"RS256"})", R"({"sub":"alice"})");
    EXPECT_EQ(verifier().verify(token).error, jwt_error::bad_algorithm);
}

TEST(Jwt, CritHeader_IsRefused) {
    const auto token = forge(R"({"alg":"HS256","crit":["exp"]})", R"({"sub":"alice"})");
    EXPECT_EQ(verifier().verify(token).error, jwt_error::malformed);
}

TEST(Jwt, WrongSecret_IsBadSignature) {
    auto other = settings_with();
    other.secret = std::string(32, 'x');
    const auto token = mint_jwt(other, "alice", std::chrono::seconds(60), k_now);
    EXPECT_EQ(verifier().verify(token).error, jwt_error::bad_signature);
}

TEST(Jwt, TamperedClaims_IsBadSignature) {
    auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now);
    const auto dot1 = token.find('.');
    const auto dot2 = token.find('.', dot1 + 1);
    const auto forged_claims = base64url_encode(R"({"sub":"mallory","exp":1900000000})");
    token = token.substr(0, dot1 + 1) + forged_claims + token.substr(dot2);
    EXPECT_EQ(verifier().verify(token).error, jwt_error::bad_signature);
}

TEST(Jwt, StrippedSignature_IsBadSignature) {
    auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now);
    token = token.substr(0, token.rfind('.') + 1);
    EXPECT_EQ(verifier().verify(token).error, jwt_error::bad_signature);
}

TEST(Jwt, Expired_BeyondLeeway_IsRefused) {
    const auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now - 100);
    EXPECT_EQ(verifier().verify(token).error, jwt_error::expired);
}

TEST(Jwt, Expired_WithinLeeway_IsAccepted) {
    const auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now - 70);
    EXPECT_TRUE(verifier().verify(token));
}

TEST(Jwt, ForgedValidToken_IsAccepted) {
    EXPECT_TRUE(verifier().verify(forge(R"({"alg":"HS256"})", R"({"sub":"alice"})")));
}

TEST(Jwt, NotBefore_BeyondLeeway_IsRefused) {
    const auto claims = R"({"sub":"alice","nbf":)" + std::to_string(k_now + 100) + "}";
    EXPECT_EQ(verifier().verify(forge(R"({"alg":"HS256"})", claims)).error, jwt_error::not_yet_valid);
    const auto close = R"({"sub":"alice","nbf":)" + std::to_string(k_now + 10) + "}";
    EXPECT_TRUE(verifier().verify(forge(R"({"alg":"HS256"})", close)));
}

TEST(Jwt, NonNumericExpiry_IsMalformed) {
    EXPECT_EQ(verifier().verify(forge(R"({"alg":"HS256"})", R"({"sub":"a","exp":"soon"})")).error,
              jwt_error::malformed);
}

TEST(Jwt, ClaimsNotAnObject_IsMalformed) {
    EXPECT_EQ(verifier().verify(forge(R"({"alg":"HS256"})", R"(["sub"])")).error, jwt_error::malformed);
}

TEST(Jwt, SubjectNotAString_IsMissingUser) {
    EXPECT_EQ(verifier().verify(forge(R"({"alg":"HS256"})", R"({"sub":42})")).error, jwt_error::missing_user);
    EXPECT_EQ(verifier().verify(forge(R"({"alg":"HS256"})", R"({"sub":""})")).error, jwt_error::missing_user);
}

TEST(Jwt, NoSubject_IsMissingUser) {
    auto s = settings_with();
    s.user_claim = "uid";
    const auto token = mint_jwt(s, "alice", std::chrono::seconds(60), k_now);  // sets uid, not sub
    EXPECT_EQ(verifier().verify(token).error, jwt_error::missing_user);
    EXPECT_TRUE(verifier(s).verify(token));
}

TEST(Jwt, IssuerAndAudience_AreCheckedWhenConfigured) {
    auto s = settings_with();
    s.issuer = "backend";
    s.audience = "realtime";
    const auto good = mint_jwt(s, "alice", std::chrono::seconds(60), k_now);
    EXPECT_TRUE(verifier(s).verify(good));

    auto wrong_iss = s;
    wrong_iss.issuer = "other";
    EXPECT_EQ(verifier(s).verify(mint_jwt(wrong_iss, "a", std::chrono::seconds(60), k_now)).error,
              jwt_error::bad_issuer);
    auto wrong_aud = s;
    wrong_aud.audience = "other";
    EXPECT_EQ(verifier(s).verify(mint_jwt(wrong_aud, "a", std::chrono::seconds(60), k_now)).error,
              jwt_error::bad_audience);
    // No iss at all while one is required.
    EXPECT_EQ(verifier(s).verify(mint_jwt(settings_with(), "a", std::chrono::seconds(60), k_now)).error,
              jwt_error::bad_issuer);
}

TEST(Jwt, ErrorStrings_NeverEchoTheToken) {
    for (auto e : {jwt_error::missing, jwt_error::malformed, jwt_error::bad_algorithm, jwt_error::bad_signature,
                   jwt_error::expired, jwt_error::not_yet_valid, jwt_error::bad_issuer, jwt_error::bad_audience,
                   jwt_error::missing_user, jwt_error::unknown_key, jwt_error::wrong_user, jwt_error::wrong_channel,
                   jwt_error::missing_expiry}) {
        EXPECT_FALSE(to_string(e).empty());
        EXPECT_LE(to_string(e).size(), 123U) << "fits a close frame reason";
    }
}

TEST(Jwt, ChannelErrorStrings_AreTheDocumentedReasons) {
    EXPECT_EQ(to_string(jwt_error::wrong_user), "token names another user");
    EXPECT_EQ(to_string(jwt_error::wrong_channel), "token names another channel");
    EXPECT_EQ(to_string(jwt_error::missing_expiry), "channel token has no exp");
}

TEST(Jwt, ChannelsClaim_IsReadInOrder) {
    const auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now,
                                {.channels = {"deal:*", "thread:456", "*"}});
    const auto result = verifier().verify(token);
    ASSERT_TRUE(result) << to_string(result.error);
    EXPECT_EQ(result.identity.channels, (std::vector<std::string>{"deal:*", "thread:456", "*"}));
}

TEST(Jwt, ChannelsClaim_ItemsThatAreNotStrings_AreIgnored) {
    const auto result = verifier().verify(
        forge(R"({"alg":"HS256"})", R"({"sub":"alice","channels":["a:1",7,null,true,{"b":"c"},["d:1"],"e:*",1.5]})"));
    ASSERT_TRUE(result) << to_string(result.error);
    EXPECT_EQ(result.identity.channels, (std::vector<std::string>{"a:1", "e:*"}));
}

TEST(Jwt, ChannelsClaim_AbsentOrNotAnArray_IsEmpty) {
    for (const auto* claims : {R"({"sub":"alice"})", R"({"sub":"alice","channels":"deal:*"})",
                               R"({"sub":"alice","channels":{"deal:*":true}})", R"({"sub":"alice","channels":null})",
                               R"({"sub":"alice","channels":[]})"}) {
        const auto result = verifier().verify(forge(R"({"alg":"HS256"})", claims));
        ASSERT_TRUE(result) << claims << ": " << to_string(result.error);
        EXPECT_TRUE(result.identity.channels.empty()) << claims;
    }
}

TEST(Jwt, ChannelsClaim_KeepsAtMost256ItemsOfAtMost255Bytes) {
    std::vector<std::string> items;
    items.push_back(std::string(k_max_claim_channel_bytes + 1, 'x'));  // too long: skipped, not counted
    items.push_back(std::string(k_max_claim_channel_bytes, 'y'));      // the longest kept
    for (int i = 0; i < 300; ++i) items.push_back("c:" + std::to_string(i));
    const auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now, {.channels = items});
    ASSERT_LE(token.size(), k_max_token_bytes);
    const auto result = verifier().verify(token);
    ASSERT_TRUE(result) << to_string(result.error);
    ASSERT_EQ(result.identity.channels.size(), k_max_claim_channels);
    EXPECT_EQ(result.identity.channels.front(), items[1]);
    EXPECT_EQ(result.identity.channels[1], "c:0");
    EXPECT_EQ(result.identity.channels.back(), "c:" + std::to_string(k_max_claim_channels - 2));
}

TEST(Jwt, ChannelToken_ForTheUserAndChannel_IsAccepted) {
    const auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now, {.channel = "deal:123"});
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", "deal:123"), jwt_error::none);
    // Still a token like any other: verify accepts it too.
    EXPECT_TRUE(verifier().verify(token));
}

TEST(Jwt, ChannelToken_ForAnotherUser_IsWrongUser) {
    const auto token = mint_jwt(settings_with(), "bob", std::chrono::seconds(60), k_now, {.channel = "deal:123"});
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", "deal:123"), jwt_error::wrong_user);
}

TEST(Jwt, ChannelToken_ForAnotherChannel_IsWrongChannel) {
    const auto token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now, {.channel = "deal:123"});
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", "deal:1234"), jwt_error::wrong_channel);
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", "deal:12"), jwt_error::wrong_channel);
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", ""), jwt_error::wrong_channel);
    // A connection token (no channel claim), a channel claim that is not a string, an empty one.
    const auto connection_token = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now);
    EXPECT_EQ(verifier().verify_channel_token(connection_token, "alice", "deal:123"), jwt_error::wrong_channel);
    const auto exp = std::to_string(k_now + 60);
    EXPECT_EQ(verifier().verify_channel_token(
                  forge(R"({"alg":"HS256"})", R"({"sub":"alice","channel":["deal:123"],"exp":)" + exp + "}"), "alice",
                  "deal:123"),
              jwt_error::wrong_channel);
    EXPECT_EQ(verifier().verify_channel_token(
                  forge(R"({"alg":"HS256"})", R"({"sub":"alice","channel":"","exp":)" + exp + "}"), "alice", ""),
              jwt_error::wrong_channel);
    // A channels claim is no channel token.
    const auto granted =
        mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now, {.channels = {"deal:123"}});
    EXPECT_EQ(verifier().verify_channel_token(granted, "alice", "deal:123"), jwt_error::wrong_channel);
}

TEST(Jwt, ChannelToken_WithoutExp_IsMissingExpiry) {
    const auto token = forge(R"({"alg":"HS256"})", R"({"sub":"alice","channel":"deal:123"})");
    EXPECT_TRUE(verifier().verify(token)) << "a connection token may go without exp";
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", "deal:123"), jwt_error::missing_expiry);
    const auto with_exp =
        forge(R"({"alg":"HS256"})", R"({"sub":"alice","channel":"deal:123","exp":)" + std::to_string(k_now + 60) + "}");
    EXPECT_EQ(verifier().verify_channel_token(with_exp, "alice", "deal:123"), jwt_error::none);
}

TEST(Jwt, ChannelToken_Expired_IsRefused) {
    const auto token =
        mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now - 100, {.channel = "deal:123"});
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", "deal:123"), jwt_error::expired);
    const auto within_leeway =
        mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now - 70, {.channel = "deal:123"});
    EXPECT_EQ(verifier().verify_channel_token(within_leeway, "alice", "deal:123"), jwt_error::none);
}

TEST(Jwt, ChannelToken_BadSignature_IsRefused) {
    auto other = settings_with();
    other.secret = std::string(32, 'x');
    const auto token = mint_jwt(other, "alice", std::chrono::seconds(60), k_now, {.channel = "deal:123"});
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", "deal:123"), jwt_error::bad_signature);
    // The claims changed after signing (another channel swapped in).
    auto good = mint_jwt(settings_with(), "alice", std::chrono::seconds(60), k_now, {.channel = "deal:123"});
    const auto dot1 = good.find('.');
    const auto dot2 = good.find('.', dot1 + 1);
    const auto forged =
        good.substr(0, dot1 + 1) +
        base64url_encode(R"({"sub":"alice","channel":"deal:999","exp":)" + std::to_string(k_now + 60) + "}") +
        good.substr(dot2);
    EXPECT_EQ(verifier().verify_channel_token(forged, "alice", "deal:999"), jwt_error::bad_signature);
}

TEST(Jwt, ChannelToken_OtherAlgorithm_IsRefused) {
    auto s512 = settings_with(jwt_algorithm::hs512);
    const auto token = mint_jwt(s512, "alice", std::chrono::seconds(60), k_now, {.channel = "deal:123"});
    EXPECT_EQ(verifier().verify_channel_token(token, "alice", "deal:123"), jwt_error::bad_algorithm);
    auto none =
        forge(R"({"alg":"none"})", R"({"sub":"alice","channel":"deal:123","exp":)" + std::to_string(k_now + 60) + "}");
    none = none.substr(0, none.rfind('.') + 1);
    EXPECT_EQ(verifier().verify_channel_token(none, "alice", "deal:123"), jwt_error::bad_algorithm);
}

TEST(Jwt, ChannelToken_IssuerAudienceAndUserClaim_AreThoseOfConnectionTokens) {
    auto s = settings_with();
    s.issuer = "backend";
    s.audience = "realtime";
    s.user_claim = "uid";
    const auto good = mint_jwt(s, "alice", std::chrono::seconds(60), k_now, {.channel = "deal:1"});
    EXPECT_EQ(verifier(s).verify_channel_token(good, "alice", "deal:1"), jwt_error::none);
    auto wrong_iss = s;
    wrong_iss.issuer = "other";
    EXPECT_EQ(
        verifier(s).verify_channel_token(
            mint_jwt(wrong_iss, "alice", std::chrono::seconds(60), k_now, {.channel = "deal:1"}), "alice", "deal:1"),
        jwt_error::bad_issuer);
    auto wrong_aud = s;
    wrong_aud.audience = "other";
    EXPECT_EQ(
        verifier(s).verify_channel_token(
            mint_jwt(wrong_aud, "alice", std::chrono::seconds(60), k_now, {.channel = "deal:1"}), "alice", "deal:1"),
        jwt_error::bad_audience);
    auto sub_claim = s;
    sub_claim.user_claim = "sub";  // names alice in `sub`, not in `uid`
    EXPECT_EQ(
        verifier(s).verify_channel_token(
            mint_jwt(sub_claim, "alice", std::chrono::seconds(60), k_now, {.channel = "deal:1"}), "alice", "deal:1"),
        jwt_error::missing_user);
}

TEST(Jwt, ParseAlgorithm_KnowsOnlyHmac) {
    EXPECT_EQ(parse_jwt_algorithm("HS384"), jwt_algorithm::hs384);
    EXPECT_FALSE(parse_jwt_algorithm("none"));
    EXPECT_FALSE(parse_jwt_algorithm("hs256"));
    EXPECT_FALSE(parse_jwt_algorithm("RS256"));
}

}  // namespace
}  // namespace zena::auth
