#pragma once
// The application's connection: one user's WebSocket. The token check (in the handshake or a
// first `auth` message), joining the hub, client events routed upstream, the message rate,
// heartbeat and token expiry. Its frames, send queue and close handshake are the endpoint's (the
// frame layer, ws/); the hub sees it only as a hub::connection.
//
// Threading: lives on its loop's thread; every method runs there. Owned by its pending
// asynchronous operations and, once authenticated, by its thread's hub, which drops it when the
// connection ends.
//
// When behind (see endpoint): a latest-class frame replaces a queued one with the same key; an
// ephemeral one is dropped while frames wait. When full: an ordered frame that would take the
// queued bytes past websocket.send_queue_max_bytes is refused, the waiting frames are dropped,
// the connection is sent {"type":"connection.behind"} and closed with 4000 (slow_consumer). A
// publisher never waits.

#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "hub/connection.hpp"
#include "session/context.hpp"
#include "util/token_bucket.hpp"
#include "ws/endpoint.hpp"

namespace zena::session {

class client : public hub::connection, public ws::endpoint {
public:
    // `auth` is the outcome of the token check done on the upgrade request: a failure still
    // completes the upgrade and then closes with 1008 and the reason, as the seed requires.
    // nullopt: the handshake carried no token. With websocket.inband_auth the first message must
    // then be an `auth` message within websocket.auth_timeout_ms; without it (the default) the
    // connection is closed at once with 1008 `token missing`.
    // `since`: the personal channel's position the client presented in its URL (empty: none).
    // `msgpack`: the client chose the zena-realtime.msgpack subprotocol: every message it gets is
    // the binary MessagePack twin of the JSON frame (protocol/msgpack), and its binary messages
    // are MessagePack client messages.
    client(ws::transport&& stream, ws::endpoint::options opts, loop& home, shared& services,
           std::optional<auth::jwt_result> auth, std::string since = {}, bool msgpack = false);
    ~client() override;
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // Sends the 101 `response` and starts the connection; `already_read`: bytes that came after
    // the upgrade request.
    void run(std::string response, std::string_view already_read);

    bool send(const ws::outbound& message) override;
    bool send_gated(hub::subscription& sub, const ws::outbound& message, std::string_view epoch,
                    std::uint64_t seq) override;
    bool subscribe_by_server(std::string_view channel) override;
    bool unsubscribe_by_server(std::string_view channel) override;
    void close(ws::close_code code, std::string_view reason) override;
    bool heartbeat() override;

private:
    std::shared_ptr<client> self() { return std::static_pointer_cast<client>(shared_from_this()); }
    void on_message(std::string_view data, bool text) override;
    void on_pong() override { awaiting_pong_ = false; }
    bool allow_ping() override { return within_rate(); }
    void on_end() override;
    void on_queue_drained() override;
    void handle_text(std::string_view text);
    // A binary message: MessagePack on a msgpack connection, decoded to JSON and handled as text.
    void handle_binary(std::string_view data);
    // One ignored client message: counted, and logged within the thread's log rate.
    void log_invalid(std::string_view error, std::string_view field, std::string_view type);
    // Closes with 4000 (slow_consumer) after {"type":"connection.behind"}.
    void close_behind();
    // The token checked: joins the hub (unless the user has too many connections), with the
    // token's deadline (deadline_of), and sends the welcome.
    void admit(std::int64_t deadline);
    // When the connection closes for its token's `exp` (seconds; with the configured leeway);
    // k_no_deadline for a token without exp.
    std::int64_t deadline_of(std::optional<std::int64_t> expires_at) const;
    // The first message of a connection without a token in its handshake.
    void handle_auth(const protocol::client_message& message);
    // A first message that is not a valid `auth` (or is binary): 1008 `authentication required`.
    void refuse_unauthenticated();
    void handle_protocol_message(const protocol::client_message& message);
    // A token from an `auth` or `auth.refresh` message; nullopt (after closing) when refused.
    std::optional<auth::jwt_identity> verify_inband(const protocol::client_message& message);
    // Whether the client's message rate allows one more; closes a connection that keeps at it.
    bool within_rate();

