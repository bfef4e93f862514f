#include "config/dev_credentials.hpp"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <array>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <toml++/toml.h>

namespace zena::config {

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) throw std::runtime_error("RAND_bytes failed");
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes * 2);
    for (const unsigned char b : raw) {
        out += k_hex[b >> 4];
        out += k_hex[b & 0xF];
    }
    return out;
}

util::result<dev_credentials> load_or_create_dev_credentials(const std::string& path) {
    dev_credentials creds;
    if (std::ifstream existing{path}) {
        try {
            const auto table = toml::parse_file(path);
            creds.jwt_secret = table["jwt_secret"].value_or(std::string{});
            creds.api_key = table["api_key"].value_or(std::string{});
        } catch (const toml::parse_error& e) {
            return util::error{"dev state file " + path + ": " + std::string{e.description()}};
        }
        if (creds.jwt_secret.size() < 32 || creds.api_key.size() < 16) {
            return util::error{"dev state file " + path + " lacks jwt_secret or api_key; delete it to regenerate"};
        }
        return creds;
    }
    creds.jwt_secret = random_hex(32);
    creds.api_key = "dev_" + random_hex(16);
    creds.created = true;
    std::ofstream out{path, std::ios::trunc};
    if (!out) return util::error{"cannot write dev state file " + path};
    ::chmod(path.c_str(), S_IRUSR | S_IWUSR);
    out << "# zena-realtime dev mode credentials. Never use these in production.\n"
        << "jwt_secret = \"" << creds.jwt_secret << "\"\n"
        << "api_key = \"" << creds.api_key << "\"\n";
    return creds;
}

}  // namespace zena::config

#include "config/settings.hpp"

namespace zena::config {

util::status apply_dev_credentials(settings& s, bool* created) {
    if (!s.jwt_secret.empty() && !s.api_key.empty()) return {};
    auto creds = load_or_create_dev_credentials(s.dev_state_file);
    if (!creds) return creds.failure();
    if (s.jwt_secret.empty()) s.jwt_secret = creds->jwt_secret;
    if (s.api_key.empty()) s.api_key = creds->api_key;
    if (created) *created = creds->created;
    return {};
}

}  // namespace zena::config
