#pragma once
// URL and request-target helpers (RFC 3986), free of Asio and Beast so they are unit-tested
// directly.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zena::util {

// The path of a request target, without the query.
std::string_view target_path(std::string_view target);

// The target as it may be logged: the query, which can carry a token, replaced by "?<redacted>".
std::string redact_target(std::string_view target);

// Percent-decodes `text` (and '+' as a space when `plus_is_space`); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// The segments of a request path, split at '/' first and then each percent-decoded, so that an
// encoded slash ("%2F") stays inside its segment: "/api/users/a%2Fb" -> {"api", "users", "a/b"}.
// One leading '/' is dropped; "" and "/" are one empty segment. nullopt when a segment holds a malformed
// escape. ('+' is not a space in a path.)
std::optional<std::vector<std::string>> path_segments(std::string_view path);

// The decoded value of the first query parameter `name`, or nullopt when absent or malformed.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

struct http_url {
    std::string host;  // empty when the URL was not accepted
    std::string port;
    std::string target;
    bool tls = false;  // https://
};

// Parses http://host[:port][/path] and https://host[:port][/path]; the result's host is empty
// for anything else. (The calls to backends, upstream/http_client.hpp, take both.)
http_url parse_http_url(std::string_view url);

// The URL again, for logs: scheme://host:port/target.
std::string to_string(const http_url& url);

}  // namespace zena::util
