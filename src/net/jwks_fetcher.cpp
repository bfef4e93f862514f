#include "net/jwks_fetcher.hpp"

#include <functional>
#include <future>

#include "observability/log.hpp"
#include "upstream/http_client.hpp"
#include "util/url.hpp"

namespace zena::net {

namespace {

// A JWKS is a few KiB; a larger answer is not a key set.
constexpr std::size_t k_max_jwks_bytes = 1024 * 1024;

}  // namespace

struct jwks_fetcher::impl {
    impl(jwks_fetch_settings s, const auth::jwt_verifier& v)
        : settings(std::move(s)),
          verifier(v),
          client(upstream::http_client_settings{.ca_file = settings.ca_file,
                                                .max_in_flight = 1,
                                                .max_queue = 1,
                                                .max_response_bytes = k_max_jwks_bytes,
                                                .max_idle_per_origin = 1}) {}

    ~impl() {
        // Set on the client's thread before it answers a fetch on the wire "stopped", so that
        // answer is not logged as a failed refresh.
        client.post([this] { closing = true; });
        client.stop();
    }

    // One GET; calls done on the client's thread, after installing the keys on success.
    void fetch(std::function<void(const util::status&)> done) {
        upstream::http_request request{.method = upstream::http_method::get,
                                       .url = settings.url,
                                       .headers = {{"Accept", "application/json"}},
                                       .timeout = settings.timeout};
        client.send(std::move(request),
                    [this, done = std::move(done)](const upstream::http_result& answer) { done(install(answer)); });
    }

    util::status install(const upstream::http_result& answer) const {
        if (!answer) return util::error{answer.message()};
        if (answer->status != 200) return util::error{"status " + std::to_string(answer->status)};
        std::string error;
        auto keys = auth::key_set::parse(answer->body, error);
        if (!keys) return util::error{"the JWKS does not load: " + error};
        const auto count = keys->size();
        verifier.set_keys(std::make_shared<const auth::key_set>(std::move(*keys)));
        spdlog::info("jwks fetched url={} keys={}", util::to_string(settings.url), count);
        return {};
    }

    void schedule() {
        client.after(settings.refresh, [this] {
            fetch([this](const util::status& fetched) {
                if (closing) return;
                if (!fetched) {
                    spdlog::warn("jwks refresh failed, keeping the keys in use url={} error=\"{}\"",
                                 util::to_string(settings.url), fetched.message());
                }
                schedule();
            });
        });
    }

    jwks_fetch_settings settings;
    const auth::jwt_verifier& verifier;
    bool closing = false;          // the client's thread only
    upstream::http_client client;  // last: its thread stops before the members its callbacks use go
};

jwks_fetcher::jwks_fetcher(jwks_fetch_settings settings, const auth::jwt_verifier& verifier)
    : impl_(std::make_unique<impl>(std::move(settings), verifier)) {}

jwks_fetcher::~jwks_fetcher() = default;

util::status jwks_fetcher::start() {
    std::promise<util::status> first;
    auto result = first.get_future();
    impl_->client.post([i = impl_.get(), &first] {
        i->fetch([i, &first](const util::status& fetched) {
            first.set_value(fetched);
            i->schedule();
        });
    });
    return result.get();
}

}  // namespace zena::net
