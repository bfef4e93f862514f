#include "api/server_api.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <memory>
#include <optional>
#include <unordered_set>

#include "auth/jwt.hpp"
#include "auth/token_source.hpp"
#include "protocol/channel.hpp"
#include "protocol/envelope.hpp"
#include "protocol/json_reader.hpp"
#include "protocol/json_writer.hpp"
#include "util/text.hpp"
#include "util/url.hpp"
#include "ws/close_codes.hpp"

namespace zena::api {
namespace {

using protocol::json_object;

// Event type names: letters, digits and . _ : - (room for "deal.risk", "custom:thing").
bool valid_type(std::string_view type) {
    if (type.empty() || type.size() > k_max_type_bytes) return false;
    return std::all_of(type.begin(), type.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == ':' || c == '-';
    });
}

// A user id as the API accepts it: what a JWT's user claim can hold.
bool valid_user(std::string_view user) { return !user.empty() && user.size() <= 256; }

// An idempotency key: 1-128 bytes of letters, digits and - _ . : @ = + / (a UUID, base64, a
// backend's own id such as job-42:thread-123). No braces: the Redis engine writes the key into a
// key name after the channel's "}:", where a brace would let it pass for another channel's key.
bool valid_idempotency_key(std::string_view key) {
    constexpr std::string_view k_marks = "-_.:@=+/";
    return !key.empty() && key.size() <= 128 && std::all_of(key.begin(), key.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               k_marks.find(c) != std::string_view::npos;
    });
}

// A user id decoded from a path: as above, and UTF-8 (a claim is a JSON string, so it is; a
// decoded path segment may not be).
bool valid_user_id(std::string_view user) {
    return valid_user(user) && simdjson::validate_utf8(user.data(), user.size());
}

using publish_batch = std::vector<engine::publication>;

// A channel the API may publish to or read: a channel name, or a user's personal channel.
bool valid_channel(std::string_view channel) {
    if (const auto user = protocol::personal_channel_user(channel)) return valid_user_id(*user);
    return protocol::valid_channel_name(channel);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Why the parser cannot hold the number `token` (as it appears in the body), or nullopt when it
// can. Checks the JSON grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, then the range:
// integers must fit in 64 bits (int64 when negative, uint64 otherwise), other numbers in a
// double (a number too small for one reads as 0, as the parser does).
std::optional<std::string_view> number_trouble(std::string_view token) {
    constexpr std::string_view k_invalid = "is not a valid JSON number";
    std::size_t i = 0;
    const auto digits = [&] {
        const auto start = i;
        while (i < token.size() && is_digit(token[i])) ++i;
        return i - start;
    };
    const bool negative = i < token.size() && token[i] == '-';
    if (negative) ++i;
    const auto int_start = i;
    const auto int_digits = digits();
    if (int_digits == 0 || (int_digits > 1 && token[int_start] == '0')) return k_invalid;
    bool integer = true;
    std::size_t frac_start = i;
    std::size_t frac_digits = 0;
    if (i < token.size() && token[i] == '.') {
        integer = false;
        frac_start = ++i;
        frac_digits = digits();
        if (frac_digits == 0) return k_invalid;
    }
    std::int64_t exponent = 0;
    if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
        integer = false;
        ++i;
        const bool exponent_negative = i < token.size() && token[i] == '-';
        if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
        const auto exponent_start = i;
        if (digits() == 0) return k_invalid;
        constexpr std::int64_t k_saturated = 1'000'000'000;  // far past any double's exponent
        for (auto k = exponent_start; k < i; ++k) exponent = std::min(exponent * 10 + (token[k] - '0'), k_saturated);
        if (exponent_negative) exponent = -exponent;
    }
    if (i != token.size()) return k_invalid;
    const auto* first = token.data();
    const auto* last = token.data() + token.size();
    if (integer) {
        std::errc ec{};
        if (negative) {
            std::int64_t value = 0;
            ec = std::from_chars(first, last, value).ec;
        } else {
            std::uint64_t value = 0;
            ec = std::from_chars(first, last, value).ec;
        }
        if (ec == std::errc::result_out_of_range) {
            return "is an integer out of range (integers must fit in 64 bits: -2^63 to 2^64-1)";
        }
        return std::nullopt;
    }
    double value = 0;
    if (std::from_chars(first, last, value).ec != std::errc::result_out_of_range) return std::nullopt;
    // Out of range: too large, or too small (which the parser takes as 0). The position of the
    // first significant digit tells them apart.
    std::int64_t magnitude = exponent;
    if (token[int_start] != '0') {
        magnitude += static_cast<std::int64_t>(int_digits);
    } else {
        std::size_t zeros = 0;
        while (zeros < frac_digits && token[frac_start + zeros] == '0') ++zeros;
        if (zeros == frac_digits) return std::nullopt;  // zero
        magnitude -= static_cast<std::int64_t>(zeros);
    }
    if (magnitude > 0) return "is a number out of range (larger than a 64-bit double can hold)";
    return std::nullopt;
}

