#pragma once
// The page at / (docs/admin.md): its embedded files, its login and sessions, and the JSON routes
// under /admin/api/ that the page calls: the session, the catalog as a form can use it, a dev
// token, a publish, and the live numbers. Transport-free like the server API: the HTTP session
// hands it a parsed request and writes whatever it answers; the live view's WebSocket
// (net/admin_live) asks it for each snapshot.
//
// Access: in dev mode open (a session is made for whoever loads the page); otherwise only with
// admin.enabled, behind admin.password; else every route answers 404, as if there were no page.
// Every state-changing request (POST) must come from the page itself: its Origin must name the
// Host it was sent to, and but for the login it must carry the session's CSRF token in
// X-Zena-CSRF (a header no other site can set without a CORS preflight, which is never granted).
// The session cookie is HttpOnly and SameSite=Strict. The page never sees the API key: a publish
// from it runs server_api's own /api/broadcast, with the key added here.
//
// Threading: `handle` and `snapshot` may be called from any event-loop thread, concurrently; the
// sessions and the login budget are behind one mutex (touched once per request). `reply` and
// `done` are called exactly once, on the calling thread or, for a publish or a snapshot, on
// another event-loop thread: the caller hops back to its own.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/server_api.hpp"
#include "engine/cluster.hpp"
#include "hub/hub_set.hpp"
#include "observability/metrics.hpp"
#include "protocol/catalog.hpp"
#include "util/token_bucket.hpp"

namespace zena::admin {

// What the console reads of an HTTP request.
struct request {
    std::string_view method;
    std::string_view target;  // path and query
    std::string_view cookie;  // the Cookie header
    std::string_view origin;  // the Origin header; empty when absent
    std::string_view host;    // the Host header
    std::string_view csrf;    // the X-Zena-CSRF header
    std::string_view body;
};

struct response {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;  // Set-Cookie, security headers
};

struct console_settings {
    bool dev = false;      // dev mode: open, and tokens are minted for a user name
    bool enabled = false;  // admin.enabled: served outside dev mode, behind `password`
    std::string password;
    bool secure_cookie = false;  // the listener speaks TLS: the cookie gets Secure
    std::chrono::seconds session_ttl{28800};
    std::size_t max_sessions = 32;
    double login_attempts_per_minute = 10;
    std::string node;  // this node's name in the live view
    // The deployment's other nodes (engine.type = redis), listed under this one; null: none.
    engine::cluster* cluster = nullptr;
};

// Signs a token for a user with channel grants (dev mode's secret), valid an hour; empty: tokens
// are not minted here.
using mint_fn = std::function<std::string(std::string_view user, const std::vector<std::string>& channels)>;

// The path of the live view's WebSocket.
inline constexpr std::string_view k_live_path = "/admin/live";
// The cookie that holds an admin session's id.
inline constexpr std::string_view k_cookie = "zena_admin";

class console {
public:
    // `api` runs the page's publishes with `api_key`; `hubs` and `metrics` give the live numbers.
    // Each must outlive the console. `now_ms`: a monotonic clock (tests pass their own).
    console(console_settings settings, api::server_api& api, const std::string& api_key, hub::hub_set& hubs,
            observability::metrics& metrics, const protocol::catalog& catalog, mint_fn mint,
            std::function<std::int64_t()> now_ms);

    // True when the page is served at all (dev mode, or admin.enabled).
    bool serves() const { return settings_.dev || settings_.enabled; }
    // The paths the console answers: / and /admin/...; the others are not its business.
    static bool owns(std::string_view path) { return path == "/" || path.starts_with("/admin/"); }

    void handle(const request& request, std::function<void(response)> reply);

    // Whether `request`, an upgrade to k_live_path, may have the live view: nullopt when it may,
    // else the answer to refuse it with (404 when not served, 403 for another origin, 401 without
    // a session).
    std::optional<response> refuse_live(const request& request);

    // The live numbers as JSON (docs/admin.md): totals and rates, each thread's connections, and
    // each node's figures. Sampled at most every 250 ms; a call sooner gets the last sample.
    void snapshot(std::function<void(std::string json)> done);

    // The catalog as the page builds its forms from it (fields, types, enums, required).
    static std::string catalog_json(const protocol::catalog& catalog);

private:
    // The other nodes' rows of the live view, from the cluster's registry (refreshed by each
    // snapshot, used by the next one); under mutex_.
    std::string others_;

    struct session {
        std::string csrf;
        std::int64_t expires_ms;
        std::int64_t created_ms;
    };
    // The session named by the request's cookie, if live (expired ones are dropped).
    const session* find_session(std::string_view cookie);
    // A new session: its id goes in the cookie. Past max_sessions the oldest goes.
    std::pair<std::string, const session*> create_session();
    std::string cookie_header(std::string_view id, std::chrono::seconds max_age) const;
    void login(const request& request, const std::function<void(response)>& reply);
    void session_info(const request& request, const std::function<void(response)>& reply);
    void mint(const request& request, const std::function<void(response)>& reply) const;
    void publish(const request& request, std::function<void(response)> reply);
    static response page(std::string_view path);

    console_settings settings_;
    api::server_api& api_;
    std::string authorization_;  // "Bearer <api key>", for the page's publishes
    hub::hub_set& hubs_;
    observability::metrics& metrics_;
    std::string catalog_json_;  // rendered once: the catalog does not change while running
    mint_fn mint_;
    std::function<std::int64_t()> now_ms_;

    std::mutex mutex_;  // guards what follows
    std::map<std::string, session, std::less<>> sessions_;
    util::token_rate login_rate_;
    util::token_bucket login_attempts_;
    struct thread_figures {
        std::size_t connections = 0;
        std::uint64_t delivered = 0;  // hub::delivered()
    };
    struct sample {
        std::int64_t at_ms = -1;
        std::uint64_t delivered = 0;
        std::uint64_t published = 0;
        std::vector<std::uint64_t> threads_delivered;  // each hub's delivered() then
        std::string json;
    };
    sample last_;
};

}  // namespace zena::admin
