#include "session/client.hpp"

#include <algorithm>
#include <exception>
#include <limits>

#include <boost/asio/dispatch.hpp>

#include "protocol/channel.hpp"
#include "protocol/envelope.hpp"
#include "protocol/json_reader.hpp"
#include "protocol/json_writer.hpp"
#include "protocol/msgpack.hpp"

namespace zena::session {

using ws::close_code;

// A channel the connection holds (not its personal one).
struct client::channel_hold {
    std::string name;
    hub::subscription sub;
    bool by_server = false;                                   // the backend subscribed it
    std::unique_ptr<boost::asio::steady_timer> typing_timer;  // the timeout of this tab's last start
};

// One replay: the announcement (the welcome, or `subscribed`), then the missed events, then
// the gate's held live events.
struct client::replay_job {
    hub::subscription* sub;
    std::string channel;
    ws::outbound announce;
    std::vector<engine::stored_event> events;
    engine::position top;
    std::size_t next = 0;
    bool announced = false;
};

// What a connection that uses channels keeps: allocated on first use, so that a connection that
// never subscribes pays one pointer.
struct client::channel_state {
    explicit channel_state(const config::settings& s)
        : subscribes({s.channels_subscribes_per_second, static_cast<double>(s.channels_subscribes_burst)}) {}
    std::vector<std::unique_ptr<channel_hold>> held;
    std::vector<std::string> claims;  // the token's `channels` claim
    std::deque<replay_job> replays;
    util::token_bucket subscribes;
    std::size_t pending_grants = 0;  // subscribes waiting for the proxy: they count against the limit
};

namespace {

util::token_rate subscribe_rate(const config::settings& s) {
    return {s.channels_subscribes_per_second, static_cast<double>(s.channels_subscribes_burst)};
}

std::size_t history_read_limit(const config::namespace_settings& ns) {
    return static_cast<std::size_t>(std::max<std::int64_t>(ns.history_size, 1));
}

ws::outbound protocol_message(std::string_view type, const std::string& payload) {
    return {protocol::make_event_frame(type, payload), ws::delivery_class::ordered, 0};
}

}  // namespace

client::client(ws::transport&& stream, ws::endpoint::options opts, loop& home, shared& services,
               std::optional<auth::jwt_result> auth, std::string since, bool msgpack)
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
      awaiting_token_(!auth && services.settings.inband_auth),
      msgpack_(msgpack) {
    if (auth) handshake_deadline_ = deadline_of(auth->identity.expires_at);
    if (auth && !auth->identity.channels.empty()) channels().claims = std::move(auth->identity.channels);
    if (!since.empty()) since_ = std::make_unique<std::string>(std::move(since));
}

client::~client() = default;

client::channel_state& client::channels() {
    if (!channels_) channels_ = std::make_unique<channel_state>(services_.settings);
    return *channels_;
}

void client::on_home(std::function<void()> fn) { boost::asio::dispatch(home_.io, std::move(fn)); }

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
    // Live events of the personal channel wait behind its gate until the welcome (and the
    // replay of what was missed) is out.
    personal().gate = std::make_unique<hub::replay_gate>();
    hub().add(self());
    registered_ = true;
    if (deadline != k_no_deadline) hub().set_expiry(*this, deadline);
    observability::metrics::add(services_.metrics.connections_opened);
    spdlog::debug("connection opened conn={} user={} thread={}", id(), user_id(), home_.index);

