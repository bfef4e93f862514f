#pragma once
// One WebSocket connection over Beast: the upgrade, the read loop, a bounded send queue,
// heartbeat pings and the close handshake. The hub sees it only as a hub::connection, so the
// framing underneath can be replaced without touching the hub.
//
// Threading: lives on its worker's thread; every method runs there. Owned by its pending
// asynchronous operations and, once authenticated, by its worker's hub, which drops it when the
// read loop ends.
//
// When behind: a latest-class frame replaces a queued one with the same key; an ephemeral one is
// dropped while frames wait. When full: an ordered frame that would take the queued bytes past
// settings.send_queue_max_bytes is refused, the waiting frames are dropped, the connection is
// sent {"type":"connection.behind"} and closed with 4000 (slow_consumer). A publisher never
// waits.

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "auth/jwt.hpp"
#include "hub/connection.hpp"
#include "net/services.hpp"
#include "util/token_bucket.hpp"
#include "ws/ws_stream.hpp"

namespace zena::ws {

namespace beast = boost::beast;
namespace http = boost::beast::http;

class ws_session final : public hub::connection, public std::enable_shared_from_this<ws_session> {
public:
    // `auth` is the outcome of the token check done on the upgrade request: a failure still
    // completes the upgrade and then closes with 1008 and the reason, as the seed requires.
    // nullopt: the handshake carried no token, and the first message must be an `auth` message
    // within websocket.auth_timeout_ms. `ticket` is the connection's share of the limits.
    ws_session(transport&& stream, net::worker& worker, net::services& services, net::admission ticket,
               std::optional<auth::jwt_result> auth);

    // Beast builds its handshake response from `request` at once; it need not outlive the call.
    // `subprotocol`: what to answer in Sec-WebSocket-Protocol (empty: nothing).
    void run(const http::request<http::string_body>& request, std::string_view subprotocol);

    bool send(const protocol::outbound& message) override;
    void close(protocol::close_code code, std::string_view reason) override;
    bool heartbeat() override;

private:
    void on_accept(beast::error_code ec);
    void do_read();
    void on_read(beast::error_code ec, std::size_t bytes);
    void handle_text(std::string_view text);
    // The token checked: joins the hub (unless the user has too many connections) and sends
    // the welcome.
    void admit(std::optional<std::int64_t> expires_at);
    // When the connection closes for its token's `exp` (seconds; with the configured leeway).
    std::int64_t deadline_of(std::optional<std::int64_t> expires_at) const;
    // The first message of a connection without a token in its handshake.
    void handle_auth(const protocol::client_message& message);
    void handle_protocol_message(const protocol::client_message& message);
    // A token from an `auth` or `auth.refresh` message; nullopt (after closing) when refused.
    std::optional<auth::jwt_identity> verify_inband(const protocol::client_message& message);
    // Whether the client's message rate allows one more; closes a connection that keeps at it.
    bool within_rate();
    void do_write();
    void on_write(beast::error_code ec);
    bool enqueue(protocol::shared_frame frame, protocol::delivery_class delivery, std::uint64_t latest_key);
    // Drops the frames not yet being written, queues `last` (if any), and sends the close frame
    // once everything queued is written.
    void close_after(protocol::shared_frame last, protocol::close_code code, std::string_view reason);
    void start_close();
    void finish();

    ws_stream ws_;
    beast::flat_buffer read_buffer_;
    net::worker& worker_;
    net::services& services_;
    net::admission ticket_;
    auth::jwt_error auth_error_;
    bool awaiting_token_ = false;                          // no token yet: the first message must be `auth`
    std::optional<boost::asio::steady_timer> auth_timer_;  // only while awaiting_token_
    util::token_bucket message_rate_;                      // websocket.client_messages_per_second
    util::token_bucket excess_allowance_;                  // messages over the rate before a close
    struct queued {
        protocol::shared_frame frame;
        protocol::delivery_class delivery;
        std::uint64_t latest_key;
    };
    std::deque<queued> queue_;      // front is in flight while writing_
    std::uint16_t close_code_ = 0;  // the close to send once the queue drains
    std::string close_reason_;
    std::size_t queued_bytes_ = 0;
    bool registered_ = false;                       // in the hub
    bool writing_ = false;                          // an async_write is in flight (for queue_.front())
    bool closing_ = false;                          // close started or connection terminated: no more sends
    bool awaiting_pong_ = false;                    // a ping was sent and no pong has come back yet
    bool pinging_ = false;                          // an async_ping is in flight
    int close_ticks_ = 0;                           // heartbeat ticks seen while closing
    std::optional<std::int64_t> handshake_expiry_;  // exp of the handshake's token, until admit()
};

}  // namespace zena::ws