// A body the parser refused for a number (simdjson 3.0's DOM says only NUMBER_ERROR, not which
// number): the body is scanned again for the first number it cannot hold and the field that
// holds it, as the catalog's errors name it ("payload.amount", "items[2].payload.sources[0].n").
// Only on that refusal; linear in the body, without recursion. A body too broken to scan gets
// the general answer.
http_response number_refusal(std::string_view body) {
    struct frame {
        bool array;
        bool expect_key;        // an object, before a key
        std::string_view key;   // an object's current key, as written (escapes kept)
        std::size_t index = 0;  // an array's current item
    };
    std::vector<frame> stack;
    const auto path = [&] {
        std::string out;
        for (const auto& f : stack) {
            if (f.array) {
                out += '[' + std::to_string(f.index) + ']';
            } else {
                if (!out.empty()) out += '.';
                out.append(f.key);
            }
        }
        return out;
    };
    for (std::size_t i = 0; i < body.size();) {
        const char c = body[i];
        if (c == '{' || c == '[') {
            stack.push_back(frame{c == '[', c == '{', {}, 0});
            ++i;
        } else if (c == '}' || c == ']') {
            if (!stack.empty()) stack.pop_back();
            ++i;
        } else if (c == ',') {
            if (!stack.empty()) {
                if (stack.back().array) {
                    ++stack.back().index;
                } else {
                    stack.back().expect_key = true;
                }
            }
            ++i;
        } else if (c == '"') {
            auto end = i + 1;
            while (end < body.size() && body[end] != '"') end += body[end] == '\\' ? 2 : 1;
            if (!stack.empty() && !stack.back().array && stack.back().expect_key) {
                stack.back().key = body.substr(i + 1, std::min(end, body.size()) - i - 1);
                stack.back().expect_key = false;
            }
            i = end + 1;
        } else if (c == '-' || is_digit(c)) {
            auto end = i;
            while (end < body.size() && (is_digit(body[end]) || body[end] == '-' || body[end] == '+' ||
                                         body[end] == '.' || body[end] == 'e' || body[end] == 'E')) {
                ++end;
            }
            if (const auto trouble = number_trouble(body.substr(i, end - i))) {
                const auto field = path();
                if (field.empty()) return error_response(400, "a number in the body " + std::string{*trouble});
                return error_response(400, field + ' ' + std::string{*trouble}, field);
            }
            i = end;
        } else {
            ++i;  // whitespace, ':', true, false, null
        }
    }
    return error_response(400, "a number in the body is out of range (integers must fit in 64 bits)");
}

// Parses a request body that must be one JSON object.
std::optional<http_response> parse_body(std::string_view body, simdjson::dom::object& object) {
    simdjson::dom::element root;
    if (const auto error = protocol::thread_json_parser().parse(body.data(), body.size()).get(root);
        error != simdjson::SUCCESS) {
        // Valid JSON may still hold a number the parser cannot (past 64 bits, past a double).
        if (error == simdjson::NUMBER_ERROR) return number_refusal(body);
        return error_response(400, "body is not valid JSON");
    }
    if (root.get_object().get(object) != simdjson::SUCCESS) return error_response(400, "body must be a JSON object");
    return std::nullopt;
}

// How connections that are behind treat the event: its catalog delivery class, and for latest
// the key built from the type and the key field's value (a required string, checked above).
void set_delivery(const protocol::event_spec* spec, std::string_view type, simdjson::dom::element payload,
                  ws::outbound& out) {
    if (!spec) return;  // permissive, unknown type: ordered
    out.delivery = spec->delivery;
    if (spec->delivery == ws::delivery_class::latest) {
        std::string_view key_value;
        if (payload[spec->delivery_key].get_string().get(key_value) != simdjson::SUCCESS) key_value = {};
        out.latest_key = protocol::latest_key_of(type, key_value);
    }
}

// Checks a publish's type and payload against the catalog; the error response, or nullopt.
std::optional<http_response> check_event(const protocol::catalog& catalog, bool permissive, std::string_view type,
                                         simdjson::dom::element payload) {
    const auto* spec = catalog.server_event(type);
    if (!spec) {
        if (permissive) return std::nullopt;
        return error_response(400, "unknown event type (not in the catalog)", "type", type);
    }
    if (spec->protocol) return error_response(400, "this event is sent by the server itself", "type", type);
    if (auto e = protocol::catalog::validate(*spec, payload)) {
        return error_response(400, std::string{type} + ": " + e->field + " " + e->message, e->field, type);
    }
    return std::nullopt;
}

