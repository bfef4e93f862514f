#include "admin/console.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>

#include "admin/assets.hpp"
#include "auth/jwt.hpp"
#include "config/dev_credentials.hpp"
#include "protocol/json_reader.hpp"
#include "protocol/json_writer.hpp"
#include "util/text.hpp"
#include "util/url.hpp"

namespace zena::admin {
namespace {

using protocol::json_object;

constexpr std::string_view k_api_prefix = "/admin/api/";
// Samples of the live numbers closer together than this share one.
constexpr std::int64_t k_sample_ms = 250;
// The longest user name a minted token may carry (as the API takes userId).
constexpr std::size_t k_max_user_bytes = 256;
// A minted token's channel grants: enough to try channels, small enough to bound the token.
constexpr std::size_t k_max_grants = 16;
constexpr std::size_t k_max_grant_bytes = 255;

response json(int status, std::string body) {
    response r{status, std::move(body), "application/json", {}};
    // An answer about a session is never cached, by the browser or a proxy.
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
}

response error(int status, std::string_view message, std::string_view field = {}) {
    json_object body;
    body.add("error", message);
    if (!field.empty()) body.add("field", field);
    return json(status, body.str());
}

response not_found() { return error(404, "not found"); }

// The value of cookie `name` in a Cookie header ("a=1; zena_admin=…"), or empty.
std::string_view cookie_value(std::string_view header, std::string_view name) {
    std::string_view found;
    util::for_each_item(header, ';', [&](std::string_view item) {
        const auto eq = item.find('=');
        if (eq == std::string_view::npos || util::trim(item.substr(0, eq)) != name) return true;
        found = util::trim(item.substr(eq + 1));
        return false;
    });
    return found;
}

// The request comes from a page of this very server: its Origin is http(s)://<Host>. A form or
// script on another site sends its own origin (browsers always send Origin on a POST and on a
// WebSocket handshake), so it is refused; a request with no Origin is not from a browser page
// and is refused too, as nothing but the page needs these routes.
bool same_origin(const request& r) {
    if (r.host.empty()) return false;
    for (const std::string_view scheme : {"http://", "https://"}) {
        if (r.origin.starts_with(scheme) && r.origin.substr(scheme.size()) == r.host) return true;
    }
    return false;
}

bool equal_secret(std::string_view a, std::string_view b) {
    // Hashed first, so the comparison takes as long whatever the lengths (a password's length
    // is not told by its timing either).
    std::array<unsigned char, SHA256_DIGEST_LENGTH> ha{};
    std::array<unsigned char, SHA256_DIGEST_LENGTH> hb{};
    SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), ha.data());
    SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), hb.data());
    return CRYPTO_memcmp(ha.data(), hb.data(), ha.size()) == 0;
}

// One string field of a JSON object body; nullopt when the body is not an object or the field
// is not a string.
std::optional<std::string> string_field(std::string_view body, std::string_view name) {
    simdjson::dom::element root;
    if (protocol::thread_json_parser().parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    std::string_view value;
    if (root[name].get_string().get(value) != simdjson::SUCCESS) return std::nullopt;
    return std::string{value};
}

std::string_view kind_name(protocol::field_type::kind k) {
    using kind = protocol::field_type::kind;
    switch (k) {
        case kind::string: return "string";
        case kind::number: return "number";
        case kind::boolean: return "boolean";
        case kind::date: return "date";
        case kind::enumeration: return "enum";
        case kind::array: return "array";
        case kind::object: return "object";
    }
    return "string";
}

std::string_view delivery_name(ws::delivery_class d) {
    switch (d) {
        case ws::delivery_class::ordered: return "ordered";
        case ws::delivery_class::latest: return "latest";
        case ws::delivery_class::ephemeral: return "ephemeral";
    }
    return "ordered";
}

// {"kind": ..., "values": [...] | "element": {...} | "fields": [...]}. Catalog types nest only
// as deep as the catalog file does, which the catalog's own parser bounds.
std::string type_json(const protocol::field_type& t) {
    json_object out;
    out.add("kind", kind_name(t.k));
    if (!t.name.empty()) out.add("name", t.name);
    if (t.k == protocol::field_type::kind::enumeration) {
        std::string values = "[";
        for (const auto& v : t.values) {
            if (values.size() > 1) values += ',';
            protocol::append_json_string(values, v);
        }
        out.add_raw("values", values + ']');
    }
    if (t.k == protocol::field_type::kind::array && t.element) out.add_raw("element", type_json(*t.element));
    if (t.k == protocol::field_type::kind::object) {
        std::string fields = "[";
        for (const auto& f : t.fields) {
            if (fields.size() > 1) fields += ',';
            fields += json_object()
                          .add("name", f.name)
                          .add("required", !f.optional)
                          .add_raw("type", f.type ? type_json(*f.type) : R"({"kind":"string"})")
                          .str();
        }
        out.add_raw("fields", fields + ']');
    }
    return out.str();
}

std::string events_json(const std::map<std::string, protocol::event_spec, std::less<>>& events, bool client) {
    std::string out = "[";
    for (const auto& [type, spec] : events) {
        // A server event the server sends itself cannot be published; a client event of the
        // protocol (subscribe, typing.stop) can still be sent from the page, and is marked.
        if (spec.protocol && !client) continue;
        if (out.size() > 1) out += ',';
        json_object e;
        e.add("type", type).add("delivery", delivery_name(spec.delivery)).add("protocol", spec.protocol);
        if (spec.payload) e.add_raw("payload", type_json(*spec.payload));
        out += e.str();
    }
    return out + ']';
}

}  // namespace

