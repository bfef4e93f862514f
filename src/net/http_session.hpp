#pragma once
// One HTTP connection: reads requests (bounded head, body and time), routes them, and hands a
// WebSocket upgrade on /ws to a ws_session (and /echo to an echo_session when
// websocket.test_echo is on). Routes: /ws, /api/* (server_api), /healthz,
// /readyz, /metrics; anything else 404.
//
// Threading: lives on its worker's thread. An API reply may be produced on another thread; it
// is posted back here before it is written.

#include <memory>
#include <optional>

#include "net/services.hpp"

namespace zena::net {

namespace beast = boost::beast;
namespace http = boost::beast::http;

// Over plain TCP (`http_session`) or TLS (`https_session`, when server.tls_cert_file is set);
// both are instantiated in http_session.cpp.
template <typename Stream>
class basic_http_session : public std::enable_shared_from_this<basic_http_session<Stream>> {
public:
    basic_http_session(Stream&& stream, worker& worker, services& services);
    void run();

private:
    using response = http::response<http::string_body>;

    void do_read();
    void on_header(beast::error_code ec);
    void read_body();
    void on_read(beast::error_code ec, std::size_t bytes);
    void route(http::request<http::string_body>& request);
    // The admission checks (origin, capacity, address), then the WebSocket: a ws_session, or an
    // echo_session for /echo (websocket.test_echo).
    void upgrade(http::request<http::string_body>&& request, bool echo);
    // The connection's stream, handed to the WebSocket endpoint after the upgrade.
    ws::transport take_transport();
    // 426 for a plain request on a WebSocket path.
    void upgrade_required();
    void respond(http::status status, std::string body, std::string_view content_type = "application/json");
    void write(const std::shared_ptr<response>& res);
    void on_write(bool keep_alive, beast::error_code ec);
    void shutdown(boost::asio::socket_base::shutdown_type what);

    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    worker& worker_;
    services& services_;
    bool keep_alive_ = false;
    unsigned version_ = 11;
};

using http_session = basic_http_session<beast::tcp_stream>;
using https_session = basic_http_session<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace zena::net
