#pragma once
// The echo endpoint for conformance testing (`/echo`, only with ZENA_TEST_ECHO=1): a WebSocket
// that needs no token and sends every text or binary message back as it came. It runs the same
// frame layer, limits and close handling as real connections, so outside conformance tools
// (and tests/conformance) can drive every RFC 6455 / 7692 case without a user or the hub.
//
// Threading: like session::client, lives on its loop's thread. Echoes wait in the endpoint's send
// queue, bounded by websocket.send_queue_max_bytes; a client that sends without reading is
// closed with 4000 like any slow consumer.

#include <memory>
#include <string_view>

#include "ws/endpoint.hpp"

namespace zena::net {

class echo_session : public ws::endpoint {
public:
    echo_session(ws::transport&& stream, ws::endpoint::options opts, ws::flush_queue& flush)
        : endpoint(std::move(stream), flush, opts) {}

private:
    void on_message(std::string_view data, bool text) override;
    void on_end() override {}
};

}  // namespace zena::net