    std::optional<std::string> since;
    if (since_) since = std::move(*since_);
    since_.reset();
    auto announce = [this](const engine::position& top, std::optional<bool> recovered, std::size_t missed) {
        protocol::json_object payload;
        payload.add("connectionId", std::to_string(id()))
            .add("userId", user_id())
            .add("heartbeatIntervalMs", std::int64_t{services_.settings.heartbeat_interval.count()})
            .add("serverTime", auth::unix_now_ms())
            .add("channel", protocol::personal_channel(user_id()));
        if (!top.epoch.empty()) payload.add("epoch", top.epoch).add("seq", top.seq);
        if (recovered) payload.add("recovered", *recovered).add("missed", std::uint64_t{missed});
        return protocol_message("connected", payload.str());
    };
    // The engine could not tell the position. A client that presented one is asked to come
    // back (1013): Redis paused or reconnecting has most likely kept what it missed, and a
    // welcome without a position would make it drop its own (the JS SDK then moved on from the
    // next live event: a silent gap). One that presented none is welcomed without a position.
    auto unavailable = [this, asked = since.has_value()] {
        if (asked) {
            spdlog::info("connection closed user={} reason=\"engine unavailable\" code=1013", user_id());
            return close(close_code::try_again_later, "the engine is unavailable: try again");
        }
        auto message = [&] {
            protocol::json_object payload;
            payload.add("connectionId", std::to_string(id()))
                .add("userId", user_id())
                .add("heartbeatIntervalMs", std::int64_t{services_.settings.heartbeat_interval.count()})
                .add("serverTime", auth::unix_now_ms())
                .add("channel", protocol::personal_channel(user_id()));
            if (asked) payload.add("recovered", false).add("missed", std::uint64_t{0});
            return protocol_message("connected", payload.str());
        }();
        send(message);
        release_gate(personal(), {});
    };
    start_replay(protocol::personal_channel(user_id()), personal(), std::move(since), std::move(announce),
                 std::move(unavailable));
}

void client::start_replay(const std::string& channel, hub::subscription& sub, std::optional<std::string> since,
                          announce_fn announce, std::function<void()> on_unavailable) {
    const auto ns = services_.settings.of_namespace(protocol::channel_namespace(channel));
    if (!sub.gate) sub.gate = std::make_unique<hub::replay_gate>();
    if (ns.history_size == 0) {
        // Live only: no position to tell, nothing to replay.
        auto& state = channels();
        state.replays.push_back(replay_job{&sub, channel, announce({}, std::nullopt, 0), {}, {}, 0, false});
        return pump_replays();
    }
    // The answer may come on another thread (a Redis engine): it is handled on this one, and
    // only if the connection still holds the channel through the same subscription.
    auto finish = [self = self(), channel, &sub, announce = std::move(announce),
                   on_unavailable = std::move(on_unavailable)](util::result<engine::history_page> page,
                                                               bool asked) mutable {
        self->on_home([self, channel, &sub, announce = std::move(announce), on_unavailable = std::move(on_unavailable),
                       page = std::move(page), asked]() mutable {
            if (self->closing() || !self->registered_) return;
            const auto* hold = self->find_hold(channel);
            const bool still_held = &sub == &self->personal() || (hold && &hold->sub == &sub);
            if (!still_held || !sub.gate) return;
            if (!page) {
                spdlog::warn("channel position unavailable conn={} channel={} error=\"{}\"", self->id(), channel,
                             page.message());
                return on_unavailable();
            }
            auto& p = *page;
            std::optional<bool> recovered;
            std::vector<engine::stored_event> events;
            if (asked) {
                recovered = p.recovered;
                if (p.recovered) events = std::move(p.events);
            }
            auto message = announce(p.top, recovered, events.size());
            self->channels().replays.push_back(
                replay_job{&sub, channel, std::move(message), std::move(events), p.top, 0, false});
            self->pump_replays();
        });
    };
    std::optional<engine::position> from;
    if (since) {
        if (const auto written = protocol::parse_position(*since)) {
            from = engine::position{std::string{written->epoch}, written->seq};
        } else {
            // Unreadable: read as lost, from no epoch this channel ever had.
            from = engine::position{"", 0};
        }
    }
    if (from) {
        services_.history.read(
            channel, std::move(from), history_read_limit(ns),
            [finish](util::result<engine::history_page> page) mutable { finish(std::move(page), true); });
    } else {
        services_.history.top(channel, [finish](util::result<engine::position> top) mutable {
            if (!top) return finish(util::error{top.message()}, false);
            finish(engine::history_page{std::move(*top), true, {}}, false);
        });
    }
}

