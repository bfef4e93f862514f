// libFuzzer: the body of a server API publish (api/server_api): /api/broadcast,
// /api/broadcast-all and /api/batch, and the same bytes as a Redis publish message. Parsing,
// catalog validation and delivery to an in-memory hub must hold for any body, and so must the
// second scan that names the field of a number the parser cannot hold; each user route with the
// input as its percent-encoded user id too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/readiness.hpp"
#include "api/server_api.hpp"
#include "engine/memory/memory_broker.hpp"
#include "engine/memory/memory_history.hpp"
#include "hub/hub_set.hpp"

namespace {

struct fixture {
    fixture()
        : hubs({[](zena::hub::hub_set::task t) { t(); }}, registry),
          catalog([] {
              std::string error;
              return *zena::protocol::catalog::parse(zena::protocol::builtin_catalog_json(), error);
          }()),
          broker(hubs, history),
          api(broker, hubs, metrics, catalog, "fuzz-api-key-0123456789", zena::api::api_limits{100, false, 100},
              ready) {}

    zena::hub::user_registry registry;
    zena::hub::hub_set hubs;
    zena::observability::metrics metrics;
    zena::protocol::catalog catalog;
    zena::engine::memory_history history;
    zena::engine::memory_broker broker;
    zena::api::readiness ready;
    zena::api::server_api api;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fixture f;
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    for (const char* target : {"/api/broadcast", "/api/broadcast-all", "/api/batch"}) {
        bool answered = false;
        f.api.handle({"POST", target, "Bearer fuzz-api-key-0123456789", body}, [&](zena::api::http_response r) {
            answered = true;
            if (r.status < 200 || r.status > 599 || r.body.empty()) __builtin_trap();
        });
        if (!answered) __builtin_trap();  // the hub set runs tasks inline: every call answers
    }
    // The input as a user id in the path: raw (its '/' split segments) and percent-encoded
    // (one segment, whatever it holds).
    std::string encoded;
    for (const unsigned char c : body.substr(0, 512)) {
        static constexpr char k_hex[] = "0123456789ABCDEF";
        encoded += '%';
        encoded += k_hex[c >> 4];
        encoded += k_hex[c & 15];
    }
    for (const auto& user : {std::string{body.substr(0, 512)}, encoded}) {
        for (const char* method : {"GET", "DELETE"}) {
            const auto target = "/api/users/" + user + "/connections";
            bool answered = false;
            f.api.handle({method, target, "Bearer fuzz-api-key-0123456789", {}}, [&](zena::api::http_response r) {
                answered = true;
                if (r.status != 200 && r.status != 400 && r.status != 404) __builtin_trap();
            });
            if (!answered) __builtin_trap();
        }
    }
    bool done = false;
    f.api.publish_message(
        body, [](const zena::api::http_response&) {}, [&] { done = true; });
    if (!done) __builtin_trap();
    return 0;
}
