// libFuzzer: the WebSocket frame parser that reads every client byte after the upgrade. Today
// that is Boost.Beast's websocket::stream, set up as ws/ws_stream sets it (message limit,
// permessage-deflate on, so inflate is fuzzed too). The input is what the client sends after a
// handshake that negotiated deflate; the server side reads messages until the input ends or
// it fails the connection. Runs over a socketpair, in one thread, synchronously.
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cstddef>
#include <cstdint>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using local = asio::local::stream_protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    asio::io_context io;
    local::socket server(io);
    local::socket client(io);
    asio::local::connect_pair(server, client);

    websocket::stream<local::socket> ws(std::move(server));
    ws.read_message_max(64 * 1024);
    websocket::permessage_deflate pmd;
    pmd.server_enable = true;
    ws.set_option(pmd);

    beast::http::request<beast::http::empty_body> upgrade{beast::http::verb::get, "/echo", 11};
    upgrade.set(beast::http::field::host, "fuzz");
    upgrade.set(beast::http::field::upgrade, "websocket");
    upgrade.set(beast::http::field::connection, "Upgrade");
    upgrade.set(beast::http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    upgrade.set(beast::http::field::sec_websocket_version, "13");
    upgrade.set(beast::http::field::sec_websocket_extensions, "permessage-deflate; client_max_window_bits");
    beast::error_code ec;
    ws.accept(upgrade, ec);  // writes the 101 to the client side, which nobody reads: it fits the buffer
    if (ec) return 0;

    asio::write(client, asio::buffer(data, size), ec);
    client.shutdown(local::socket::shutdown_send, ec);
    beast::flat_buffer buffer;
    for (int messages = 0; messages < 1000; ++messages) {
        ws.read(buffer, ec);
        if (ec) break;
        buffer.consume(buffer.size());
    }
    return 0;
}
