// libFuzzer: the body of a server API publish (api/server_api): /api/broadcast,
// /api/broadcast-all and /api/batch, and the same bytes as a Redis publish message. Parsing,
// catalog validation and delivery to an in-memory hub must hold for any body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/server_api.hpp"
#include "hub/hub_set.hpp"

namespace {

struct fixture {
    fixture()
        : hubs({[](zena::hub::hub_set::task t) { t(); }}, registry),
          catalog([] {
              std::string error;
              return *zena::protocol::catalog::parse(zena::protocol::builtin_catalog_json(), error);
          }()),
          api(hubs, metrics, catalog, "fuzz-api-key-0123456789", zena::api::api_limits{100, false, 100}) {}

    zena::hub::user_registry registry;
    zena::hub::hub_set hubs;
    zena::observability::metrics metrics;
    zena::protocol::catalog catalog;
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
    bool done = false;
    f.api.publish_message(
        body, [](const zena::api::http_response&) {}, [&] { done = true; });
    if (!done) __builtin_trap();
    return 0;
}