void client::pump_replays() {
    if (!channels_) return;
    send_replays();
    want_drained(!channels_->replays.empty());  // the rest when the socket drains
}

void client::send_replays() {
    auto& jobs = channels_->replays;
    const auto budget = static_cast<std::size_t>(services_.settings.send_queue_max_bytes) / 2;
    while (!jobs.empty()) {
        if (closing()) return jobs.clear();
        auto& job = jobs.front();
        if (!job.announced) {
            job.announced = true;
            if (!send(job.announce)) return;
        }
        while (job.next < job.events.size()) {
            if (queued_bytes() >= budget) return;  // the rest once the socket drains
            if (!send(job.events[job.next++].message) && closing()) return;
        }
        auto* sub = job.sub;
        const auto top = std::move(job.top);
        jobs.pop_front();
        release_gate(*sub, top);
    }
}

void client::release_gate(hub::subscription& sub, const engine::position& top) {
    if (!sub.gate) return;
    auto held = std::move(sub.gate->held);
    sub.gate->held.clear();
    sub.gate->held_bytes = 0;
    sub.gate->holding = false;
    sub.gate->epoch = top.epoch;
    sub.gate->floor = top.seq;
    if (top.epoch.empty()) sub.gate.reset();  // nothing was replayed: no duplicate to fear
    for (auto& h : held) {
        if (sub.gate) {
            if (!sub.gate->fresh(h.epoch, h.seq)) continue;
            if (h.seq != 0) sub.gate.reset();  // later ones are all newer
        }
        send(h.message);
    }
}

bool client::send_gated(hub::subscription& sub, const ws::outbound& message, std::string_view epoch,
                        std::uint64_t seq) {
    auto& gate = *sub.gate;
    if (gate.holding) {
        // Behind a replay, as a connection that is behind: ephemeral events are dropped, the
        // others wait in order, within the send budget.
        if (message.delivery == ws::delivery_class::ephemeral || closing()) return false;
        gate.held_bytes += message.frame->wire().size();
        if (gate.held_bytes > static_cast<std::size_t>(services_.settings.send_queue_max_bytes)) {
            spdlog::info("connection closed conn={} user={} reason=slow_consumer (behind its replay)", id(), user_id());
            close_behind();
            return false;
        }
        gate.held.push_back({message, std::string{epoch}, seq});
        return true;
    }
    if (!gate.fresh(epoch, seq)) return false;  // it was in the replay
    if (seq != 0) sub.gate.reset();
    return send(message);
}

void client::on_queue_drained() {
    if (channels_ && !channels_->replays.empty()) pump_replays();
}

client::channel_hold* client::find_hold(std::string_view channel) {
    if (!channels_) return nullptr;
    for (auto& h : channels_->held) {
        if (h->name == channel) return h.get();
    }
    return nullptr;
}

void client::refuse_subscribe(std::string_view channel, std::string_view reason) {
    observability::metrics::add(services_.metrics.subscribes_refused);
    send(protocol_message("subscribe.error",
                          protocol::json_object().add("channel", channel).add("reason", reason).str()));
}