// Checks one publish, {"type", "payload", and unless `out.everyone` "userId" | "userIds"},
// whole. On failure returns the error response; on success fills `out`: the event, to each
// user's personal channel.
std::optional<http_response> parse_publish(simdjson::dom::object object, const protocol::catalog& catalog,
                                           const api_limits& limits, engine::publication& out) {
    const std::size_t max_users = limits.max_users_per_publish;

    std::string_view type;
    if (object["type"].get_string().get(type) != simdjson::SUCCESS) {
        return error_response(400, "type is required and must be a string", "type");
    }
    if (!valid_type(type)) {
        return error_response(400, "type must be 1-128 characters of letters, digits and . _ : -", "type");
    }
    simdjson::dom::element payload;
    if (object["payload"].get(payload) != simdjson::SUCCESS || !payload.is_object()) {
        return error_response(400, "payload is required and must be a JSON object", "payload");
    }
    if (auto error = check_event(catalog, limits.permissive, type, payload)) return error;

    if (!out.everyone) {
        simdjson::dom::element user_id;
        simdjson::dom::element user_ids;
        simdjson::dom::element channel_element;
        const bool has_one = object["userId"].get(user_id) == simdjson::SUCCESS;
        const bool has_many = object["userIds"].get(user_ids) == simdjson::SUCCESS;
        const bool has_channel = object["channel"].get(channel_element) == simdjson::SUCCESS;
        if (int{has_one} + int{has_many} + int{has_channel} != 1) {
            return error_response(400, "give exactly one of userId, userIds and channel",
                                  has_channel ? "channel" : "userId");
        }
        if (has_channel) {
            std::string_view channel;
            if (channel_element.get_string().get(channel) != simdjson::SUCCESS || !valid_channel(channel)) {
                return error_response(
                    400, "channel must be 1-255 bytes of letters, digits and _ - : . @ = (or user:<userId>)",
                    "channel");
            }
            out.channels.emplace_back(channel);
        } else if (has_one) {
            std::string_view user;
            if (user_id.get_string().get(user) != simdjson::SUCCESS || !valid_user(user)) {
                return error_response(400, "userId must be a non-empty string of at most 256 bytes", "userId");
            }
            out.channels.push_back(protocol::personal_channel(user));
        } else {
            simdjson::dom::array list;
            if (user_ids.get_array().get(list) != simdjson::SUCCESS) {
                return error_response(400, "userIds must be an array of strings", "userIds");
            }
            if (list.size() > max_users) {
                return error_response(400, "userIds names more than " + std::to_string(max_users) + " users",
                                      "userIds");
            }
            std::unordered_set<std::string_view> seen;
            std::size_t index = 0;
            for (simdjson::dom::element item : list) {
                std::string_view user;
                if (item.get_string().get(user) != simdjson::SUCCESS || !valid_user(user)) {
                    return error_response(400, "userIds must hold non-empty strings of at most 256 bytes",
                                          "userIds[" + std::to_string(index) + "]");
                }
                // A user listed twice gets the event once.
                if (seen.insert(user).second) out.channels.push_back(protocol::personal_channel(user));
                ++index;
            }
        }
    }
    if (simdjson::dom::element key_element; object["idempotencyKey"].get(key_element) == simdjson::SUCCESS) {
        std::string_view key;
        if (key_element.get_string().get(key) != simdjson::SUCCESS || !valid_idempotency_key(key)) {
            return error_response(400, "idempotencyKey must be 1-128 bytes of letters, digits and - _ . : @ = + /",
                                  "idempotencyKey");
        }
        out.idempotency_key = key;
    }
    auto e = std::make_shared<engine::event>();
    e->type = type;
    e->payload = protocol::minify_json(payload);
    // An announcement to everyone travels on no channel: its one frame is built here. An event on
    // channels is framed per channel, with its position, by the broker.
    if (out.everyone) e->message.frame = protocol::make_event_frame(type, e->payload);
    set_delivery(catalog.server_event(type), type, payload, e->message);
    out.event = std::move(e);
    return std::nullopt;
}

http_response ok(std::string body) { return http_response{200, std::move(body), {}}; }

http_response unavailable(std::string_view why) {
    return error_response(503, "the engine is unavailable: " + std::string{why});
}

// The nodes' numeric answers, summed (a node with nothing to say adds nothing).
std::uint64_t sum_of(const std::vector<std::string>& answers) {
    std::uint64_t total = 0;
    for (const auto& a : answers) {
        std::uint64_t n = 0;
        std::from_chars(a.data(), a.data() + a.size(), n);
        total += n;
    }
    return total;
}

// {"delivered": n}, and for a publish to one channel its name and, when stored, its position;
// "duplicate": true when its idempotency key was published on every target before.
std::string outcome_json(const engine::publication& p, const engine::publish_outcome& outcome) {
    json_object out;
    out.add("delivered", std::uint64_t{outcome.delivered});
    if (outcome.all_duplicate()) out.add("duplicate", true);
    if (p.channels.size() == 1) {
        out.add("channel", p.channels.front());
        if (!outcome.positions.empty() && !outcome.positions.front().epoch.empty()) {
            out.add("epoch", outcome.positions.front().epoch).add("seq", outcome.positions.front().seq);
        }
    }
    return out.str();
}

}  // namespace

http_response error_response(int status, std::string_view message, std::string_view field, std::string_view event) {
    json_object body;
    body.add("error", message);
    if (!field.empty()) body.add("field", field);
    if (!event.empty()) body.add("event", event);
    return http_response{status, body.str(), {}};
}

