#include "ws/ws_stream.hpp"

namespace zena::ws {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

ws_stream::ws_stream(beast::tcp_stream&& stream, options opts) : ws_(std::move(stream)) {
    // Beast's timer covers the opening and closing handshakes only; liveness after that is the
    // worker's heartbeat sweep, so no idle timer runs per connection.
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = opts.handshake_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "zena-realtime"); }));
    ws_.read_message_max(opts.max_message_bytes);
    ws_.auto_fragment(false);
    ws_.control_callback([on_pong = std::move(opts.on_pong)](websocket::frame_type kind, beast::string_view) {
        if (kind == websocket::frame_type::pong && on_pong) on_pong();
    });
}

ws_stream::~ws_stream() = default;

void ws_stream::async_accept(const beast::http::request<beast::http::string_body>& request,
                             std::string_view subprotocol, completion done) {
    if (!subprotocol.empty()) {
        ws_.set_option(websocket::stream_base::decorator([p = std::string{subprotocol}](websocket::response_type& res) {
            res.set(beast::http::field::server, "zena-realtime");
            res.set(beast::http::field::sec_websocket_protocol, p);
        }));
    }
    ws_.async_accept(request, std::move(done));
}

void ws_stream::async_read(beast::flat_buffer& buffer, read_completion done) {
    ws_.async_read(buffer, std::move(done));
}

bool ws_stream::got_text() const { return ws_.got_text(); }

void ws_stream::async_write_text(boost::asio::const_buffer data, completion done) {
    ws_.text(true);
    ws_.async_write(data, [done = std::move(done)](boost::system::error_code ec, std::size_t) { done(ec); });
}

void ws_stream::async_ping(completion done) { ws_.async_ping({}, std::move(done)); }

void ws_stream::async_close(std::uint16_t code, std::string_view reason, completion done) {
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason), std::move(done));
}

void ws_stream::terminate() {
    boost::system::error_code ignored;
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
}

}  // namespace zena::ws