void client::handle_subscribe(const protocol::client_message& message) {
    simdjson::dom::element payload;
    std::string channel;
    std::optional<std::string> since;
    std::string token;
    if (protocol::thread_json_parser().parse(message.payload_json).get(payload) == simdjson::SUCCESS) {
        std::string_view v;
        if (payload["channel"].get_string().get(v) == simdjson::SUCCESS) channel = v;
        if (payload["since"].get_string().get(v) == simdjson::SUCCESS) since = std::string{v};
        if (payload["token"].get_string().get(v) == simdjson::SUCCESS) token = v;
    }
    auto& state = channels();
    // The channel echoed in a refusal is bounded: what the client sent may be anything.
    const auto shown = std::string_view(channel).substr(0, protocol::k_max_channel_bytes);
    if (!state.subscribes.take(subscribe_rate(services_.settings), observability::monotonic_ms())) {
        return refuse_subscribe(shown, "rate_limited");
    }
    if (!protocol::subscribable_channel(channel)) return refuse_subscribe(shown, "invalid_channel");
    if (auto* hold = find_hold(channel)) {
        // Held already: answered again (with the replay asked for), nothing else changes.
        if (hold->sub.gate && hold->sub.gate->holding) {
            // Its first answer is on the way.
            send(protocol_message("subscribed", protocol::json_object().add("channel", channel).str()));
            return;
        }
        return take_channel(channel, std::move(since), hold->by_server);
    }
    const auto limit = static_cast<std::size_t>(services_.settings.channels_max_per_connection);
    if (state.held.size() + state.pending_grants >= limit) return refuse_subscribe(channel, "too_many_channels");

    if (protocol::claims_grant(state.claims, channel)) return take_channel(channel, std::move(since), false);
    if (!token.empty()) {
        const auto verdict = services_.verifier.verify_channel_token(token, user_id(), channel);
        if (verdict == auth::jwt_error::none) return take_channel(channel, std::move(since), false);
        spdlog::info("subscribe refused conn={} user={} channel={} reason=\"{}\"", id(), user_id(), channel,
                     auth::to_string(verdict));
        if (!services_.subscribe_proxy) return refuse_subscribe(channel, "forbidden");
    }
    if (!services_.subscribe_proxy) return refuse_subscribe(channel, "forbidden");
    ++state.pending_grants;
    services_.subscribe_proxy(user_id(), channel, [self = self(), channel, since](proxy_answer answer) mutable {
        self->on_home([self, channel = std::move(channel), since = std::move(since), answer]() mutable {
            auto& state = self->channels();
            --state.pending_grants;
            if (self->closing() || !self->registered_) return;
            switch (answer) {
                case proxy_answer::allow:
                    if (self->find_hold(channel)) return;  // granted meanwhile by another subscribe
                    return self->take_channel(channel, std::move(since), false);
                case proxy_answer::forbid: return self->refuse_subscribe(channel, "forbidden");
                case proxy_answer::unavailable: return self->refuse_subscribe(channel, "unavailable");
            }
        });
    });
}

void client::take_channel(const std::string& channel, std::optional<std::string> since, bool by_server) {
    auto* hold = find_hold(channel);
    if (!hold) {
        auto fresh = std::make_unique<channel_hold>();
        fresh->name = channel;
        fresh->by_server = by_server;
        hold = fresh.get();
        channels().held.push_back(std::move(fresh));
        // The gate first: live events wait from the moment the hub lists the connection.
        hold->sub.gate = std::make_unique<hub::replay_gate>();
        hub().subscribe(*this, channel, hold->sub);
        observability::metrics::add(services_.metrics.subscribes);
        presence_join(channel);
    }
    auto announce = [channel](const engine::position& top, std::optional<bool> recovered, std::size_t missed) {
        protocol::json_object payload;
        payload.add("channel", channel);
        if (!top.epoch.empty()) payload.add("epoch", top.epoch).add("seq", top.seq);
        if (recovered) payload.add("recovered", *recovered).add("missed", std::uint64_t{missed});
        return protocol_message("subscribed", payload.str());
    };
    auto unavailable = [this, channel] {
        drop_channel(channel, {});
        refuse_subscribe(channel, "unavailable");
    };
    start_replay(channel, hold->sub, std::move(since), std::move(announce), std::move(unavailable));
}

