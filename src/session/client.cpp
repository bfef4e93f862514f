#include "session/client.hpp"

#include <exception>
#include <limits>

#include "protocol/envelope.hpp"
#include "protocol/json_reader.hpp"
#include "protocol/json_writer.hpp"

namespace zena::session {

using ws::close_code;

client::client(ws::transport&& stream, ws::endpoint::options opts, loop& home, shared& services,
               std::optional<auth::jwt_result> auth)
    : hub::connection(services.next_connection_id.fetch_add(1, std::memory_order_relaxed),
                      auth ? std::move(auth->identity.user_id) : std::string{}),
      endpoint(std::move(stream), home.flush, opts),
      home_(home),
      services_(services),
      message_rate_(message_rate(services.settings)),
      excess_allowance_(excess_rate(services.settings)),
      // No token in the handshake: a missing token (1008 at once), unless the deployment lets
      // the client send it in-band as its first message (websocket.inband_auth).
      auth_error_(auth                            ? auth->error
                  : services.settings.inband_auth ? auth::jwt_error::none
                                                  : auth::jwt_error::missing),
      awaiting_token_(!auth && services.settings.inband_auth) {
    if (auth) handshake_deadline_ = deadline_of(auth->identity.expires_at);
}

void client::run(std::string response, std::string_view already_read) {
    // The handshake's verdict first: what the client sent after its request is read after it.
    if (auth_error_ != auth::jwt_error::none) {
        observability::metrics::add(services_.metrics.auth_failures);
        const auto reason = auth::to_string(auth_error_);
        spdlog::info("connection refused reason=\"{}\" code=1008", reason);
        endpoint::close(static_cast<std::uint16_t>(close_code::policy_violation), reason);
        return start(std::move(response), {});
    }
    if (awaiting_token_) {
        auth_timer_ = std::make_unique<boost::asio::steady_timer>(home_.io);
        auth_timer_->expires_after(services_.settings.auth_timeout);
        auth_timer_->async_wait([self = self()](boost::system::error_code timer_ec) {
            if (timer_ec || !self->awaiting_token_) return;
            observability::metrics::add(self->services_.metrics.auth_failures);
            spdlog::info("connection refused reason=\"authentication timeout\" code=1008");
            self->awaiting_token_ = false;
            self->close(close_code::policy_violation, "authentication timeout");
        });
    } else {
        admit(handshake_deadline_);
    }
    start(std::move(response), already_read);
}

void client::admit(std::int64_t deadline) {
    const auto limit = static_cast<std::size_t>(services_.settings.max_connections_per_user);
    if (services_.hubs.registry().connections_of(user_id()) >= limit) {
        observability::metrics::add(services_.metrics.connections_refused_user_limit);
        spdlog::info("connection refused user={} reason=\"too many connections for this user\" code=1013", user_id());
        return close(close_code::try_again_later, "too many connections for this user");
    }
    hub().add(self());
    registered_ = true;
    if (deadline != k_no_deadline) hub().set_expiry(*this, deadline);
    observability::metrics::add(services_.metrics.connections_opened);
    spdlog::debug("connection opened conn={} user={} thread={}", id(), user_id(), home_.index);

    const auto payload = protocol::json_object()
                             .add("connectionId", std::to_string(id()))
                             .add("userId", user_id())
                             .add("heartbeatIntervalMs", std::int64_t{services_.settings.heartbeat_interval.count()})
                             .add("serverTime", auth::unix_now_ms())
                             .str();
    send({protocol::make_event_frame("connected", payload), ws::delivery_class::ordered, 0});
}

void client::on_message(std::string_view data, bool text) {
    // Every data message counts against the rate, text or binary: a binary one costs the frame
    // layer as much (unmasking, inflating) and must not be a way around the over-rate close.
    if (closing() || !within_rate()) return;
    if (text) return handle_text(data);
    // Before the token, any message but `auth` is refused at once, binary ones too.
    if (awaiting_token_) return refuse_unauthenticated();
    // Every one is counted; only the log line is rate-limited.
    observability::metrics::add(services_.metrics.client_messages_invalid);
    auto& limiter = home_.invalid_message_log;
    if (limiter.allow(observability::monotonic_ms())) {
        spdlog::warn("client message ignored conn={} user={} error=binary_not_supported suppressed={}", id(), user_id(),
                     limiter.take_suppressed());
    }
}

std::int64_t client::deadline_of(std::optional<std::int64_t> expires_at) const {
    // A token without exp has no deadline.
    if (!expires_at) return k_no_deadline;
    return *expires_at + services_.verifier.settings().leeway.count();
}

bool client::within_rate() {
    const auto now = observability::monotonic_ms();
    if (message_rate_.take(message_rate(services_.settings), now)) return true;
    observability::metrics::add(services_.metrics.client_messages_rate_limited);
    if (!excess_allowance_.take(excess_rate(services_.settings), now) && !closing()) {
        observability::metrics::add(services_.metrics.rate_limit_closes);
        spdlog::info("connection closed conn={} user={} reason=message_rate code=1008", id(), user_id());
        close(close_code::policy_violation, "message rate limit exceeded");
    }
    return false;
}

void client::handle_text(std::string_view text) {
    const auto message = protocol::parse_client_message(text, services_.catalog);
    if (awaiting_token_) return handle_auth(message);
    if (message.error != protocol::client_error::none) {
        observability::metrics::add(services_.metrics.client_messages_invalid);
        auto& limiter = home_.invalid_message_log;
        if (limiter.allow(observability::monotonic_ms())) {
            spdlog::warn("client message ignored conn={} user={} error={} field={} type=\"{}\" suppressed={}", id(),
                         user_id(), protocol::to_string(message.error), message.field, message.type,
                         limiter.take_suppressed());
        }
        return;
    }
    if (message.spec->protocol) return handle_protocol_message(message);
    observability::metrics::add(services_.metrics.client_messages_valid);
    if (!services_.on_client_event) return;
    // The seed's rule: processing errors are logged, never sent to the client.
    try {
        services_.on_client_event({id(), user_id()}, message);
    } catch (const std::exception& e) {
        spdlog::error("client event processing failed conn={} user={} type={} error=\"{}\"", id(), user_id(),
                      message.type, e.what());
    }
}

std::optional<auth::jwt_identity> client::verify_inband(const protocol::client_message& message) {
    // The payload is {"token": string}, checked against the catalog; never logged.
    simdjson::dom::element payload;
    std::string_view view;
    // A copy: the verifier parses with the same thread-local parser, which reuses its buffer.
    std::string token;
    if (protocol::thread_json_parser().parse(message.payload_json).get(payload) == simdjson::SUCCESS &&
        payload["token"].get_string().get(view) == simdjson::SUCCESS) {
        token = view;
    }
    auto result = token.empty() ? auth::jwt_result{auth::jwt_error::missing, {}} : services_.verifier.verify(token);
    if (!result) {
        observability::metrics::add(services_.metrics.auth_failures);
        const auto reason = auth::to_string(result.error);
        spdlog::info("connection refused conn={} type={} reason=\"{}\" code=1008", id(), message.type, reason);
        close(close_code::policy_violation, reason);
        return std::nullopt;
    }
    return std::move(result.identity);
}

void client::refuse_unauthenticated() {
    awaiting_token_ = false;
    if (auth_timer_) auth_timer_->cancel();
    observability::metrics::add(services_.metrics.auth_failures);
    spdlog::info("connection refused conn={} reason=\"authentication required\" code=1008", id());
    close(close_code::policy_violation, "authentication required");
}

void client::handle_auth(const protocol::client_message& message) {
    if (message.error != protocol::client_error::none || message.type != "auth") return refuse_unauthenticated();
    awaiting_token_ = false;
    if (auth_timer_) auth_timer_->cancel();
    auto identity = verify_inband(message);
    if (!identity) return;
    set_user_id(std::move(identity->user_id));
    admit(deadline_of(identity->expires_at));
}

void client::handle_protocol_message(const protocol::client_message& message) {
    // The protocol's own messages never go upstream.
    if (message.type == "ping") {
        // Liveness for clients that cannot see protocol pings (browsers).
        const auto pong = protocol::json_object().add("serverTime", auth::unix_now_ms()).str();
        send({protocol::make_event_frame("pong", pong), ws::delivery_class::ephemeral, 0});
        return;
    }
    if (message.type == "auth.refresh") {
        auto identity = verify_inband(message);
        if (!identity) return;
        if (identity->user_id != user_id()) {
            spdlog::info("connection closed conn={} user={} reason=\"refresh token names another user\" code=1008",
                         id(), user_id());
            return close(close_code::policy_violation, "token names another user");
        }
        observability::metrics::add(services_.metrics.tokens_refreshed);
        // A token without exp lifts the deadline.
        hub().set_expiry(*this, deadline_of(identity->expires_at));
        return;
    }
    // `auth` once authenticated: nothing to do.
}

bool client::send(const ws::outbound& message) {
    switch (enqueue(message)) {
        case queued::yes: return true;
        case queued::replaced: observability::metrics::add(services_.metrics.messages_coalesced); return true;
        case queued::dropped: observability::metrics::add(services_.metrics.messages_dropped_ephemeral); return false;
        case queued::refused: return false;
        case queued::full: break;
    }
    observability::metrics::add(services_.metrics.slow_consumer_closes);
    spdlog::info("connection closed conn={} user={} reason=slow_consumer", id(), user_id());
    static const auto behind = protocol::make_event_frame("connection.behind", R"({"reason":"send_queue_full"})");
    endpoint::close(static_cast<std::uint16_t>(close_code::slow_consumer), "send queue full", behind);
    return false;
}

void client::close(ws::close_code code, std::string_view reason) {
    endpoint::close(static_cast<std::uint16_t>(code), reason);
}

bool client::heartbeat() {
    // A close not finished in time ends on the endpoint's own timer.
    if (closing()) return true;
    if (awaiting_pong_) {
        spdlog::info("connection terminated conn={} user={} reason=heartbeat_timeout", id(), user_id());
        terminate();
        return false;
    }
    awaiting_pong_ = true;
    ping();
    return true;
}

void client::on_end() {
    if (auth_timer_) auth_timer_->cancel();
    if (!registered_) return;
    registered_ = false;
    observability::metrics::add(services_.metrics.connections_closed);
    spdlog::debug("connection closed conn={} user={}", id(), user_id());
    hub().remove(*this);
}

}  // namespace zena::session
