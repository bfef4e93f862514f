#include "ws/ws_session.hpp"

#include <exception>
#include <limits>

#include "protocol/json_reader.hpp"
#include "protocol/json_writer.hpp"

namespace zena::ws {

using protocol::close_code;

namespace {

// Seconds of over-rate sending (at twice the rate) tolerated before the close.
constexpr double k_excess_seconds = 5;

}  // namespace

ws_session::ws_session(transport&& stream, net::worker& worker, net::services& services, net::admission ticket,
                       std::optional<auth::jwt_result> auth)
    : hub::connection(services.next_connection_id.fetch_add(1, std::memory_order_relaxed),
                      auth ? std::move(auth->identity.user_id) : std::string{}),
      ws_(std::move(stream),
          ws_stream::options{std::chrono::milliseconds(services.settings.handshake_timeout_ms),
                             static_cast<std::size_t>(services.settings.max_message_bytes),
                             [this] { awaiting_pong_ = false; }, services.settings.permessage_deflate}),
      worker_(worker),
      services_(services),
      ticket_(std::move(ticket)),
      auth_error_(auth ? auth->error : auth::jwt_error::none),
      awaiting_token_(!auth),
      message_rate_(services.settings.client_messages_per_second,
                    static_cast<double>(services.settings.client_messages_burst)),
      excess_allowance_(services.settings.client_messages_per_second,
                        services.settings.client_messages_per_second * k_excess_seconds) {
    if (auth) handshake_expiry_ = auth->identity.expires_at;
}

void ws_session::run(const http::request<http::string_body>& request, std::string_view subprotocol) {
    ws_.async_accept(request, subprotocol, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
}

void ws_session::on_accept(beast::error_code ec) {
    if (ec) return;  // handshake failed or timed out: nothing was registered
    if (auth_error_ != auth::jwt_error::none) {
        observability::metrics::add(services_.metrics.auth_failures);
        const auto reason = auth::to_string(auth_error_);
        spdlog::info("connection refused reason=\"{}\" code=1008", reason);
        closing_ = true;
        ws_.async_close(static_cast<std::uint16_t>(close_code::policy_violation), reason,
                        [self = shared_from_this()](beast::error_code) {});
        return;
    }
    if (awaiting_token_) {
        auth_timer_.emplace(worker_.io);
        auth_timer_->expires_after(std::chrono::milliseconds(services_.settings.auth_timeout_ms));
        auth_timer_->async_wait([self = shared_from_this()](beast::error_code timer_ec) {
            if (timer_ec || !self->awaiting_token_) return;
            observability::metrics::add(self->services_.metrics.auth_failures);
            spdlog::info("connection refused reason=\"authentication timeout\" code=1008");
            self->awaiting_token_ = false;
            self->close(close_code::policy_violation, "authentication timeout");
        });
        return do_read();
    }
    admit(handshake_expiry_);
    do_read();
}

void ws_session::admit(std::optional<std::int64_t> expires_at) {
    const auto limit = static_cast<std::size_t>(services_.settings.max_connections_per_user);
    if (services_.registry.connections_of(user_id()) >= limit) {
        observability::metrics::add(services_.metrics.connections_refused_user_limit);
        spdlog::info("connection refused user={} reason=\"too many connections for this user\" code=1013", user_id());
        return close(close_code::try_again_later, "too many connections for this user");
    }
    worker_.hub.add(shared_from_this());
    registered_ = true;
    if (expires_at) worker_.hub.set_expiry(id(), deadline_of(expires_at));
    observability::metrics::add(services_.metrics.connections_opened);
    spdlog::debug("connection opened conn={} user={} thread={}", id(), user_id(), worker_.index);

    const auto payload = protocol::json_object()
                             .add("connectionId", std::to_string(id()))
                             .add("userId", user_id())
                             .add("heartbeatIntervalMs", services_.settings.heartbeat_interval_ms)
                             .add("serverTime", auth::unix_now_ms())
                             .str();
    enqueue(protocol::make_event_frame("connected", payload), protocol::delivery_class::ordered, 0);
}

void ws_session::do_read() {
    ws_.async_read(read_buffer_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t bytes) { self->on_read(ec, bytes); });
}

void ws_session::on_read(beast::error_code ec, std::size_t) {
    if (ec) return finish();
    if (ws_.got_text()) {
        const auto data = read_buffer_.cdata();
        handle_text(std::string_view(static_cast<const char*>(data.data()), data.size()));
    } else if (worker_.invalid_message_log.allow(observability::monotonic_ms())) {
        observability::metrics::add(services_.metrics.client_messages_invalid);
        spdlog::warn("client message ignored conn={} user={} error=binary_not_supported", id(), user_id());
    }
    read_buffer_.consume(read_buffer_.size());
    do_read();
}

std::int64_t ws_session::deadline_of(std::optional<std::int64_t> expires_at) const {
    // A token without exp has no deadline.
    if (!expires_at) return std::numeric_limits<std::int64_t>::max();
    return *expires_at + services_.verifier.settings().leeway.count();
}

bool ws_session::within_rate() {
    const auto now = observability::monotonic_ms();
    if (message_rate_.take(now)) return true;
    observability::metrics::add(services_.metrics.client_messages_rate_limited);
    if (!excess_allowance_.take(now) && !closing_) {
        observability::metrics::add(services_.metrics.rate_limit_closes);
        spdlog::info("connection closed conn={} user={} reason=message_rate code=1008", id(), user_id());
        close(close_code::policy_violation, "message rate limit exceeded");
    }
    return false;
}

void ws_session::handle_text(std::string_view text) {
    if (closing_ || !within_rate()) return;
    const auto message = protocol::parse_client_message(text, services_.catalog);
    if (awaiting_token_) return handle_auth(message);
    if (message.error != protocol::client_error::none) {
        observability::metrics::add(services_.metrics.client_messages_invalid);
        auto& limiter = worker_.invalid_message_log;
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

std::optional<auth::jwt_identity> ws_session::verify_inband(const protocol::client_message& message) {
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

void ws_session::handle_auth(const protocol::client_message& message) {
    awaiting_token_ = false;
    if (auth_timer_) auth_timer_->cancel();
    if (message.error != protocol::client_error::none || message.type != "auth") {
        observability::metrics::add(services_.metrics.auth_failures);
        spdlog::info("connection refused conn={} reason=\"authentication required\" code=1008", id());
        return close(close_code::policy_violation, "authentication required");
    }
    auto identity = verify_inband(message);
    if (!identity) return;
    set_user_id(std::move(identity->user_id));
    admit(identity->expires_at);
}

void ws_session::handle_protocol_message(const protocol::client_message& message) {
    // The protocol's own messages never go upstream.
    if (message.type == "ping") {
        // Liveness for clients that cannot see protocol pings (browsers).
        const auto pong = protocol::json_object().add("serverTime", auth::unix_now_ms()).str();
        enqueue(protocol::make_event_frame("pong", pong), protocol::delivery_class::ephemeral, 0);
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
        worker_.hub.set_expiry(id(), deadline_of(identity->expires_at));
        return;
    }
    // `auth` once authenticated: nothing to do.
}

bool ws_session::send(const protocol::outbound& message) {
    return enqueue(message.frame, message.delivery, message.latest_key);
}

bool ws_session::enqueue(protocol::shared_frame frame, protocol::delivery_class delivery, std::uint64_t latest_key) {
    using protocol::delivery_class;
    if (closing_) return false;
    const std::size_t waiting_from = writing_ ? 1 : 0;  // the front is on the wire, not waiting
    if (delivery == delivery_class::latest) {
        for (auto it = queue_.begin() + static_cast<std::ptrdiff_t>(waiting_from); it != queue_.end(); ++it) {
            if (it->delivery == delivery_class::latest && it->latest_key == latest_key) {
                queued_bytes_ = queued_bytes_ - it->frame->size() + frame->size();
                it->frame = std::move(frame);  // only the newest is worth sending
                observability::metrics::add(services_.metrics.messages_coalesced);
                return true;
            }
        }
    } else if (delivery == delivery_class::ephemeral && queue_.size() > waiting_from) {
        observability::metrics::add(services_.metrics.messages_dropped_ephemeral);
        return false;  // behind: not worth queueing
    }
    const auto limit = static_cast<std::size_t>(services_.settings.send_queue_max_bytes);
    if (queued_bytes_ + frame->size() > limit) {
        observability::metrics::add(services_.metrics.slow_consumer_closes);
        spdlog::info("connection closed conn={} user={} reason=slow_consumer queued_bytes={}", id(), user_id(),
                     queued_bytes_);
        static const auto behind = protocol::make_event_frame("connection.behind", R"({"reason":"send_queue_full"})");
        close_after(behind, close_code::slow_consumer, "send queue full");
        return false;
    }
    queued_bytes_ += frame->size();
    queue_.push_back({std::move(frame), delivery, latest_key});
    if (!writing_) do_write();
    return true;
}

void ws_session::do_write() {
    writing_ = true;
    ws_.async_write(boost::asio::buffer(*queue_.front().frame), true,
                    [self = shared_from_this()](beast::error_code ec) { self->on_write(ec); });
}

void ws_session::on_write(beast::error_code ec) {
    writing_ = false;
    queued_bytes_ -= queue_.front().frame->size();
    queue_.pop_front();
    if (ec) {
        // The read loop sees the same failure and ends the session.
        queue_.clear();
        queued_bytes_ = 0;
        return;
    }
    if (!queue_.empty()) return do_write();
    if (close_code_ != 0) start_close();
}

void ws_session::close(protocol::close_code code, std::string_view reason) { close_after(nullptr, code, reason); }

void ws_session::close_after(protocol::shared_frame last, protocol::close_code code, std::string_view reason) {
    if (closing_) return;
    closing_ = true;
    while (queue_.size() > (writing_ ? 1U : 0U)) {
        queued_bytes_ -= queue_.back().frame->size();
        queue_.pop_back();
    }
    close_code_ = static_cast<std::uint16_t>(code);
    close_reason_ = std::string{reason};
    if (last) {
        queued_bytes_ += last->size();
        queue_.push_back({std::move(last), protocol::delivery_class::ordered, 0});
    }
    if (writing_) return;  // on_write continues with the queue, then closes
    if (!queue_.empty()) return do_write();
    start_close();
}

void ws_session::start_close() {
    ws_.async_close(close_code_, close_reason_, [self = shared_from_this()](beast::error_code) {});
}

bool ws_session::heartbeat() {
    if (closing_) {
        // A close stuck behind a write the peer never reads (a stalled slow consumer) would
        // wait forever: one tick is allowed for it, the next one terminates.
        if (close_ticks_++ == 0) return true;
        spdlog::info("connection terminated conn={} user={} reason=close_timeout", id(), user_id());
        ws_.terminate();
        return false;
    }
    if (awaiting_pong_) {
        spdlog::info("connection terminated conn={} user={} reason=heartbeat_timeout", id(), user_id());
        ws_.terminate();
        return false;
    }
    awaiting_pong_ = true;
    if (!pinging_) {
        pinging_ = true;
        ws_.async_ping([self = shared_from_this()](beast::error_code) { self->pinging_ = false; });
    }
    return true;
}

void ws_session::finish() {
    closing_ = true;
    if (auth_timer_) auth_timer_->cancel();
    if (!registered_) return;
    registered_ = false;
    observability::metrics::add(services_.metrics.connections_closed);
    spdlog::debug("connection closed conn={} user={}", id(), user_id());
    worker_.hub.remove(id());
}

}  // namespace zena::ws