console::console(console_settings settings, api::server_api& api, const std::string& api_key, hub::hub_set& hubs,
                 observability::metrics& metrics, const protocol::catalog& catalog, mint_fn mint,
                 std::function<std::int64_t()> now_ms)
    : settings_(std::move(settings)),
      api_(api),
      authorization_("Bearer " + api_key),
      hubs_(hubs),
      metrics_(metrics),
      catalog_json_(catalog_json(catalog)),
      mint_(std::move(mint)),
      now_ms_(std::move(now_ms)),
      login_rate_{settings_.login_attempts_per_minute / 60.0, std::max(1.0, settings_.login_attempts_per_minute)},
      login_attempts_(login_rate_) {}

std::string console::catalog_json(const protocol::catalog& catalog) {
    return json_object()
        .add_raw("server", events_json(catalog.server_events(), false))
        .add_raw("client", events_json(catalog.client_events(), true))
        .str();
}

response console::page(std::string_view path) {
    const auto* file = find_asset(path);
    if (!file) return not_found();
    response r{200, std::string{file->bytes}, std::string{file->content_type}, {}};
    // The page runs only its own script and talks only to its own server; it is never framed.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
}

const console::session* console::find_session(std::string_view cookie) {
    const auto id = cookie_value(cookie, k_cookie);
    if (id.empty()) return nullptr;
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) return nullptr;
    if (it->second.expires_ms <= now_ms_()) {
        sessions_.erase(it);
        return nullptr;
    }
    return &it->second;
}

std::pair<std::string, const console::session*> console::create_session() {
    const auto now = now_ms_();
    std::erase_if(sessions_, [now](const auto& entry) { return entry.second.expires_ms <= now; });
    while (sessions_.size() >= settings_.max_sessions) {
        const auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
            return a.second.created_ms < b.second.created_ms;
        });
        sessions_.erase(oldest);
    }
    auto id = config::random_hex(32);
    const auto ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(settings_.session_ttl).count();
    const auto [it, inserted] = sessions_.emplace(id, session{config::random_hex(16), now + ttl_ms, now});
    return {std::move(id), &it->second};
}

std::string console::cookie_header(std::string_view id, std::chrono::seconds max_age) const {
    std::string out{k_cookie};
    out += '=';
    out += id;
    out += "; Path=/; Max-Age=" + std::to_string(max_age.count()) + "; HttpOnly; SameSite=Strict";
    if (settings_.secure_cookie) out += "; Secure";
    return out;
}

void console::handle(const request& request, std::function<void(response)> reply) {
    if (!serves()) return reply(not_found());
    const auto path = util::target_path(request.target);
    if (!path.starts_with(k_api_prefix)) {
        if (request.method != "GET") {
            auto r = error(405, "method not allowed");
            r.headers.emplace_back("Allow", "GET");
            return reply(std::move(r));
        }
        return reply(page(path));
    }
    const auto route = path.substr(k_api_prefix.size());
    const bool post = request.method == "POST";
    if (route == "session") {
        if (request.method != "GET") return reply(error(405, "method not allowed"));
        return session_info(request, reply);
    }
    // Every other route changes state or reads what only a session may: POST routes are the
    // page's own (same origin), and each needs a live session and its CSRF token but the login.
    if (post && !same_origin(request))
        return reply(error(403, "cross-origin request refused (Origin must be this server)"));
    if (route == "login") {
        if (!post) return reply(error(405, "method not allowed"));
        return login(request, reply);
    }
    std::string csrf;
    {
        const std::lock_guard lock{mutex_};
        const auto* s = find_session(request.cookie);
        if (!s) return reply(error(401, "log in first"));
        csrf = s->csrf;
    }
    if (post && (request.csrf.empty() || !equal_secret(request.csrf, csrf))) {
        return reply(error(403, "missing or wrong CSRF token (X-Zena-CSRF)"));
    }
    if (route == "logout" && post) {
        {
            const std::lock_guard lock{mutex_};
            sessions_.erase(std::string{cookie_value(request.cookie, k_cookie)});
        }
        auto r = json(200, R"({"authenticated":false})");
        r.headers.emplace_back("Set-Cookie", cookie_header("", std::chrono::seconds(0)));
        return reply(std::move(r));
    }
    if (route == "catalog" && request.method == "GET") return reply(json(200, catalog_json_));
    if (route == "stats" && request.method == "GET") {
        return snapshot([reply](std::string body) { reply(json(200, std::move(body))); });
    }
    if (route == "token" && post) return mint(request, reply);
    if (route == "publish" && post) return publish(request, std::move(reply));
    if (route == "logout" || route == "token" || route == "publish") return reply(error(405, "method not allowed"));
    reply(not_found());
}

