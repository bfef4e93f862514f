#pragma once
// The echo endpoint for conformance testing (`/echo`, only with ZENA_TEST_ECHO=1): a WebSocket
// that needs no token and sends every text or binary message back as it came. It runs the same
// frame layer, limits and close handling as real connections, so outside conformance tools
// (and tests/conformance) can drive every RFC 6455 / 7692 case without a user or the hub.
//
// Threading: like ws_session, lives on its worker's thread. One message is echoed before the
// next is read, so its memory is bounded by websocket.max_message_bytes.

#include <memory>
#include <string_view>

#include "net/services.hpp"
#include "ws/ws_stream.hpp"

namespace zena::ws {

class echo_session : public std::enable_shared_from_this<echo_session> {
public:
    echo_session(transport&& stream, net::services& services, net::admission ticket);
    void run(const boost::beast::http::request<boost::beast::http::string_body>& request);

private:
    void do_read();
    void on_read(boost::system::error_code ec);

    ws_stream ws_;
    boost::beast::flat_buffer buffer_;
    net::admission ticket_;
};

}  // namespace zena::ws
