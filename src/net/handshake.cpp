#include "net/handshake.hpp"

#include <algorithm>

#include "auth/token_source.hpp"
#include "protocol/msgpack.hpp"
#include "ws/frame.hpp"

namespace zena::net {

bool valid_websocket_key(std::string_view key) {
    if (key.size() != 24 || !key.ends_with("==")) return false;
    const auto body = key.substr(0, 22);
    const bool alphabet = std::all_of(body.begin(), body.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    });
    // 22 characters carry 132 bits; the 4 after the 128th must be zero.
    const char last = body.back();
    return alphabet && (last == 'A' || last == 'Q' || last == 'g' || last == 'w');
}

std::string upgrade_response(std::string_view key, std::string_view subprotocol, std::string_view extensions) {
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nServer: zena-realtime\r\n"
        "Sec-WebSocket-Accept: ";
    out += ws::accept_key(key);
    if (!subprotocol.empty()) {
        out += "\r\nSec-WebSocket-Protocol: ";
        out += subprotocol;
    }
    if (!extensions.empty()) {
        out += "\r\nSec-WebSocket-Extensions: ";
        out += extensions;
    }
    out += "\r\n\r\n";
    return out;
}

std::string_view choose_subprotocol(std::string_view offered) {
    if (auth::offers_subprotocol(offered, protocol::k_msgpack_subprotocol)) return protocol::k_msgpack_subprotocol;
    if (auth::offers_subprotocol(offered, auth::k_subprotocol)) return auth::k_subprotocol;
    return {};
}

}  // namespace zena::net