server_api::server_api(engine::broker& broker, hub::hub_set& hubs, observability::metrics& metrics,
                       const protocol::catalog& catalog, std::string api_key, api_limits limits, const readiness& ready,
                       api_channels channels, api_presence presence, api_cluster cluster)
    : broker_(broker),
      hubs_(hubs),
      metrics_(metrics),
      catalog_(catalog),
      api_key_(std::move(api_key)),
      limits_(limits),
      ready_(ready),
      channels_(std::move(channels)),
      presence_(presence),
      cluster_info_(std::move(cluster)),
      local_([this] {
          const auto& registry = hubs_.registry();
          return engine::node_info{cluster_info_.node_id, cluster_info_.address, registry.connections(),
                                   registry.users(),      started_ms_,           auth::unix_now_ms()};
      }),
      cluster_(cluster_info_.nodes ? *cluster_info_.nodes : local_),
      started_ms_(auth::unix_now_ms()) {
    cluster_.on_request([this](std::string_view kind, std::string_view args, engine::cluster::answer_fn reply) {
        answer(kind, args, std::move(reply));
    });
}

bool server_api::authorized(std::string_view authorization) const {
    const auto presented = auth::bearer_credential(authorization);
    return presented.size() == api_key_.size() && !api_key_.empty() &&
           CRYPTO_memcmp(presented.data(), api_key_.data(), api_key_.size()) == 0;
}

void server_api::handle(const http_request& request, std::function<void(http_response)> reply) {
    // Count refusals on the way out, whichever route answered.
    auto respond = [this, reply = std::move(reply)](http_response response) {
        if (response.status >= 400 && response.status < 500) observability::metrics::add(metrics_.api_rejections);
        reply(std::move(response));
    };
    if (!authorized(request.authorization)) {
        auto response = error_response(401, "missing or invalid API key (Authorization: Bearer <key>)");
        response.headers.emplace_back("WWW-Authenticate", "Bearer");
        return respond(std::move(response));
    }
    const auto path = util::target_path(request.target);
    const auto method_not_allowed = [&](std::string_view allow) {
        auto response = error_response(405, "method not allowed");
        response.headers.emplace_back("Allow", std::string{allow});
        respond(std::move(response));
    };

    if (path == "/api/broadcast" || path == "/api/broadcast-all" || path == "/api/publish") {
        if (request.method != "POST") return method_not_allowed("POST");
        simdjson::dom::object object;
        if (auto error = parse_body(request.body, object)) return respond(std::move(*error));
        if (path == "/api/publish") {
            if (simdjson::dom::element c; object["channel"].get(c) != simdjson::SUCCESS) {
                return respond(error_response(400, "channel is required", "channel"));
            }
        }
        return publish(object, path == "/api/broadcast-all", std::move(respond));
    }
    // /api/channels/{channel}/history: the channel is one segment, percent-encoded.
    constexpr std::string_view k_channels = "/api/channels/";
    if (path.starts_with(k_channels)) {
        auto segments = util::path_segments(path);
        if (!segments || segments->size() != 4 || ((*segments)[3] != "history" && (*segments)[3] != "presence")) {
            return respond(error_response(404, "no such API route"));
        }
        if (request.method != "GET") return method_not_allowed("GET");
        auto& channel = (*segments)[2];
        if (!valid_channel(channel)) {
            return respond(error_response(
                400,
                "channel in the path is not valid (1-255 bytes of letters, digits and _ - : . @ =, or user:<userId>)",
                "channel"));
        }
        if ((*segments)[3] == "presence") return channel_presence(channel, std::move(respond));
        return history(channel, request.target, std::move(respond));
    }
    if (path == "/api/presence") {
        if (request.method != "GET") return method_not_allowed("GET");
        return users_presence(request.target, std::move(respond));
    }
    if (path == "/api/batch") {
        if (request.method != "POST") return method_not_allowed("POST");
        simdjson::dom::object object;
        if (auto error = parse_body(request.body, object)) return respond(std::move(*error));
        return batch(object, std::move(respond), {});
    }
    if (path == "/api/stats") {
        if (request.method != "GET") return method_not_allowed("GET");
        return stats(std::move(respond));
    }
    if (path == "/api/nodes") {
        if (request.method != "GET") return method_not_allowed("GET");
        return nodes(std::move(respond));
    }
    // /api/users/{userId}/connections: the path is split into segments before each is decoded,
    // so a user id holding '/' (sent as %2F) is one segment, like any id a token can carry.
    constexpr std::string_view k_users = "/api/users/";
    constexpr std::string_view k_connections = "/connections";
    if (path.starts_with(k_users) && path.ends_with(k_connections) &&
        path.size() > k_users.size() + k_connections.size()) {
        auto segments = util::path_segments(path);
        std::string* user = segments && segments->size() == 4 ? &(*segments)[2] : nullptr;
        if (!user || !valid_user_id(*user)) {
            return respond(error_response(
                400, "userId in the path is not valid (1-256 bytes of UTF-8, percent-encoded, '/' as %2F)", "userId"));
        }
        if (request.method == "GET") {
            return cluster_.survey("connections", *user, [user = *user, respond = std::move(respond)](auto answers) {
                if (!answers) return respond(unavailable(answers.message()));
                return respond(ok(json_object().add("userId", user).add("connections", sum_of(*answers)).str()));
            });
        }
        if (request.method == "DELETE") return disconnect_user(std::move(*user), std::move(respond));
        return method_not_allowed("GET, DELETE");
    }
    // /api/users/{userId}/subscriptions (POST) and /api/users/{userId}/subscriptions/{channel} (DELETE).
    if (path.starts_with(k_users)) {
        auto segments = util::path_segments(path);
        if (segments && (segments->size() == 4 || segments->size() == 5) && (*segments)[3] == "subscriptions") {
            auto& user = (*segments)[2];
            if (!valid_user_id(user)) {
                return respond(error_response(
                    400, "userId in the path is not valid (1-256 bytes of UTF-8, percent-encoded, '/' as %2F)",
                    "userId"));
            }
            if (segments->size() == 4) {
                if (request.method != "POST") return method_not_allowed("POST");
                simdjson::dom::object object;
                if (auto error = parse_body(request.body, object)) return respond(std::move(*error));
                std::string_view channel;
                if (object["channel"].get_string().get(channel) != simdjson::SUCCESS ||
                    !protocol::subscribable_channel(channel)) {
                    return respond(error_response(
                        400, "channel must be 1-255 bytes of letters, digits and _ - : . @ = (not a user: channel)",
                        "channel"));
                }
                return subscriptions(std::move(user), std::string{channel}, true, std::move(respond));
            }
            if (request.method != "DELETE") return method_not_allowed("DELETE");
            auto& channel = (*segments)[4];
            if (!protocol::subscribable_channel(channel)) {
                return respond(error_response(
                    400,
                    "channel in the path must be 1-255 bytes of letters, digits and _ - : . @ = (not a user: channel)",
                    "channel"));
            }
            return subscriptions(std::move(user), std::move(channel), false, std::move(respond));
        }
    }
    respond(error_response(404, "no such API route"));
}

