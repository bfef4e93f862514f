#include "ws/echo_session.hpp"

namespace zena::ws {

echo_session::echo_session(transport&& stream, net::services& services, net::admission ticket)
    : ws_(std::move(stream), ws_stream::options{std::chrono::milliseconds(services.settings.handshake_timeout_ms),
                                                static_cast<std::size_t>(services.settings.max_message_bytes),
                                                {},
                                                services.settings.permessage_deflate}),
      ticket_(std::move(ticket)) {}

void echo_session::run(const boost::beast::http::request<boost::beast::http::string_body>& request) {
    ws_.async_accept(request, {}, [self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->do_read();
    });
}

void echo_session::do_read() {
    ws_.async_read(buffer_,
                   [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_read(ec); });
}

void echo_session::on_read(boost::system::error_code ec) {
    if (ec) return;  // closed (the stream answered the close handshake) or failed (it sent the close code)
    ws_.async_write(buffer_.cdata(), ws_.got_text(), [self = shared_from_this()](boost::system::error_code write_ec) {
        if (write_ec) return;
        self->buffer_.consume(self->buffer_.size());
        self->do_read();
    });
}

}  // namespace zena::ws
