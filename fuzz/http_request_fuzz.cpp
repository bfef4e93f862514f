// libFuzzer: the HTTP/1.1 request parser that reads every request head and body (Beast's,
// with the limits net/http_session sets: http.max_header_bytes 8 KiB, http.max_body_bytes
// 1 MiB), then what the server does first with a parsed request: route by path and look at
// the upgrade headers. The input may hold several pipelined requests. The framing check
// (net::refuse_transfer_encoding, RFC 9112 section 6.3) must accept a Transfer-Encoding only
// where Beast frames the body as chunked, and the path's segments must be split before they are
// decoded.
#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "auth/token_source.hpp"
#include "net/handshake.hpp"
#include "net/http_session.hpp"
#include "util/url.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    for (int requests = 0; requests < 16 && !rest.empty(); ++requests) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(8 * 1024);
        parser.body_limit(1024 * 1024);
        parser.eager(true);
        boost::beast::error_code ec;
        const auto used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
        if (ec == http::error::need_more) {
            parser.put_eof(ec);
        }
        if (ec || !parser.is_done()) return 0;
        rest.remove_prefix(used);
        const auto& request = parser.get();
        const std::string_view target(request.target().data(), request.target().size());
        std::vector<std::string_view> codings;
        for (auto [it, end] = request.equal_range(http::field::transfer_encoding); it != end; ++it) {
            codings.emplace_back(it->value().data(), it->value().size());
        }
        // Accepted: Beast reads a chunked body, so no body byte can be taken for a next request.
        if (!codings.empty() && !zena::net::refuse_transfer_encoding(request.version(), codings) && !parser.chunked()) {
            __builtin_trap();
        }
        const auto path = zena::util::target_path(target);
        (void)zena::util::redact_target(target);
        if (const auto segments = zena::util::path_segments(path)) {
            // One segment per '/' after the first: a decoded "%2F" never splits one.
            const auto slashes = static_cast<std::size_t>(std::count(path.begin(), path.end(), '/'));
            if (segments->size() != slashes + (path.starts_with('/') ? 0 : 1)) __builtin_trap();
        }
        if (boost::beast::websocket::is_upgrade(request)) {
            const auto key = request[http::field::sec_websocket_key];
            (void)zena::net::valid_websocket_key(std::string_view(key.data(), key.size()));
            const auto auth = request[http::field::authorization];
            const auto protocols = request[http::field::sec_websocket_protocol];
            (void)zena::auth::find_token(target, std::string_view(auth.data(), auth.size()),
                                         std::string_view(protocols.data(), protocols.size()));
        }
        if (used == 0) return 0;
    }
    return 0;
}
