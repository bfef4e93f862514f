// libFuzzer: the body of a server API publish (api/server_api): /api/broadcast,
// /api/broadcast-all, /api/publish and /api/batch, and the same bytes as a Redis publish message.
// Parsing, catalog validation and delivery to an in-memory hub must hold for any body, and so
// must the second scan that names the field of a number the parser cannot hold; each user and
// channel route with the input as its percent-encoded user id or channel, and the input as the
// query of /api/presence and of a channel's history, too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/readiness.hpp"
#include "api/server_api.hpp"
#include "engine/memory/memory_broker.hpp"
#include "engine/memory/memory_history.hpp"
#include "engine/memory/memory_presence.hpp"
#include "hub/hub_set.hpp"
#include "session/user_presence.hpp"

namespace {

struct fixture {
    fixture()
        : hubs({[](zena::hub::hub_set::task t) { t(); }}, registry),
          catalog([] {
              std::string error;
              return *zena::protocol::catalog::parse(zena::protocol::builtin_catalog_json(), error);
          }()),
          broker(hubs, history),
          users_online([](std::chrono::milliseconds, const std::function<void()>&) {}, std::chrono::milliseconds(0),
                       {}),
          api(broker, hubs, metrics, catalog, "fuzz-api-key-0123456789", zena::api::api_limits{100, false, 100}, ready,
              zena::api::api_channels{history,
                                      [](std::string_view) {
                                          return std::optional<zena::engine::history_limits>{
                                              zena::engine::history_limits{10, std::chrono::hours(1)}};
                                      },
                                      [](std::string_view, const std::string&) {}},
              zena::api::api_presence{presence, users_online, 100}) {}

    zena::hub::user_registry registry;
    zena::hub::hub_set hubs;
    zena::observability::metrics metrics;
    zena::protocol::catalog catalog;
    zena::engine::memory_history history;
    zena::engine::memory_broker broker;
    zena::engine::memory_presence presence;
    zena::session::user_presence users_online;
    zena::api::readiness ready;
    zena::api::server_api api;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fixture f;
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    for (const char* target : {"/api/broadcast", "/api/broadcast-all", "/api/publish", "/api/batch"}) {
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
    const auto call = [&](const char* method, const std::string& target, std::string_view request_body) {
        bool answered = false;
        f.api.handle({method, target, "Bearer fuzz-api-key-0123456789", request_body}, [&](zena::api::http_response r) {
            answered = true;
            if (r.status != 200 && r.status != 400 && r.status != 404 && r.status != 405) __builtin_trap();
        });
        if (!answered) __builtin_trap();
    };
    for (const auto& segment : {std::string{body.substr(0, 512)}, encoded}) {
        for (const char* method : {"GET", "DELETE"}) call(method, "/api/users/" + segment + "/connections", {});
        call("POST", "/api/users/" + segment + "/subscriptions", R"({"channel":"deal:1"})");
        call("DELETE", "/api/users/u/subscriptions/" + segment, {});
        call("GET", "/api/channels/" + segment + "/history", {});
        call("GET", "/api/channels/" + segment + "/presence", {});
    }
    const std::string query{body.substr(0, 2048)};
    call("GET", "/api/presence?userIds=" + query, {});
    call("GET", "/api/channels/deal:1/history?" + query, {});
    call("POST", "/api/users/u/subscriptions", body);
    bool done = false;
    f.api.publish_message(
        body, [](const zena::api::http_response&) {}, [&] { done = true; });
    if (!done) __builtin_trap();
    return 0;
}