void client::drop_channel(std::string_view channel, std::string_view reason) {
    if (!channels_) return;
    auto& held = channels_->held;
    const auto it = std::find_if(held.begin(), held.end(), [&](const auto& h) { return h->name == channel; });
    if (it == held.end()) return;
    auto& jobs = channels_->replays;
    auto* sub = &(*it)->sub;
    // A replay under way for it is dropped (the front one may be half sent: that is what the
    // client asked for).
    jobs.erase(std::remove_if(jobs.begin(), jobs.end(), [sub](const replay_job& j) { return j.sub == sub; }),
               jobs.end());
    hub().unsubscribe(channel, *sub);
    end_typing(**it);
    presence_leave((*it)->name);
    held.erase(it);
    if (!reason.empty()) {
        send(protocol_message("unsubscribed",
                              protocol::json_object().add("channel", channel).add("reason", reason).str()));
    }
    // The next replay may be waiting for the one just dropped.
    pump_replays();
}

void client::handle_unsubscribe(const protocol::client_message& message) {
    simdjson::dom::element payload;
    std::string channel;
    if (protocol::thread_json_parser().parse(message.payload_json).get(payload) == simdjson::SUCCESS) {
        std::string_view v;
        if (payload["channel"].get_string().get(v) == simdjson::SUCCESS) channel = v;
    }
    if (channel.size() > protocol::k_max_channel_bytes) channel.resize(protocol::k_max_channel_bytes);
    // Not a channel a client can hold or leave (its personal one stays with the connection).
    if (!protocol::subscribable_channel(channel)) return refuse_subscribe(channel, "invalid_channel");
    drop_channel(channel, {});
    send(protocol_message("unsubscribed", protocol::json_object().add("channel", channel).str()));
}

bool client::subscribe_by_server(std::string_view channel) {
    if (closing() || !registered_) return false;
    if (find_hold(channel)) return true;
    take_channel(std::string{channel}, std::nullopt, true);
    return true;
}

bool client::unsubscribe_by_server(std::string_view channel) {
    if (!find_hold(channel)) return false;
    drop_channel(channel, "server");
    return true;
}

void client::on_message(std::string_view data, bool text) {
    // Every data message counts against the rate, text or binary: a binary one costs the frame
    // layer as much (unmasking, inflating) and must not be a way around the over-rate close.
    if (closing() || !within_rate()) return;
    if (text) return handle_text(data);
    handle_binary(data);
}

void client::handle_binary(std::string_view data) {
    if (!msgpack_) {
        // Before the token, any message but `auth` is refused at once, binary ones too.
        if (awaiting_token_) return refuse_unauthenticated();
        return log_invalid("binary_not_supported", {}, {});
    }
    // The frame layer bounded its size (websocket.max_message_bytes); the decoder bounds its
    // depth, counts and types, and its JSON then takes the path of every text message.
    std::string json;
    if (const auto error = protocol::msgpack_to_json(data, json); error != protocol::msgpack_error::none) {
        if (awaiting_token_) return refuse_unauthenticated();
        return log_invalid("invalid_msgpack", protocol::to_string(error), {});
    }
    handle_text(json);
}