void console::session_info(const request& request, const std::function<void(response)>& reply) {
    const std::lock_guard lock{mutex_};
    json_object body;
    body.add("dev", settings_.dev).add("node", settings_.node).add("threads", std::uint64_t{hubs_.size()});
    if (const auto* s = find_session(request.cookie)) {
        return reply(json(200, body.add("authenticated", true).add("csrf", s->csrf).str()));
    }
    if (!settings_.dev) return reply(json(200, body.add("authenticated", false).str()));
    // Dev mode is open: whoever loads the page gets a session, so that what it does is still
    // bound to a cookie and a CSRF token (another site cannot drive a developer's server).
    auto [id, s] = create_session();
    auto r = json(200, body.add("authenticated", true).add("csrf", s->csrf).str());
    r.headers.emplace_back("Set-Cookie", cookie_header(id, settings_.session_ttl));
    reply(std::move(r));
}

void console::login(const request& request, const std::function<void(response)>& reply) {
    const auto presented = string_field(request.body, "password");
    if (!presented) return reply(error(400, "body must be {\"password\": \"...\"}", "password"));
    const std::lock_guard lock{mutex_};
    if (settings_.dev) return reply(error(400, "dev mode needs no login"));
    // Every attempt takes from the budget; past it no password is even compared, so a guesser
    // learns nothing until it refills.
    if (!login_attempts_.take(login_rate_, now_ms_())) {
        auto r = error(429, "too many failed logins; try again in a minute");
        r.headers.emplace_back("Retry-After", "60");
        return reply(std::move(r));
    }
    if (settings_.password.empty() || !equal_secret(*presented, settings_.password)) {
        return reply(error(401, "wrong password", "password"));
    }
    auto [id, s] = create_session();
    auto r = json(200, json_object().add("authenticated", true).add("csrf", s->csrf).str());
    r.headers.emplace_back("Set-Cookie", cookie_header(id, settings_.session_ttl));
    reply(std::move(r));
}

void console::mint(const request& request, const std::function<void(response)>& reply) const {
    if (!settings_.dev || !mint_) {
        return reply(error(403, "tokens are minted here in dev mode only; paste a token from your backend"));
    }
    const auto user = string_field(request.body, "userId");
    if (!user || user->empty() || user->size() > k_max_user_bytes) {
        return reply(error(400, "userId must be a non-empty string of at most 256 bytes", "userId"));
    }
    // Channel grants for the token (docs/channels.md): "deal:*, room:1", a few patterns.
    std::vector<std::string> channels;
    bool valid = true;
    util::for_each_item(string_field(request.body, "channels").value_or(""), ',', [&](std::string_view item) {
        if (item.empty()) return true;
        valid = item.size() <= k_max_grant_bytes && channels.size() < k_max_grants;
        if (valid) channels.emplace_back(item);
        return valid;
    });
    if (!valid) {
        return reply(
            error(400, "channels must list at most 16 patterns of at most 255 bytes, commas between", "channels"));
    }
    reply(json(200, json_object().add("userId", *user).add("token", mint_(*user, channels)).str()));
}

void console::publish(const request& request, std::function<void(response)> reply) {
    // The API's own publish, by the same code: /api/broadcast takes userId, userIds or channel,
    // checks the body whole against the catalog, and its refusal names the field.
    api_.handle(
        api::http_request{"POST", "/api/broadcast", authorization_, request.body},
        [reply = std::move(reply)](api::http_response answer) { reply(json(answer.status, std::move(answer.body))); });
}

