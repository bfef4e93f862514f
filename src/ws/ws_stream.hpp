#pragma once
// A server-side WebSocket stream over TCP whose asynchronous operations are plain functions,
// not templates: Beast's websocket composed operations are instantiated once, in
// ws_stream.cpp, instead of in every file that drives a connection. Each operation costs one
// std::function; the frame layer of the performance work replaces this class whole.
//
// Threading: like the Beast stream it wraps, used from its connection's thread only. At most
// one read, one write, one ping and one close may be outstanding at once.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>
#include <variant>

#include "net/beast_fwd.hpp"

namespace zena::ws {

// What a connection runs on: plain TCP, or TLS over TCP (server.tls_cert_file).
using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
using transport = std::variant<boost::beast::tcp_stream, tls_stream>;

class ws_stream {
public:
    using completion = std::function<void(boost::system::error_code)>;
    using read_completion = std::function<void(boost::system::error_code, std::size_t)>;

    struct options {
        std::chrono::milliseconds handshake_timeout;  // opening and closing handshakes
        std::size_t max_message_bytes;                // larger client messages close with 1009
        std::function<void()> on_pong;                // called for every pong received
        bool permessage_deflate = false;              // negotiate RFC 7692 when offered
    };

    ws_stream(transport&& stream, options opts);
    ~ws_stream();
    ws_stream(const ws_stream&) = delete;
    ws_stream& operator=(const ws_stream&) = delete;

    // `subprotocol`, when not empty, is named in the response's Sec-WebSocket-Protocol.
    void async_accept(const boost::beast::http::request<boost::beast::http::string_body>& request,
                      std::string_view subprotocol, completion done);
    void async_read(boost::beast::flat_buffer& buffer, read_completion done);
    // Whether the message last read was text (else binary).
    bool got_text() const;
    // Writes one whole message, text or binary.
    void async_write(boost::asio::const_buffer data, bool text, completion done);
    void async_ping(completion done);
    void async_close(std::uint16_t code, std::string_view reason, completion done);
    // Drops the TCP connection at once; pending operations complete with an error.
    void terminate();

private:
    template <typename Fn>
    decltype(auto) visit(Fn&& fn) {
        return std::visit(std::forward<Fn>(fn), ws_);
    }

    std::variant<boost::beast::websocket::stream<boost::beast::tcp_stream>, boost::beast::websocket::stream<tls_stream>>
        ws_;
};

}  // namespace zena::ws