void server_api::set_history(engine::publication& p) const {
    if (p.everyone || p.channels.empty() || !p.event) return;
    if (p.event->message.delivery == ws::delivery_class::ephemeral) return;  // never stored
    if (!channels_.history_of) return;
    // The channels of one publication share a namespace (one channel, or users' personal ones).
    if (const auto limits = channels_.history_of(p.channels.front())) {
        p.history = true;
        p.limits = *limits;
    }
}

void server_api::notify_offline(const engine::publication& p, const engine::publish_outcome& outcome) const {
    if (!channels_.notify_offline || p.everyone || !p.event) return;
    const auto* spec = catalog_.server_event(p.event->type);
    if (!spec || !spec->notify_offline) return;
    const auto& registry = hubs_.registry();
    for (std::size_t i = 0; i < p.channels.size(); ++i) {
        const auto user = protocol::personal_channel_user(p.channels[i]);
        if (!user || registry.connections_of(*user) > 0) continue;
        std::string body = "{\"type\":\"user.offline_event\",\"userId\":";
        protocol::append_json_string(body, *user);
        body += ",\"event\":{\"type\":";
        protocol::append_json_string(body, p.event->type);
        body += ",\"payload\":" + p.event->payload + ",\"channel\":";
        protocol::append_json_string(body, p.channels[i]);
        // A duplicate (a retry with its idempotency key) is told again, with the first publish's
        // position: the first try may have been answered 503 and told no one.
        if (i < outcome.positions.size() && !outcome.positions[i].epoch.empty()) {
            body += ",\"epoch\":";
            protocol::append_json_string(body, outcome.positions[i].epoch);
            body += ",\"seq\":" + std::to_string(outcome.positions[i].seq);
        }
        body += "},\"at\":" + std::to_string(auth::unix_now_ms()) + "}";
        observability::metrics::add(metrics_.offline_notifications);
        channels_.notify_offline(*user, std::move(body));
    }
}

