#include "ws/ws_stream.hpp"

namespace zena::ws {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

namespace {

// The websocket stream over whichever transport the connection came on.
using any_ws = std::variant<websocket::stream<beast::tcp_stream>, websocket::stream<tls_stream>>;

any_ws make_ws(transport&& t) {
    if (auto* plain = std::get_if<beast::tcp_stream>(&t)) return any_ws{std::in_place_index<0>, std::move(*plain)};
    return any_ws{std::in_place_index<1>, std::move(std::get<tls_stream>(t))};
}

}  // namespace

ws_stream::ws_stream(transport&& stream, options opts) : ws_(make_ws(std::move(stream))) {
    visit([&](auto& ws) {
        // Beast's timer covers the opening and closing handshakes only; liveness after that is
        // the worker's heartbeat sweep, so no idle timer runs per connection.
        beast::get_lowest_layer(ws).expires_never();
        websocket::stream_base::timeout timeouts{};
        timeouts.handshake_timeout = opts.handshake_timeout;
        timeouts.idle_timeout = websocket::stream_base::none();
        timeouts.keep_alive_pings = false;
        ws.set_option(timeouts);
        ws.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(beast::http::field::server, "zena-realtime"); }));
        ws.read_message_max(opts.max_message_bytes);
        if (opts.permessage_deflate) {
            websocket::permessage_deflate pmd;
            pmd.server_enable = true;
            pmd.server_max_window_bits = 15;
            pmd.client_max_window_bits = 15;
            pmd.compLevel = 6;
            pmd.memLevel = 8;
            pmd.msg_size_threshold = 64;  // smaller messages go uncompressed: deflate would not pay
            ws.set_option(pmd);
        }
        ws.auto_fragment(false);
        ws.control_callback(
            [this, &ws, on_pong = std::move(opts.on_pong)](websocket::frame_type kind, beast::string_view) {
                if (kind == websocket::frame_type::pong && on_pong) on_pong();
                // RFC 6455 §7.4.2: codes from 5000 up are not defined, and Beast lets them
                // through. Failing the connection (dropping it, as for other protocol errors we
                // cannot answer with a close frame) is what the RFC asks. The frame layer of the
                // performance work answers 1002 instead.
                if (kind == websocket::frame_type::close && ws.reason().code >= 5000) terminate();
            });
    });
}

ws_stream::~ws_stream() = default;

void ws_stream::async_accept(const beast::http::request<beast::http::string_body>& request,
                             std::string_view subprotocol, completion done) {
    visit([&](auto& ws) {
        if (!subprotocol.empty()) {
            ws.set_option(
                websocket::stream_base::decorator([p = std::string{subprotocol}](websocket::response_type& res) {
                    res.set(beast::http::field::server, "zena-realtime");
                    res.set(beast::http::field::sec_websocket_protocol, p);
                }));
        }
        ws.async_accept(request, std::move(done));
    });
}

void ws_stream::async_read(beast::flat_buffer& buffer, read_completion done) {
    visit([&](auto& ws) { ws.async_read(buffer, std::move(done)); });
}

bool ws_stream::got_text() const {
    return std::visit([](const auto& ws) { return ws.got_text(); }, ws_);
}

void ws_stream::async_write(boost::asio::const_buffer data, bool text, completion done) {
    visit([&](auto& ws) {
        ws.text(text);
        ws.async_write(data, [done = std::move(done)](boost::system::error_code ec, std::size_t) { done(ec); });
    });
}

void ws_stream::async_ping(completion done) {
    visit([&](auto& ws) { ws.async_ping({}, std::move(done)); });
}

void ws_stream::async_close(std::uint16_t code, std::string_view reason, completion done) {
    visit([&](auto& ws) {
        ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason), std::move(done));
    });
}

void ws_stream::terminate() {
    visit([](auto& ws) {
        boost::system::error_code ignored;
        auto& socket = beast::get_lowest_layer(ws).socket();
        socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
    });
}

}  // namespace zena::ws
