#pragma once
// Dev mode's credentials: a JWT secret and an API key generated once and kept in a file (mode
// 0600) so that the server and `zena-realtime token` agree, and tokens survive a restart.

#include <string>

#include "util/result.hpp"

namespace zena::config {

struct dev_credentials {
    std::string jwt_secret;
    std::string api_key;
    bool created = false;
};

// Reads `path`, or creates it with fresh random values when it does not exist.
util::result<dev_credentials> load_or_create_dev_credentials(const std::string& path);

// `bytes` random bytes from the OS CSPRNG, hex-encoded.
std::string random_hex(std::size_t bytes);

}  // namespace zena::config

namespace zena::config {

struct settings;

// In dev mode, fills jwt_secret and api_key from the dev state file where they are not set
// (creating the file on first use). `created` tells whether the file was new.
util::status apply_dev_credentials(settings& s, bool* created = nullptr);

}  // namespace zena::config