void server_api::history(const std::string& channel, std::string_view target,
                         std::function<void(http_response)> reply) {
    std::optional<engine::position> since;
    if (auto text = util::query_param(target, "since")) {
        const auto written = protocol::parse_position(*text);
        if (!written) {
            return reply(error_response(400, "since must be <epoch>:<seq>, as an event's epoch and seq", "since"));
        }
        since = engine::position{std::string{written->epoch}, written->seq};
    }
    std::size_t limit = 100;
    if (auto text = util::query_param(target, "limit")) {
        std::uint64_t value = 0;
        const auto* end = text->data() + text->size();
        const auto [ptr, ec] = std::from_chars(text->data(), end, value);
        if (ec != std::errc{} || ptr != end || value < 1 || value > 1000) {
            return reply(error_response(400, "limit must be an integer from 1 to 1000", "limit"));
        }
        limit = value;
    }
    channels_.history.read(channel, std::move(since), limit,
                           [channel, reply = std::move(reply)](util::result<engine::history_page> page) {
                               if (!page) {
                                   return reply(error_response(503, "the engine is unavailable: " + page.message()));
                               }
                               std::string out = "{\"channel\":";
                               protocol::append_json_string(out, channel);
                               out += ",\"epoch\":";
                               protocol::append_json_string(out, page->top.epoch);
                               out += ",\"seq\":" + std::to_string(page->top.seq);
                               out += ",\"recovered\":";
                               out += page->recovered ? "true" : "false";
                               out += ",\"events\":[";
                               bool first = true;
                               for (const auto& e : page->events) {
                                   if (!first) out += ',';
                                   first = false;
                                   out += "{\"type\":";
                                   protocol::append_json_string(out, e.event->type);
                                   out += ",\"payload\":" + e.event->payload;
                                   out += ",\"seq\":" + std::to_string(e.seq);
                                   out += ",\"publishedAt\":" + std::to_string(e.published_ms) + "}";
                               }
                               out += "]}";
                               reply(ok(std::move(out)));
                           });
}

void server_api::users_presence(std::string_view target, const std::function<void(http_response)>& reply) {
    // The raw value, split at its commas before each id is decoded: an id may hold a comma (%2C).
    const auto query = target.find('?');
    std::string_view raw;
    if (query != std::string_view::npos) {
        util::for_each_item(target.substr(query + 1), '&', [&](std::string_view item) {
            if (item.starts_with("userIds=")) {
                raw = item.substr(8);
                return false;
            }
            return true;
        });
    }
    if (raw.empty()) return reply(error_response(400, "userIds is required: ?userIds=alice,bob", "userIds"));
    std::vector<std::string> users;
    bool bad = false;
    util::for_each_item(raw, ',', [&](std::string_view item) {
        auto user = util::percent_decode(item, true);
        if (!user || !valid_user_id(*user) || users.size() >= 1000) {
            bad = true;
            return false;
        }
        if (std::find(users.begin(), users.end(), *user) == users.end()) users.push_back(std::move(*user));
        return true;
    });
    if (bad) {
        return reply(error_response(
            400, "userIds must be 1-1000 comma-separated user ids (1-256 bytes of UTF-8 each, percent-encoded)",
            "userIds"));
    }
    std::string args;
    for (const auto& user : users) args += user + "\n";
    cluster_.survey("presence", std::move(args), [users = std::move(users), reply](auto answers) {
        if (!answers) return reply(unavailable(answers.message()));
        // Per user: connections summed over the nodes, online if any node says so, the latest
        // last-seen otherwise.
        std::vector<std::uint64_t> connections(users.size());
        std::vector<bool> online(users.size());
        std::vector<std::int64_t> last_seen(users.size());
        for (const auto& a : *answers) {
            std::size_t i = 0;
            util::for_each_item(a, '\n', [&](std::string_view line) {
                if (i >= users.size() || line.empty()) return false;
                std::array<std::string_view, 3> f{};
                std::size_t k = 0;
                util::for_each_item(line, '\t', [&](std::string_view v) {
                    if (k < 3) f[k++] = v;
                    return true;
                });
                std::uint64_t c = 0;
                std::int64_t seen = 0;
                std::from_chars(f[0].data(), f[0].data() + f[0].size(), c);
                std::from_chars(f[2].data(), f[2].data() + f[2].size(), seen);
                connections[i] += c;
                online[i] = online[i] || f[1] == "1";
                last_seen[i] = std::max(last_seen[i], seen);
                ++i;
                return true;
            });
        }
        json_object out;
        for (std::size_t i = 0; i < users.size(); ++i) {
            json_object entry;
            if (connections[i] > 0 || online[i]) {
                entry.add("online", true).add("connections", connections[i]);
            } else {
                entry.add("online", false);
                if (last_seen[i] > 0) entry.add("lastSeen", last_seen[i]);
            }
            out.add_raw(users[i], entry.str());
        }
        reply(ok(out.str()));
    });
}

void server_api::channel_presence(const std::string& channel, std::function<void(http_response)> reply) {
    presence_.channels.query(channel, [channel, max = presence_.max_list,
                                       reply = std::move(reply)](util::result<engine::presence_state> state) {
        if (!state) return reply(error_response(503, "the engine is unavailable: " + state.message()));
        json_object out;
        out.add("channel", channel);
        if (state->users.size() <= max) {
            std::string users = "[";
            for (const auto& [user, clients] : state->users) {
                if (users.size() > 1) users += ',';
                protocol::append_json_string(users, user);
            }
            users += ']';
            out.add_raw("users", users);
        }
        out.add("count", std::uint64_t{state->users.size()});
        reply(ok(out.str()));
    });
}

