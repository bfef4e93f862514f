#include "auth/jwks.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <fstream>
#include <sstream>

#include "auth/base64url.hpp"
#include "protocol/json_reader.hpp"

namespace zena::auth {
namespace {

using pkey_ptr = std::shared_ptr<evp_pkey_st>;

pkey_ptr own(EVP_PKEY* p) { return pkey_ptr(p, EVP_PKEY_free); }

struct bn_deleter {
    void operator()(BIGNUM* b) const { BN_free(b); }
};
using bn_ptr = std::unique_ptr<BIGNUM, bn_deleter>;

// A public key from OpenSSL parameters (the OpenSSL 3 way, no deprecated RSA/EC_KEY calls).
pkey_ptr from_params(const char* type, OSSL_PARAM_BLD* bld) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    EVP_PKEY* pkey = nullptr;
    if (ctx && params && EVP_PKEY_fromdata_init(ctx) == 1) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey ? own(pkey) : nullptr;
}

pkey_ptr rsa_key(const std::string& n, const std::string& e) {
    bn_ptr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr));
    bn_ptr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr));
    if (!bn_n || !bn_e) return nullptr;
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    pkey_ptr out;
    if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1) {
        out = from_params("RSA", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    return out;
}

pkey_ptr p256_key(const std::string& x, const std::string& y) {
    if (x.size() != 32 || y.size() != 32) return nullptr;
    std::string point = "\x04" + x + y;  // uncompressed
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    pkey_ptr out;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1) {
        out = from_params("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    // fromdata does not check that the point is on the curve: do it, or a bad key loads.
    if (out) {
        EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, out.get(), nullptr);
        const bool on_curve = check && EVP_PKEY_public_check(check) == 1;
        EVP_PKEY_CTX_free(check);
        if (!on_curve) out.reset();
    }
    return out;
}

pkey_ptr ed25519_key(const std::string& x) {
    if (x.size() != 32) return nullptr;
    EVP_PKEY* p =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), 32);
    return p ? own(p) : nullptr;
}

// The JWS ES256 signature (r||s, 32 bytes each) as the DER that OpenSSL verifies.
std::string es256_der(std::string_view raw) {
    if (raw.size() != 64) return {};
    ECDSA_SIG* sig = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
    std::string out;
    if (sig && r && s && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = nullptr;  // owned by sig now
        unsigned char* der = nullptr;
        const int len = i2d_ECDSA_SIG(sig, &der);
        if (len > 0) out.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
        OPENSSL_free(der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return out;
}

std::optional<std::string> member(simdjson::dom::object o, std::string_view name) {
    std::string_view text;
    if (o[name].get_string().get(text) != simdjson::SUCCESS) return std::nullopt;
    return std::string{text};
}

}  // namespace

std::string_view to_string(jwk_algorithm alg) {
    switch (alg) {
        case jwk_algorithm::rs256: return "RS256";
        case jwk_algorithm::es256: return "ES256";
        case jwk_algorithm::eddsa: return "EdDSA";
    }
    return "RS256";
}

std::optional<key_set> key_set::parse(std::string_view json, std::string& error) {
    simdjson::dom::parser parser;  // not the thread's: keys are loaded at start or on a refresh
    simdjson::dom::array keys;
    if (parser.parse(json.data(), json.size()).get_object()["keys"].get_array().get(keys) != simdjson::SUCCESS) {
        error = "not a JWKS: expected {\"keys\": [...]}";
        return std::nullopt;
    }
    key_set out;
    std::size_t index = 0;
    for (simdjson::dom::element item : keys) {
        const auto where = "keys[" + std::to_string(index++) + "]";
        simdjson::dom::object k;
        if (item.get_object().get(k) != simdjson::SUCCESS) {
            error = where + ": not an object";
            return std::nullopt;
        }
        const auto use = member(k, "use");
        if (use && *use != "sig") continue;  // encryption keys are not for us
        const auto kty = member(k, "kty").value_or("");
        const auto kid = member(k, "kid").value_or("");
        const auto alg = member(k, "alg");
        const auto b64 = [&](std::string_view name) { return base64url_decode(member(k, name).value_or("")); };
        key parsed{kid, jwk_algorithm::rs256, nullptr};
        if (kty == "RSA") {
            const auto n = b64("n");
            const auto e = b64("e");
            if (!n || !e || n->empty() || e->empty()) {
                error = where + ": RSA key needs n and e in base64url";
                return std::nullopt;
            }
            parsed.pkey = rsa_key(*n, *e);
            if (parsed.pkey && EVP_PKEY_get_bits(parsed.pkey.get()) < 2048) {
                error = where + ": RSA keys must have at least 2048 bits";
                return std::nullopt;
            }
        } else if (kty == "EC" && member(k, "crv").value_or("") == "P-256") {
            parsed.alg = jwk_algorithm::es256;
            const auto x = b64("x");
            const auto y = b64("y");
            if (x && y) parsed.pkey = p256_key(*x, *y);
        } else if (kty == "OKP" && member(k, "crv").value_or("") == "Ed25519") {
            parsed.alg = jwk_algorithm::eddsa;
            if (const auto x = b64("x")) parsed.pkey = ed25519_key(*x);
        } else {
            error = where + ": unsupported key (RSA, EC P-256 and OKP Ed25519 are)";
            return std::nullopt;
        }
        if (!parsed.pkey) {
            error = where + ": the key's numbers do not make a valid " + std::string{to_string(parsed.alg)} + " key";
            return std::nullopt;
        }
        if (alg && *alg != to_string(parsed.alg)) {
            error = where + ": alg " + *alg + " does not fit a " + kty + " key (" + std::string{to_string(parsed.alg)} +
                    ")";
            return std::nullopt;
        }
        for (const auto& existing : out.keys_) {
            if (existing.kid == kid) {
                error = where + ": kid '" + kid + "' is used twice";
                return std::nullopt;
            }
        }
        out.keys_.push_back(std::move(parsed));
    }
    if (out.keys_.empty()) {
        error = "the JWKS holds no signing key";
        return std::nullopt;
    }
    return out;
}

std::optional<key_set> key_set::load_file(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read " + path;
        return std::nullopt;
    }
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = parse(text.str(), error);
    if (!parsed) error = path + ": " + error;
    return parsed;
}

const key_set::key* key_set::find(std::string_view kid) const {
    if (kid.empty()) return keys_.size() == 1 ? &keys_.front() : nullptr;
    for (const auto& k : keys_) {
        if (k.kid == kid) return &k;
    }
    return nullptr;
}

bool key_set::verify(const key& k, std::string_view signing_input, std::string_view signature) {
    std::string der;
    const EVP_MD* md = EVP_sha256();
    if (k.alg == jwk_algorithm::es256) {
        der = es256_der(signature);
        if (der.empty()) return false;
        signature = der;
    } else if (k.alg == jwk_algorithm::eddsa) {
        md = nullptr;  // Ed25519 hashes itself
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok =
        ctx && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, k.pkey.get()) == 1 &&
        EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                         reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

}  // namespace zena::auth
