#include "auth/jwks.hpp"

#include <gtest/gtest.h>

namespace zena::auth {
namespace {

// An Ed25519 public key (RFC 8037 appendix A.2).
constexpr std::string_view k_ed_x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

std::string ed_jwk(std::string_view kid, std::string_view extra = "") {
    return R"({"kty":"OKP","crv":"Ed25519","kid":")" + std::string{kid} + R"(","x":")" + std::string{k_ed_x} + "\"" +
           std::string{extra} + "}";
}

TEST(KeySet, Ed25519Key_LoadsAndIsFoundByKid) {
    std::string error;
    const auto set =
        key_set::parse(R"({"keys":[)" + ed_jwk("a") + "," + ed_jwk("b", R"(,"alg":"EdDSA")") + "]}", error);
    ASSERT_TRUE(set) << error;
    EXPECT_EQ(set->size(), 2U);
    ASSERT_NE(set->find("b"), nullptr);
    EXPECT_EQ(set->find("b")->alg, jwk_algorithm::eddsa);
    EXPECT_EQ(set->find("c"), nullptr);
    EXPECT_EQ(set->find(""), nullptr) << "no kid with two keys: which one?";
}

TEST(KeySet, OneKey_IsFoundWithoutKid) {
    std::string error;
    const auto set = key_set::parse(R"({"keys":[)" + ed_jwk("only") + "]}", error);
    ASSERT_TRUE(set) << error;
    EXPECT_NE(set->find(""), nullptr);
}

TEST(KeySet, EncryptionKeys_AreSkipped) {
    std::string error;
    EXPECT_FALSE(key_set::parse(R"({"keys":[)" + ed_jwk("e", R"(,"use":"enc")") + "]}", error));
    EXPECT_NE(error.find("no signing key"), std::string::npos);
}

TEST(KeySet, UnusableSets_AreRefusedWithTheReason) {
    const std::pair<std::string, std::string> cases[] = {
        {"[]", "not a JWKS"},
        {R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})", "unsupported key"},
        {R"({"keys":[)" + ed_jwk("a", R"(,"alg":"RS256")") + "]}", "does not fit"},
        {R"({"keys":[)" + ed_jwk("a") + "," + ed_jwk("a") + "]}", "used twice"},
        {R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"tooshort"}]})", "valid EdDSA key"},
        {R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]})", "valid ES256 key"},
        {R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})", "at least 2048 bits"},
        {R"({"keys":[{"kty":"RSA","e":"AQAB"}]})", "needs n and e"},
    };
    for (const auto& [json, reason] : cases) {
        std::string error;
        EXPECT_FALSE(key_set::parse(json, error)) << json;
        EXPECT_NE(error.find(reason), std::string::npos) << json << " -> " << error;
    }
}

TEST(KeySet, Verify_RefusesAWrongSignatureOfAnySize) {
    std::string error;
    const auto set = key_set::parse(R"({"keys":[)" + ed_jwk("a") + "]}", error);
    ASSERT_TRUE(set);
    const auto& k = *set->find("a");
    EXPECT_FALSE(key_set::verify(k, "header.claims", ""));
    EXPECT_FALSE(key_set::verify(k, "header.claims", std::string(64, 'x')));
    EXPECT_FALSE(key_set::verify(k, "header.claims", std::string(1000, 'x')));
}

}  // namespace
}  // namespace zena::auth