void server_api::subscriptions(std::string user, std::string channel, bool subscribe,
                               std::function<void(http_response)> reply) {
    auto args = user + "\n" + channel;
    cluster_.survey(
        subscribe ? "subscribe" : "unsubscribe", std::move(args),
        [user = std::move(user), channel = std::move(channel), reply = std::move(reply)](auto answers) {
            if (!answers) return reply(unavailable(answers.message()));
            reply(ok(
                json_object().add("userId", user).add("channel", channel).add("connections", sum_of(*answers)).str()));
        });
}

void server_api::answer(std::string_view kind, std::string_view args, engine::cluster::answer_fn reply) {
    const auto& registry = hubs_.registry();
    if (kind == "connections") return reply(std::to_string(registry.connections_of(args)));
    if (kind == "stats") return reply(local_stats());
    if (kind == "presence") {
        // One line per user asked: "<connections>\t<online 0/1>\t<last seen ms, or empty>".
        std::string out;
        util::for_each_item(args, '\n', [&](std::string_view user) {
            const auto state = presence_.users.state_of(std::string{user});
            out += std::to_string(registry.connections_of(user)) + "\t" + (state.online ? "1" : "0") + "\t" +
                   (state.last_seen ? std::to_string(*state.last_seen) : std::string{}) + "\n";
            return true;
        });
        return reply(std::move(out));
    }
    if (kind == "disconnect") {
        auto user = std::make_shared<const std::string>(args);
        return hubs_.on_every_hub(
            [user](hub::hub& h) { return h.close_user(*user, ws::close_code::disconnected, "disconnected by server"); },
            [reply = std::move(reply)](std::size_t closed) { reply(std::to_string(closed)); });
    }
    if (kind == "subscribe" || kind == "unsubscribe") {
        const auto nl = args.find('\n');
        if (nl == std::string_view::npos) return reply("0");
        struct target {
            std::string user;
            std::string channel;
        };
        auto t =
            std::make_shared<const target>(target{std::string{args.substr(0, nl)}, std::string{args.substr(nl + 1)}});
        const bool on = kind == "subscribe";
        return hubs_.on_every_hub(
            [t, on](hub::hub& h) {
                return on ? h.subscribe_user(t->user, t->channel) : h.unsubscribe_user(t->user, t->channel);
            },
            [reply = std::move(reply)](std::size_t count) { reply(std::to_string(count)); });
    }
    reply("");  // a kind of a newer node: nothing to say
}

void server_api::publish_message(std::string_view body, const refusal_fn& on_refused, std::function<void()> done) {
    simdjson::dom::object object;
    if (auto error = parse_body(body, object)) {
        on_refused(*error);
        return done();
    }
    if (simdjson::dom::element items; object["items"].get(items) == simdjson::SUCCESS) {
        return batch(
            object,
            [done = std::move(done), on_refused](const http_response& response) {
                if (response.status >= 400) on_refused(response);  // the whole batch, found before any delivery
                done();
            },
            on_refused);
    }
    bool all = false;
    all = object["all"].get_bool().get(all) == simdjson::SUCCESS && all;
    // A refusal is found before anything crosses a thread, so it is reported on this thread.
    publish(object, all, [done = std::move(done), on_refused](const http_response& response) {
        if (response.status >= 400) on_refused(response);
        done();
    });
}

void server_api::publish(simdjson::dom::object object, bool all, std::function<void(http_response)> reply) {
    auto batch = std::make_shared<publish_batch>(1);
    auto& publication = batch->front();
    publication.everyone = all;
    if (auto error = parse_publish(object, catalog_, limits_, publication)) return reply(std::move(*error));
    set_history(publication);
    observability::metrics::add(metrics_.events_published);
    broker_.publish(
        batch, [this, batch, reply = std::move(reply)](util::result<std::vector<engine::publish_outcome>> outcome) {
            if (!outcome) return reply(error_response(503, "the engine is unavailable: " + outcome.message()));
            const auto& done = outcome->front();
            observability::metrics::add(metrics_.messages_delivered, done.delivered);
            if (done.all_duplicate()) observability::metrics::add(metrics_.api_duplicates);
            notify_offline(batch->front(), done);
            reply(ok(outcome_json(batch->front(), done)));
        });
}

