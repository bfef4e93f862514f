#include "upstream/webhook_body.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctime>

#include "protocol/json_writer.hpp"

namespace zena::upstream {

std::string client_event_body(std::string_view user_id, std::uint64_t connection_id, std::string_view type,
                              std::string_view payload_json, std::int64_t received_at_ms) {
    const std::time_t seconds = received_at_ms / 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[32];
    const auto n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    std::string received_at(stamp, n);
    char millis[8];
    (void)std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(received_at_ms % 1000));
    received_at += millis;
    return protocol::json_object()
        .add("userId", user_id)
        .add("connectionId", std::to_string(connection_id))
        .add("type", type)
        .add_raw("payload", payload_json)
        .add("receivedAt", received_at)
        .str();
}

std::string webhook_signature(std::string_view secret, std::string_view body) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out = "sha256=";
    for (unsigned int i = 0; i < len; ++i) {
        out += k_hex[mac[i] >> 4];
        out += k_hex[mac[i] & 0xF];
    }
    return out;
}

}  // namespace zena::upstream