    // ---- channels (docs/channels.md)
    struct channel_hold;
    struct replay_job;
    struct channel_state;
    channel_state& channels();
    channel_hold* find_hold(std::string_view channel);
    void handle_subscribe(const protocol::client_message& message);
    void handle_unsubscribe(const protocol::client_message& message);
    void refuse_subscribe(std::string_view channel, std::string_view reason);
    // The grant is given: the connection holds `channel` from now on and is answered (subscribed,
    // and the replay from `since`, if any).
    void take_channel(const std::string& channel, std::optional<std::string> since, bool by_server);
    // Lets go of a held channel; `reason` empty: the client asked.
    void drop_channel(std::string_view channel, std::string_view reason);
    // Reads `channel`'s position (and, from `since`, what was missed) for `sub`, whose gate holds
    // the live events meanwhile; then queues a replay job announced by `announce(top, recovered,
    // missed)`.
    using announce_fn =
        std::function<ws::outbound(const engine::position& top, std::optional<bool> recovered, std::size_t missed)>;
    void start_replay(const std::string& channel, hub::subscription& sub, std::optional<std::string> since,
                      announce_fn announce, std::function<void()> on_unavailable);
    // Sends the replays in order, at most half the send budget queued at once; the rest when the
    // socket drains.
    void pump_replays();
    void send_replays();  // pump_replays' sending
    // Ends `sub`'s hold on live events: the held ones go, but the duplicates of the replay.
    void release_gate(hub::subscription& sub, const engine::position& top);

    // ---- presence, typing, receipts (docs/presence.md)
    // Publishes a live (unstored) event on `channel`, leaving out `except`'s connections.
    void publish_live(const std::string& channel, std::string_view type, std::string payload, ws::delivery_class cls,
                      std::string_view except_user, hub::connection_id except_connection);
    // This connection in channel presence: joined when it takes a channel, left when it lets it go.
    void presence_join(const std::string& channel);
    void presence_leave(const std::string& channel);
    void handle_presence_get(const protocol::client_message& message);
    // typing.start (active) or typing.stop on a channel; false when the channel cannot carry it.
    bool handle_typing(std::string_view channel, bool active);
    void relay_typing(channel_hold& hold, bool active);
    void end_typing(channel_hold& hold);
    void handle_thread_view(const protocol::client_message& message);
    std::string presence_client() const;

    // The limits of the two buckets, from the settings (the buckets hold only their state).
    static util::token_rate message_rate(const config::settings& s) {
        return {s.client_messages_per_second, static_cast<double>(s.client_messages_burst)};
    }
    static util::token_rate excess_rate(const config::settings& s) {
        return {s.client_messages_per_second, s.client_messages_per_second * k_excess_seconds};
    }
    // Seconds of over-rate sending (at twice the rate) tolerated before the close.
    static constexpr double k_excess_seconds = 5;
    static constexpr std::int64_t k_no_deadline = std::numeric_limits<std::int64_t>::max();

    hub::hub& hub() { return services_.hubs.local(home_.index); }
    // The event-loop thread's own executor: engine answers come back through it.
    void on_home(std::function<void()> fn);

    // An idle connection is mostly this object: the fields are ordered to leave no padding.
    loop& home_;
    shared& services_;
    std::unique_ptr<boost::asio::steady_timer> auth_timer_;  // only while awaiting_token_
    util::token_bucket message_rate_;                        // websocket.client_messages_per_second
    util::token_bucket excess_allowance_;                    // messages over the rate before a close
    std::int64_t handshake_deadline_ = k_no_deadline;        // of the handshake's token, until admit()
    std::unique_ptr<channel_state> channels_;                // only once channels are used
    std::unique_ptr<std::string> since_;                     // the URL's position, until admit()
    auth::jwt_error auth_error_;
    bool awaiting_token_ = false;  // no token yet: the first message must be `auth`
    bool registered_ = false;      // in the hub
    bool awaiting_pong_ = false;   // a ping was sent and no pong has come back yet
    bool msgpack_ = false;         // the zena-realtime.msgpack subprotocol
};

}  // namespace zena::session