void client::log_invalid(std::string_view error, std::string_view field, std::string_view type) {
    // Every one is counted; only the log line is rate-limited.
    observability::metrics::add(services_.metrics.client_messages_invalid);
    auto& limiter = home_.invalid_message_log;
    if (limiter.allow(observability::monotonic_ms())) {
        spdlog::warn("client message ignored conn={} user={} error={} field={} type=\"{}\" suppressed={}", id(),
                     user_id(), error, field, type, limiter.take_suppressed());
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
        return log_invalid(protocol::to_string(message.error), message.field, message.type);
    }
    if (message.spec->protocol) return handle_protocol_message(message);
    if (message.type == "typing.start") {
        // On a channel: relayed to its other users, not sent upstream (the seed's {} still is).
        simdjson::dom::element payload;
        std::string_view channel;
        if (protocol::thread_json_parser().parse(message.payload_json).get(payload) == simdjson::SUCCESS &&
            payload["channel"].get_string().get(channel) == simdjson::SUCCESS) {
            if (!handle_typing(channel, true)) observability::metrics::add(services_.metrics.client_messages_invalid);
            return;
        }
    }
    if (message.type == "thread.view") handle_thread_view(message);
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
    if (!identity->channels.empty()) channels().claims = std::move(identity->channels);
    // The personal channel's position, beside the token.
    simdjson::dom::element payload;
    std::string_view since;
    if (protocol::thread_json_parser().parse(message.payload_json).get(payload) == simdjson::SUCCESS &&
        payload["since"].get_string().get(since) == simdjson::SUCCESS && !since.empty()) {
        since_ = std::make_unique<std::string>(since);
    }
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
    if (message.type == "subscribe") return handle_subscribe(message);
    if (message.type == "unsubscribe") return handle_unsubscribe(message);
    if (message.type == "presence.get") return handle_presence_get(message);
    if (message.type == "typing.stop") {
        simdjson::dom::element payload;
        std::string_view channel;
        if (protocol::thread_json_parser().parse(message.payload_json).get(payload) == simdjson::SUCCESS &&
            payload["channel"].get_string().get(channel) == simdjson::SUCCESS && handle_typing(channel, false)) {
            return;
        }
        observability::metrics::add(services_.metrics.client_messages_invalid);
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
    // Broadcasts this thread made earlier in the turn go first (hub::visit).
    hub::hub::visit_pending();
    // A msgpack connection gets each frame's binary twin, made once per frame for all of them.
    switch (msgpack_ ? enqueue(protocol::as_msgpack(message)) : enqueue(message)) {
        case queued::yes: return true;
        case queued::replaced: observability::metrics::add(services_.metrics.messages_coalesced); return true;
        case queued::dropped: observability::metrics::add(services_.metrics.messages_dropped_ephemeral); return false;
        case queued::refused: return false;
        case queued::full: break;
    }
    spdlog::info("connection closed conn={} user={} reason=slow_consumer", id(), user_id());
    close_behind();
    return false;
}

void client::close_behind() {
    observability::metrics::add(services_.metrics.slow_consumer_closes);
    static const auto behind = protocol::make_event_frame("connection.behind", R"({"reason":"send_queue_full"})");
    endpoint::close(static_cast<std::uint16_t>(close_code::slow_consumer), "send queue full",
                    msgpack_ ? protocol::as_msgpack({behind}).frame : behind);
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
    if (channels_) {
        channels_->replays.clear();
        for (auto& h : channels_->held) {
            hub().unsubscribe(h->name, h->sub);
            end_typing(*h);
            presence_leave(h->name);
        }
        channels_->held.clear();
    }
    hub().remove(*this);
}

// ---- presence, typing, receipts (docs/presence.md)

std::string client::presence_client() const { return std::to_string(id()); }

void client::publish_live(const std::string& channel, std::string_view type, std::string payload,
                          ws::delivery_class cls, std::string_view except_user, hub::connection_id except_connection) {
    auto e = std::make_shared<engine::event>();
    e->type = type;
    e->payload = std::move(payload);
    e->message.delivery = cls;
    engine::publication p;
    p.event = std::move(e);
    p.channels.push_back(channel);
    p.except_user = except_user;
    p.except_connection = except_connection;
    services_.broker.publish(std::make_shared<const std::vector<engine::publication>>(std::vector{std::move(p)}),
                             [type = std::string{type}](const util::result<std::vector<engine::publish_outcome>>& r) {
                                 if (!r) spdlog::warn("{} not published error=\"{}\"", type, r.message());
                             });
}

namespace {

// A channel presence event, published in order (engine::publication::ordered).
void publish_presence(shared& services, const std::string& channel, std::string_view type, std::string_view user) {
    auto e = std::make_shared<engine::event>();
    e->type = type;
    e->payload = protocol::json_object().add("channel", channel).add("userId", user).str();
    engine::publication p;
    p.event = std::move(e);
    p.channels.push_back(channel);
    p.ordered = true;
    services.broker.publish(std::make_shared<const std::vector<engine::publication>>(std::vector{std::move(p)}),
                            [type = std::string{type}](const util::result<std::vector<engine::publish_outcome>>& r) {
                                if (!r) spdlog::warn("{} not published error=\"{}\"", type, r.message());
                            });
}

// A join or leave is announced while the channel has at most presence.max_list users (counted
// after the change): each announcement goes to every member, so a channel of N users that all
// join would cost N^2 messages. Past it, members ask presence.get, which then answers only the
// count, for the same reason.
void announce_presence(shared& services, const std::string& channel, std::string_view type, std::string_view user) {
    services.presence.users(channel, [&services, channel, type = std::string{type},
                                      user = std::string{user}](util::result<std::size_t> users) {
        const auto limit = static_cast<std::size_t>(services.settings.presence_max_list);
        if (!users || *users > limit) return;
        publish_presence(services, channel, type, user);
    });
}

}  // namespace

void client::presence_join(const std::string& channel) {
    if (!services_.settings.of_namespace(protocol::channel_namespace(channel)).presence) return;
    // Held until the leave: the memory engine hears every leave; the Redis engine keeps the
    // entry for its own presence TTL and refreshes it while this node lives, so the members of
    // a node that died leave within that TTL.
    constexpr auto k_ttl = std::chrono::hours(24 * 365);
    // The memory presence answers inside the call: under the lock, the transition and the
    // hand-over of its event are one step. (An engine that answers later orders them itself.)
    std::lock_guard lock{services_.presence_order};
    services_.presence.join(channel, presence_client(), user_id(), k_ttl,
                            [&services = services_, channel, user = user_id()](util::result<bool> arrived) {
                                if (arrived && *arrived) announce_presence(services, channel, "presence.join", user);
                            });
}

void client::presence_leave(const std::string& channel) {
    if (!services_.settings.of_namespace(protocol::channel_namespace(channel)).presence) return;
    std::lock_guard lock{services_.presence_order};
    services_.presence.leave(channel, presence_client(),
                             [&services = services_, channel, user = user_id()](util::result<bool> left) {
                                 if (left && *left) announce_presence(services, channel, "presence.leave", user);
                             });
}

void client::handle_presence_get(const protocol::client_message& message) {
    simdjson::dom::element payload;
    std::string channel;
    if (protocol::thread_json_parser().parse(message.payload_json).get(payload) == simdjson::SUCCESS) {
        std::string_view v;
        if (payload["channel"].get_string().get(v) == simdjson::SUCCESS) channel = v;
    }
    if (channel.size() > protocol::k_max_channel_bytes) channel.resize(protocol::k_max_channel_bytes);
    const auto refuse = [&](std::string_view error) {
        send(protocol_message("presence.state",
                              protocol::json_object().add("channel", channel).add("error", error).str()));
    };
    if (!find_hold(channel)) return refuse("not_subscribed");
    if (!services_.settings.of_namespace(protocol::channel_namespace(channel)).presence) return refuse("presence_off");
    services_.presence.query(channel, [self = self(), channel](util::result<engine::presence_state> state) {
        self->on_home([self, channel, state = std::move(state)] {
            if (self->closing()) return;
            protocol::json_object out;
            out.add("channel", channel);
            if (!state) {
                out.add("error", "unavailable");
            } else {
                const auto limit = static_cast<std::size_t>(self->services_.settings.presence_max_list);
                if (state->users.size() <= limit) {
                    std::string users = "[";
                    for (const auto& [user, clients] : state->users) {
                        if (users.size() > 1) users += ',';
                        protocol::append_json_string(users, user);
                    }
                    users += ']';
                    out.add_raw("users", users);
                }
                out.add("count", std::uint64_t{state->users.size()});
            }
            self->send(protocol_message("presence.state", out.str()));
        });
    });
}

bool client::handle_typing(std::string_view channel, bool active) {
    auto* hold = find_hold(channel);
    if (!hold || !services_.settings.of_namespace(protocol::channel_namespace(channel)).typing) return false;
    auto& board = services_.typing;
    if (!active) {
        if (hold->typing_timer) hold->typing_timer->cancel();
        if (board.stop(channel, user_id()) == typing_board::relay::stop) relay_typing(*hold, false);
        return true;
    }
    // One typist per user and channel, whichever tabs type: the board throttles and ends it.
    const auto started = board.start(channel, user_id(), id(), observability::monotonic_ms());
    if (started.what == typing_board::relay::start) relay_typing(*hold, true);
    // Silence for the timeout ends it; each start restarts the wait (a later start elsewhere
    // makes this one moot).
    if (!hold->typing_timer) hold->typing_timer = std::make_unique<boost::asio::steady_timer>(home_.io);
    hold->typing_timer->expires_after(services_.settings.typing_timeout);
    hold->typing_timer->async_wait(
        [self = self(), name = hold->name, generation = started.generation](boost::system::error_code ec) {
            if (ec) return;
            auto* h = self->find_hold(name);
            if (h && self->services_.typing.expire(name, self->user_id(), generation) == typing_board::relay::stop) {
                self->relay_typing(*h, false);
            }
        });
    return true;
}

void client::relay_typing(channel_hold& hold, bool active) {
    publish_live(hold.name, "typing",
                 protocol::json_object().add("channel", hold.name).add("userId", user_id()).add("active", active).str(),
                 ws::delivery_class::ephemeral, user_id(), 0);
}

void client::end_typing(channel_hold& hold) {
    if (hold.typing_timer) hold.typing_timer->cancel();
    if (services_.typing.leave(hold.name, user_id(), id()) == typing_board::relay::stop) relay_typing(hold, false);
}

void client::handle_thread_view(const protocol::client_message& message) {
    simdjson::dom::element payload;
    std::string thread;
    if (protocol::thread_json_parser().parse(message.payload_json).get(payload) == simdjson::SUCCESS) {
        std::string_view v;
        if (payload["threadId"].get_string().get(v) == simdjson::SUCCESS) thread = v;
    }
    if (thread.empty()) return;
    auto body = protocol::json_object()
                    .add("threadId", thread)
                    .add("userId", user_id())
                    .add("readAt", auth::unix_now_ms())
                    .str();
    // The user's other connections: stored on the personal channel, the newest per thread, so a
    // device that was away clears its badge when it resumes.
    {
        const auto personal = protocol::personal_channel(user_id());
        const auto ns = services_.settings.of_namespace(protocol::channel_namespace(personal));
        auto e = std::make_shared<engine::event>();
        e->type = "thread.read";
        e->payload = body;
        e->message.delivery = ws::delivery_class::latest;
        e->message.latest_key = protocol::latest_key_of("thread.read", thread);
        engine::publication p;
        p.event = std::move(e);
        p.channels.push_back(personal);
        p.except_connection = id();
        if (ns.history_size > 0) {
            p.history = true;
            p.limits = engine::history_limits{static_cast<std::size_t>(ns.history_size), ns.history_ttl};
        }
        services_.broker.publish(std::make_shared<const std::vector<engine::publication>>(std::vector{std::move(p)}),
                                 [](const util::result<std::vector<engine::publish_outcome>>& r) {
                                     if (!r) spdlog::warn("thread.read not published error=\"{}\"", r.message());
                                 });
    }
    // The thread's other participants, when the reader holds its channel and it has receipts on.
    const auto channel = "thread:" + thread;
    if (protocol::valid_channel_name(channel) && find_hold(channel) &&
        services_.settings.of_namespace("thread").receipts) {
        publish_live(channel, "thread.read", std::move(body), ws::delivery_class::ordered, user_id(), 0);
    }
}

}  // namespace zena::session