std::optional<response> console::refuse_live(const request& request) {
    if (!serves()) return not_found();
    if (!same_origin(request)) return error(403, "cross-origin request refused (Origin must be this server)");
    const std::lock_guard lock{mutex_};
    if (!find_session(request.cookie)) return error(401, "log in first");
    return std::nullopt;
}

void console::snapshot(std::function<void(std::string json)> done) {
    const auto now = now_ms_();
    std::optional<std::string> recent;
    {
        const std::lock_guard lock{mutex_};
        if (last_.at_ms >= 0 && now - last_.at_ms < k_sample_ms) recent = last_.json;
    }
    if (recent) return done(std::move(*recent));
    // Each thread's figures are read on that thread (the hub is its own); the slots are written
    // by one thread each and read after the last has finished.
    if (settings_.cluster) {
        settings_.cluster->nodes([this](util::result<std::vector<engine::node_info>> nodes) {
            std::string rows;
            if (nodes) {
                for (const auto& n : *nodes) {
                    if (n.id == settings_.node) continue;
                    rows += ',' + json_object()
                                      .add("node", n.id)
                                      .add("self", false)
                                      .add("address", n.address)
                                      .add("connections", n.connections)
                                      .add("users", n.users)
                                      .str();
                }
            }
            const std::lock_guard lock{mutex_};
            others_ = std::move(rows);
        });
    }
    auto per_thread = std::make_shared<std::vector<thread_figures>>(hubs_.size());
    auto fn = [this, per_thread](hub::hub& h) -> std::size_t {
        for (std::size_t i = 0; i < hubs_.size(); ++i) {
            if (&hubs_.local(i) == &h) (*per_thread)[i] = thread_figures{h.size(), h.delivered()};
        }
        return 0;
    };
    hubs_.on_every_hub(std::move(fn), [this, per_thread, now, done = std::move(done)](std::size_t) {
        const auto& registry = hubs_.registry();
        const auto delivered = metrics_.messages_delivered.load(std::memory_order_relaxed);
        const auto published = metrics_.events_published.load(std::memory_order_relaxed);
        std::unique_lock lock{mutex_};
        double delivered_rate = 0;
        double published_rate = 0;
        if (last_.at_ms >= 0 && now > last_.at_ms) {
            const auto seconds = static_cast<double>(now - last_.at_ms) / 1000.0;
            delivered_rate = static_cast<double>(delivered - std::min(delivered, last_.delivered)) / seconds;
            published_rate = static_cast<double>(published - std::min(published, last_.published)) / seconds;
        }
        const auto delivered_per_second = static_cast<std::uint64_t>(std::llround(delivered_rate));
        const auto published_per_second = static_cast<std::uint64_t>(std::llround(published_rate));
        const auto connections = std::uint64_t{registry.connections()};
        const auto users = std::uint64_t{registry.users()};
        const auto node = json_object()
                              .add("node", settings_.node)
                              .add("self", true)
                              .add("connections", connections)
                              .add("users", users)
                              .add("deliveredPerSecond", delivered_per_second)
                              .add("publishedPerSecond", published_per_second)
                              .str();
        std::string threads = "[";
        last_.threads_delivered.resize(per_thread->size(), 0);
        for (std::size_t i = 0; i < per_thread->size(); ++i) {
            const auto& t = (*per_thread)[i];
            double rate = 0;
            if (last_.at_ms >= 0 && now > last_.at_ms) {
                rate = static_cast<double>(t.delivered - std::min(t.delivered, last_.threads_delivered[i])) * 1000.0 /
                       static_cast<double>(now - last_.at_ms);
            }
            last_.threads_delivered[i] = t.delivered;
            if (i > 0) threads += ',';
            threads += json_object()
                           .add("thread", std::uint64_t{i})
                           .add("connections", std::uint64_t{t.connections})
                           .add("deliveredPerSecond", static_cast<std::uint64_t>(std::llround(rate)))
                           .str();
        }
        last_.json = json_object()
                         .add("time", auth::unix_now_ms())
                         .add("connections", connections)
                         .add("users", users)
                         .add("channels", std::uint64_t{registry.channels()})
                         .add("delivered", delivered)
                         .add("published", published)
                         .add("deliveredPerSecond", delivered_per_second)
                         .add("publishedPerSecond", published_per_second)
                         .add_raw("threads", threads + ']')
                         .add_raw("nodes", '[' + node + others_ + ']')
                         .str();
        last_.at_ms = now;
        last_.delivered = delivered;
        last_.published = published;
        auto out = last_.json;
        lock.unlock();
        done(std::move(out));
    });
}

}  // namespace zena::admin
