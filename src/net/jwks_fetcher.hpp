#pragma once
// Keeps the verifier's public keys current from auth.jwks_url: fetched once at start (start()
// says whether it worked; the server does not start without keys), then again every
// auth.jwks_refresh_s. A refresh that fails (network, status, a set that does not parse) is
// logged and the keys in use stay. Fetched with an http_client of its own
// (upstream/http_client.hpp): https is verified against the system's certificates, or `ca_file`,
// with the host name checked; redirects are not followed; a set is read up to 1 MiB.
//
// Threading: runs on its client's thread; the verifier's set_keys is thread-safe. The socket
// loops never wait for a fetch.

#include <chrono>
#include <memory>
#include <string>

#include "auth/jwt.hpp"
#include "util/result.hpp"
#include "util/url.hpp"

namespace zena::net {

struct jwks_fetch_settings {
    util::http_url url;
    std::chrono::seconds refresh{300};
    std::string ca_file;  // PEM certificates trusted for https; empty: the system's store
    std::chrono::milliseconds timeout{10000};
};

class jwks_fetcher {
public:
    jwks_fetcher(jwks_fetch_settings settings, const auth::jwt_verifier& verifier);
    ~jwks_fetcher();
    jwks_fetcher(const jwks_fetcher&) = delete;
    jwks_fetcher& operator=(const jwks_fetcher&) = delete;

    // The first fetch, waited for; then the refresh timer starts.
    util::status start();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace zena::net