void server_api::batch(simdjson::dom::object object, std::function<void(http_response)> reply,
                       const refusal_fn& on_refused) {
    simdjson::dom::array items;
    if (object["items"].get_array().get(items) != simdjson::SUCCESS) {
        return reply(error_response(400, "items is required and must be an array of publishes", "items"));
    }
    if (items.size() > limits_.max_batch_items) {
        return reply(error_response(
            400, "items holds more than " + std::to_string(limits_.max_batch_items) + " publishes", "items"));
    }
    // Each item is checked on its own; the valid ones go out in their order, as one publish to
    // the broker (one task per thread), and every item gets its own answer.
    auto publishes = std::make_shared<publish_batch>();
    auto errors = std::make_shared<std::vector<std::optional<http_response>>>();  // per item; nullopt: published
    for (simdjson::dom::element item : items) {
        simdjson::dom::object publish_object;
        engine::publication publication;
        std::optional<http_response> error;
        if (item.get_object().get(publish_object) != simdjson::SUCCESS) {
            error = error_response(400, "each item must be a JSON object");
        } else {
            bool all = false;
            publication.everyone = publish_object["all"].get_bool().get(all) == simdjson::SUCCESS && all;
            error = parse_publish(publish_object, catalog_, limits_, publication);
            if (!error) set_history(publication);
        }
        if (error) {
            if (on_refused) on_refused(*error);
            observability::metrics::add(metrics_.api_rejections);
        } else {
            publishes->push_back(std::move(publication));
        }
        errors->push_back(std::move(error));
    }
    observability::metrics::add(metrics_.events_published, publishes->size());

    auto answer = [this, errors, publishes,
                   reply = std::move(reply)](util::result<std::vector<engine::publish_outcome>> outcome) {
        if (!outcome) return reply(error_response(503, "the engine is unavailable: " + outcome.message()));
        const auto& outcomes = *outcome;
        std::size_t total = 0;
        std::string out = "{\"results\":[";
        std::size_t next = 0;  // the outcome of the next published item
        for (std::size_t i = 0; i < errors->size(); ++i) {
            if (i > 0) out += ',';
            if (const auto& error = (*errors)[i]) {
                // {"status":400,"error":...,"field":...}
                out += "{\"status\":" + std::to_string(error->status) + ',' + error->body.substr(1);
            } else {
                const auto& item = outcomes[next];
                const auto& publication = (*publishes)[next++];
                total += item.delivered;
                if (item.all_duplicate()) observability::metrics::add(metrics_.api_duplicates);
                notify_offline(publication, item);
                out += outcome_json(publication, item);
            }
        }
        out += "]}";
        observability::metrics::add(metrics_.messages_delivered, total);
        reply(ok(std::move(out)));
    };
    if (publishes->empty()) return answer(std::vector<engine::publish_outcome>{});
    broker_.publish(publishes, std::move(answer));
}

void server_api::disconnect_user(std::string user, std::function<void(http_response)> reply) {
    auto args = user;
    cluster_.survey("disconnect", std::move(args), [user = std::move(user), reply = std::move(reply)](auto answers) {
        if (!answers) return reply(unavailable(answers.message()));
        reply(ok(json_object().add("userId", user).add("closed", sum_of(*answers)).str()));
    });
}

std::string server_api::local_stats() const {
    const auto& registry = hubs_.registry();
    return json_object()
        .add("node", cluster_info_.node_id)
        .add("connections", std::uint64_t{registry.connections()})
        .add("users", std::uint64_t{registry.users()})
        .add("threads", std::uint64_t{hubs_.size()})
        .add("messagesDelivered", metrics_.messages_delivered.load(std::memory_order_relaxed))
        .add("eventsPublished", metrics_.events_published.load(std::memory_order_relaxed))
        .add("channels", std::uint64_t{registry.channels()})
        .str();
}

void server_api::stats(std::function<void(http_response)> reply) {
    cluster_.survey("stats", "", [reply = std::move(reply)](auto answers) {
        if (!answers) return reply(unavailable(answers.message()));
        // The deployment's totals (users: the sum of each node's, so a user on two nodes counts
        // twice), then each node's own figures.
        std::uint64_t totals[6] = {};
        static constexpr const char* k_fields[6] = {"connections",       "users",           "threads",
                                                    "messagesDelivered", "eventsPublished", "channels"};
        std::string per_node = "[";
        simdjson::dom::parser parser;
        for (const auto& a : *answers) {
            simdjson::dom::object node;
            if (parser.parse(a).get(node) != simdjson::SUCCESS) continue;
            for (std::size_t i = 0; i < 6; ++i) {
                std::uint64_t v = 0;
                if (node[k_fields[i]].get(v) == simdjson::SUCCESS) totals[i] += v;
            }
            if (per_node.size() > 1) per_node += ',';
            per_node += a;
        }
        per_node += ']';
        json_object out;
        for (std::size_t i = 0; i < 6; ++i) out.add(k_fields[i], totals[i]);
        out.add_raw("nodes", per_node);
        reply(ok(out.str()));
    });
}

void server_api::nodes(std::function<void(http_response)> reply) {
    cluster_.nodes([reply = std::move(reply)](util::result<std::vector<engine::node_info>> nodes) {
        if (!nodes) return reply(unavailable(nodes.message()));
        const auto now = auth::unix_now_ms();
        std::string list = "[";
        for (const auto& n : *nodes) {
            if (list.size() > 1) list += ',';
            list += json_object()
                        .add("id", n.id)
                        .add("address", n.address)
                        .add("connections", n.connections)
                        .add("users", n.users)
                        .add("uptimeMs", std::int64_t{now - n.started_ms})
                        .add("updatedAt", n.updated_ms)
                        .str();
        }
        list += ']';
        reply(ok(json_object().add_raw("nodes", list).str()));
    });
}

}  // namespace zena::api
