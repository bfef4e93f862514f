#include "net/http_session.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

#include "admin/console.hpp"
#include "auth/token_source.hpp"
#include "net/admin_live.hpp"
#include "net/echo_session.hpp"
#include "net/handshake.hpp"
#include "protocol/json_writer.hpp"
#include "protocol/msgpack.hpp"
#include "session/client.hpp"
#include "util/cidr.hpp"
#include "util/url.hpp"
#include "ws/deflate.hpp"

namespace zena::net {

namespace websocket = beast::websocket;

namespace {

std::string json_error(std::string_view message) { return protocol::json_object().add("error", message).str(); }

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

// What the page's console reads of a request.
admin::request admin_request(const http::request<http::string_body>& r) {
    return admin::request{view(r.method_string()),
                          view(r.target()),
                          view(r[http::field::cookie]),
                          view(r[http::field::origin]),
                          view(r[http::field::host]),
                          view(r["X-Zena-CSRF"]),
                          r.body()};
}

// A prepared response as it goes on the wire: status line, fields, blank line, body.
void append_wire(const http::response<http::string_body>& res, std::string& out) {
    out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    out += std::to_string(res.result_int());
    out += ' ';
    const auto reason = res.reason();
    out.append(reason.data(), reason.size());
    out += "\r\n";
    for (const auto& field : res) {
        const auto name = field.name_string();
        const auto value = field.value();
        out.append(name.data(), name.size());
        out += ": ";
        out.append(value.data(), value.size());
        out += "\r\n";
    }
    out += "\r\n";
    out += res.body();
}

}  // namespace

std::optional<framing_refusal> refuse_transfer_encoding(unsigned version, std::span<const std::string_view> lines) {
    if (lines.empty()) return std::nullopt;
    const auto trim = [](std::string_view text) {
        const auto first = text.find_first_not_of(" \t");
        if (first == std::string_view::npos) return std::string_view{};
        return text.substr(first, text.find_last_not_of(" \t") - first + 1);
    };
    std::string_view last;  // the final coding
    for (auto value : lines) {
        while (!value.empty()) {
            const auto comma = value.find(',');
            if (const auto coding = trim(value.substr(0, comma)); !coding.empty()) last = coding;
            value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        }
    }
    if (version < 11) return framing_refusal{400, R"({"error":"Transfer-Encoding in an HTTP/1.0 request"})"};
    if (!beast::iequals(last, "chunked")) {
        return framing_refusal{400, R"x({"error":"Transfer-Encoding must end with chunked (RFC 9112 section 6.3)"})x"};
    }
    // Exactly "chunked", on one line, as Beast frames it: no coding before it, no empty element.
    if (lines.size() > 1 || !beast::iequals(trim(lines.front()), "chunked")) {
        return framing_refusal{501, R"({"error":"no transfer coding other than chunked is supported"})"};
    }
    return std::nullopt;
}

template <typename Stream>
basic_http_session<Stream>::basic_http_session(Stream&& stream, worker& worker, services& services)
    : stream_(std::move(stream)), worker_(worker), services_(services) {}

template <typename Stream>
basic_http_session<Stream>::~basic_http_session() {
    end_handshake();  // it ended before a whole request came
}

template <typename Stream>
void basic_http_session<Stream>::end_handshake() {
    if (!handshaking_) return;
    handshaking_ = false;
    worker_.handshake_done();
}

template <typename Stream>
void basic_http_session<Stream>::run() {
    boost::asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
        if constexpr (std::is_same_v<Stream, plain_http_stream>) {
            self->do_read();
        } else {
            // The TLS handshake first, bounded like the first request.
            beast::get_lowest_layer(self->stream_).expires_after(self->read_timeout());
            self->stream_.async_handshake(boost::asio::ssl::stream_base::server, [self](beast::error_code ec) {
                if (ec) return;  // not TLS, an old version, or gone: nothing to answer
                self->do_read();
            });
        }
    });
}

template <typename Stream>
std::chrono::milliseconds basic_http_session<Stream>::read_timeout() const {
    const auto& settings = services_.settings();
    // A new connection's first request (the WebSocket opening handshake, or a first API call) has
    // websocket.handshake_timeout_ms, so that a socket that says nothing is dropped early; later
    // requests on a kept-alive connection have http.request_timeout_ms.
    if (handshaking_) return std::min(settings.handshake_timeout, settings.http_request_timeout);
    return settings.http_request_timeout;
}

template <typename Stream>
void basic_http_session<Stream>::shutdown(boost::asio::socket_base::shutdown_type what) {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(what, ignored);
}

template <typename Stream>
void basic_http_session<Stream>::do_read() {
    reading_ = true;
    const auto& settings = services_.settings();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(settings.http_max_header_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(settings.http_max_body_bytes));
    // A pipelined request already read with an earlier one is parsed here, without a trip
    // through the event loop: a burst of requests is handled in one pass. (The recursion through
    // on_read is bounded by k_max_pipelined.)
    beast::error_code ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
        const auto used = parser_->put(buffer_.data(), ec);
        buffer_.consume(used);
        if (ec == http::error::need_more) {
            ec = {};
            break;
        }
        if (ec || used == 0) break;
    }
    if (ec) return on_read(ec, 0);
    if (parser_->is_done()) return on_read({}, 0);
    beast::get_lowest_layer(stream_).expires_after(read_timeout());
    if (parser_->is_header_done()) return on_header({});
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code read_ec, std::size_t) { self->on_header(read_ec); });
}

template <typename Stream>
bool basic_http_session<Stream>::refuse_framing() {
    const auto& request = parser_->get();
    std::vector<std::string_view> lines;
    for (auto [it, end] = request.equal_range(http::field::transfer_encoding); it != end; ++it) {
        lines.emplace_back(it->value().data(), it->value().size());
    }
    const auto refused = refuse_transfer_encoding(request.version(), lines);
    if (!refused) return false;
    reading_ = false;
    end_handshake();
    keep_alive_ = false;  // the end of this request is unknown: nothing after it is read
    version_ = 11;
    spdlog::debug("http request refused reason=transfer-encoding target={}",
                  util::redact_target(std::string_view(request.target().data(), request.target().size())));
    respond(static_cast<http::status>(refused->status), std::string{refused->body});
    return true;
}

template <typename Stream>
void basic_http_session<Stream>::on_header(beast::error_code ec) {
    if (ec) return on_read(ec, 0);
    if (refuse_framing()) return;  // before any body is read
    const auto& request = parser_->get();
    // curl and others wait (a second, for curl) for "100 Continue" before sending a body. Behind
    // pipelined responses still to be written it is skipped: the client sends the body anyway.
    if (!parser_->is_done() && beast::iequals(request[http::field::expect], "100-continue") && responses_.empty()) {
        auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_, request.version());
        http::async_write(stream_, *interim,
                          [self = this->shared_from_this(), interim](beast::error_code write_ec, std::size_t) {
                              if (!write_ec) self->read_body();
                          });
        return;
    }
    read_body();
}

template <typename Stream>
void basic_http_session<Stream>::read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

template <typename Stream>
void basic_http_session<Stream>::on_read(beast::error_code ec, std::size_t) {
    reading_ = false;
    end_handshake();
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == boost::asio::error::eof) {
        // The client is done sending; what it asked before still gets its answers.
        if (responses_.empty()) shutdown(boost::asio::ip::tcp::socket::shutdown_both);
        closing_ = true;
        return;
    }
    if (ec) {
        keep_alive_ = false;
        version_ = 11;
        if (ec == http::error::body_limit) {
            return respond(http::status::payload_too_large,
                           R"({"error":"request body is larger than http.max_body_bytes"})");
        }
        if (ec == http::error::header_limit) {
            return respond(http::status::request_header_fields_too_large,
                           R"({"error":"request head is larger than http.max_header_bytes"})");
        }
        if (ec.category() == beast::error_code(http::error::bad_target).category()) {
            return respond(http::status::bad_request, R"({"error":"malformed HTTP request"})");
        }
        return;  // connection reset or similar: nothing to answer
    }
    if (refuse_framing()) return;
    observability::metrics::add(services_.metrics().http_requests);
    auto& request = parser_->get();
    keep_alive_ = request.keep_alive();
    version_ = request.version();
    // Only with answers pending does the route matter here (route() finds it again).
    if (!responses_.empty() &&
        !api::server_api::owns(util::target_path(std::string_view(request.target().data(), request.target().size())))) {
        // An upgrade or another route waits for the answers before it: it may take the stream.
        deferred_.emplace(std::move(request));
        return;
    }
    route(request);
    read_next();
}

template <typename Stream>
void basic_http_session<Stream>::read_next() {
    // Pipelining: the next request is read while earlier answers are produced, so every request
    // a client sent together is handled in one pass. Bounded: past k_max_pipelined unanswered
    // requests, reading waits for the writes.
    if (reading_ || closing_ || deferred_ || !keep_alive_ || upgraded_) return;
    if (responses_.size() >= k_max_pipelined) return;
    do_read();
}

template <typename Stream>
void basic_http_session<Stream>::route(http::request<http::string_body>& request) {
    const auto target = std::string_view(request.target().data(), request.target().size());
    const auto path = util::target_path(target);
    spdlog::debug("http request method={} target={}", std::string_view(request.method_string()),
                  util::redact_target(target));

    if (path == "/echo" && services_.settings().test_echo) {
        if (websocket::is_upgrade(request)) return upgrade(std::move(request), socket_kind::echo);
        return upgrade_required();
    }
    if (path == "/ws") {
        if (websocket::is_upgrade(request)) return upgrade(std::move(request), socket_kind::client);
        return upgrade_required();
    }
    if (api::server_api::owns(path)) {
        const auto method = std::string_view(request.method_string());
        const auto authorization = request[http::field::authorization];
        const auto slot = reserve();
        services_.api.handle(
            api::http_request{method, target, std::string_view(authorization.data(), authorization.size()),
                              request.body()},
            [self = this->shared_from_this(), slot, version = version_](api::http_response reply) {
                boost::asio::post(
                    self->stream_.get_executor(), [self, slot, version, reply = std::move(reply)]() mutable {
                        auto res = std::make_shared<response>(static_cast<http::status>(reply.status), version);
                        res->set(http::field::content_type, "application/json");
                        for (const auto& [name, value] : reply.headers) res->set(name, value);
                        res->body() = std::move(reply.body);
                        // Paced by delivery while this thread's batch is full (net::worker).
                        if (!self->worker_.answer_after_flush()) return self->fill(slot, res);
                        observability::metrics::add(self->services_.metrics().api_answers_paced);
                        self->worker_.after_flush([self, slot, res] { self->fill(slot, res); });
                    });
            });
        return;
    }
    if (path == "/healthz") return respond(http::status::ok, R"({"status":"ok"})");
    if (path == "/readyz") {
        if (services_.draining.load(std::memory_order_relaxed)) {
            return respond(http::status::service_unavailable, R"({"status":"draining"})");
        }
        // What the app's parts report (the Redis publish channel while it is not subscribed).
        if (auto reason = services_.api.ready().not_ready(); !reason.empty()) {
            return respond(http::status::service_unavailable,
                           protocol::json_object().add("status", "not ready").add("reason", reason).str());
        }
        return respond(http::status::ok, R"({"status":"ready"})");
    }
    if (path == "/metrics") {
        return respond(http::status::ok,
                       services_.metrics().render(services_.sessions.hubs.registry().connections(),
                                                  services_.sessions.hubs.registry().users()),
                       "text/plain; version=0.0.4");
    }
    if (services_.admin && admin::console::owns(path)) return admin(request);
    respond(http::status::not_found, R"({"error":"not found"})");
}

template <typename Stream>
void basic_http_session<Stream>::admin(http::request<http::string_body>& request) {
    auto& console = *services_.admin;
    const auto to_response = [version = version_](admin::response reply) {
        auto res = std::make_shared<response>(static_cast<http::status>(reply.status), version);
        res->set(http::field::content_type, reply.content_type);
        for (const auto& [name, value] : reply.headers) res->insert(name, value);
        res->body() = std::move(reply.body);
        return res;
    };
    if (util::target_path(view(request.target())) == admin::k_live_path) {
        if (!websocket::is_upgrade(request)) return upgrade_required();
        if (auto refused = console.refuse_live(admin_request(request))) {
            keep_alive_ = false;
            return write(to_response(std::move(*refused)));
        }
        return upgrade(std::move(request), socket_kind::admin_live);
    }
    const auto slot = reserve();
    console.handle(admin_request(request), [self = this->shared_from_this(), slot, to_response](admin::response reply) {
        // A publish answers from the thread that finished its delivery.
        boost::asio::post(self->stream_.get_executor(),
                          [self, slot, res = to_response(std::move(reply))] { self->fill(slot, res); });
    });
}

template <typename Stream>
void basic_http_session<Stream>::upgrade_required() {
    auto res = std::make_shared<response>(http::status::upgrade_required, version_);
    res->set(http::field::upgrade, "websocket");
    res->set(http::field::connection, "Upgrade");
    res->set(http::field::sec_websocket_version, "13");
    res->set(http::field::content_type, "application/json");
    res->body() = R"({"error":"this endpoint speaks WebSocket only; send an upgrade request"})";
    write(res);
}

template <typename Stream>
void basic_http_session<Stream>::upgrade(http::request<http::string_body>&& request, socket_kind kind) {
    keep_alive_ = false;  // a refused handshake ends the connection
    // RFC 6455 §4.2.1-2, where Beast is lenient: the key's form, and the version (426 naming 13).
    const auto version = request[http::field::sec_websocket_version];
    if (std::string_view(version.data(), version.size()) != k_websocket_version) return upgrade_required();
    if (request[http::field::host].empty()) {
        return respond(http::status::bad_request, R"({"error":"a WebSocket handshake needs a Host header"})");
    }
    const auto key_field = request[http::field::sec_websocket_key];
    if (!valid_websocket_key(std::string_view(key_field.data(), key_field.size()))) {
        return respond(http::status::bad_request, R"({"error":"Sec-WebSocket-Key must be the base64 of 16 bytes"})");
    }
    if (services_.draining.load(std::memory_order_relaxed)) {
        return respond(http::status::service_unavailable, R"({"error":"server is shutting down"})");
    }
    // Cross-Site WebSocket Hijacking: a page from another site never gets a socket. (The live
    // view's console has checked that its Origin is this server's.)
    const auto origin = request[http::field::origin];
    if (kind != socket_kind::admin_live && !services_.origins.allows(std::string_view(origin.data(), origin.size()))) {
        observability::metrics::add(services_.metrics().handshakes_refused_origin);
        spdlog::info("handshake refused reason=origin origin=\"{}\"", std::string_view(origin.data(), origin.size()));
        return respond(http::status::forbidden, R"({"error":"origin not allowed"})");
    }
    if (services_.open_sockets.load(std::memory_order_relaxed) >= services_.settings().max_connections) {
        observability::metrics::add(services_.metrics().handshakes_refused_capacity);
        return respond(http::status::service_unavailable, R"({"error":"server at connection capacity"})");
    }
    boost::system::error_code ec;
    const auto remote = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (ec) return;  // already gone
    // Behind a trusted proxy (server.trusted_proxies) the client is the one X-Forwarded-For names.
    std::string forwarded_for;
    if (!services_.settings().trusted_proxies.value.empty()) {
        const auto [first, last] = request.equal_range("X-Forwarded-For");
        for (auto it = first; it != last; ++it) {
            if (!forwarded_for.empty()) forwarded_for += ", ";
            forwarded_for.append(it->value().data(), it->value().size());
        }
    }
    auto key = address_limits::key_of(
        util::client_address(remote.address().to_string(), forwarded_for, services_.settings().trusted_proxies.value));
    const auto verdict = services_.addresses.admit(key, observability::monotonic_ms());
    if (verdict != address_limits::verdict::ok) {
        observability::metrics::add(services_.metrics().handshakes_refused_address);
        spdlog::info("handshake refused reason=\"{}\" address={}", to_string(verdict), key);
        auto res = std::make_shared<response>(verdict == address_limits::verdict::table_full
                                                  ? http::status::service_unavailable
                                                  : http::status::too_many_requests,
                                              version_);
        res->set(http::field::retry_after, "1");
        res->set(http::field::content_type, "application/json");
        res->body() = json_error(to_string(verdict));
        return write(res);
    }
    services_.open_sockets.fetch_add(1, std::memory_order_relaxed);
    net::admission ticket{services_, std::move(key)};
    upgraded_ = true;  // the stream goes to the WebSocket endpoint

    const auto& settings = services_.settings();
    ws::endpoint::options options{services_.endpoint_limits};
    std::string extensions;
    if (settings.permessage_deflate) {
        const auto offered = request[http::field::sec_websocket_extensions];
        if (auto agreement = ws::negotiate_deflate(std::string_view(offered.data(), offered.size()))) {
            options.deflate = true;
            options.deflate_outgoing = agreement->compress_outgoing;
            extensions = std::move(agreement->response);
        }
    }
    // Bytes the client sent after its request (it need not wait for the 101) go to the endpoint.
    const auto rest = buffer_.cdata();
    const std::string already_read(static_cast<const char*>(rest.data()), rest.size());
    const auto ws_key = std::string_view(key_field.data(), key_field.size());

    if (kind == socket_kind::echo) {
        return std::make_shared<admitted<echo_session>>(std::move(ticket), take_transport(), options,
                                                        worker_.loop.flush)
            ->start(upgrade_response(ws_key, {}, extensions), already_read);
    }
    if (kind == socket_kind::admin_live) {
        return std::make_shared<admitted<admin_live>>(std::move(ticket), take_transport(), options, worker_.loop.flush,
                                                      worker_.loop.io, *services_.admin)
            ->run(upgrade_response(ws_key, {}, extensions), already_read);
    }

    const auto authorization = request[http::field::authorization];
    const auto protocols = request[http::field::sec_websocket_protocol];
    const std::string_view protocols_view(protocols.data(), protocols.size());
    const auto token = auth::find_token(std::string_view(request.target().data(), request.target().size()),
                                        std::string_view(authorization.data(), authorization.size()), protocols_view);
    // No token in the handshake: the client may still send one in-band (an `auth` message).
    std::optional<auth::jwt_result> result;
    if (!token.empty()) result = services_.sessions.verifier.verify(token);
    const auto subprotocol = choose_subprotocol(protocols_view);
    // The personal channel's position, when the client resumes (docs/channels.md).
    auto since = util::query_param(std::string_view(request.target().data(), request.target().size()), "since");
    std::make_shared<admitted<session::client>>(std::move(ticket), take_transport(), options, worker_.loop,
                                                services_.sessions, std::move(result), since.value_or(std::string{}),
                                                subprotocol == protocol::k_msgpack_subprotocol)
        ->run(upgrade_response(ws_key, subprotocol, extensions), already_read);
}

template <typename Stream>
ws::transport basic_http_session<Stream>::take_transport() {
    if constexpr (std::is_same_v<Stream, plain_http_stream>) {
        // The bare socket, already bound to this thread's io_context: the stream's timers are
        // not needed past the upgrade.
        return ws::transport{stream_.release_socket()};
    } else {
        beast::get_lowest_layer(stream_).expires_never();
        return ws::transport{std::make_unique<ws::tls_transport>(ws::tls_transport{std::move(stream_), {}, {}})};
    }
}

template <typename Stream>
void basic_http_session<Stream>::respond(http::status status, std::string body, std::string_view content_type) {
    auto res = std::make_shared<response>(status, version_);
    res->set(http::field::content_type, content_type);
    res->body() = std::move(body);
    write(res);
}

template <typename Stream>
std::uint64_t basic_http_session<Stream>::reserve() {
    responses_.push_back({nullptr, keep_alive_});
    return first_slot_ + responses_.size() - 1;
}

template <typename Stream>
void basic_http_session<Stream>::write(const std::shared_ptr<response>& res) {
    fill(reserve(), res);
}

template <typename Stream>
void basic_http_session<Stream>::fill(std::uint64_t slot, const std::shared_ptr<response>& res) {
    auto& pending = responses_[static_cast<std::size_t>(slot - first_slot_)];
    res->set(http::field::server, "zena-realtime");
    // A response that set Connection itself (426's "Upgrade") keeps it.
    if (res->find(http::field::connection) == res->end()) res->keep_alive(pending.keep_alive);
    res->prepare_payload();
    pending.res = res;
    write_front();
}

template <typename Stream>
void basic_http_session<Stream>::write_front() {
    // Answers go out in the order the requests came: every answer ready at the front, in one
    // write, so a pipelined burst costs one system call, not one per request.
    if (writing_ || responses_.empty() || !responses_.front().res) return;
    writing_ = true;
    if constexpr (std::is_same_v<Stream, plain_http_stream>) {
        // Put together when the flush stages it (stage_write): the answers that are ready by
        // then go with it, and are not left for a write of their own after it.
        if (worker_.answer_joins_flush()) {
            return worker_.loop.flush.add(std::shared_ptr<ws::ring_writer>(this->shared_from_this(), this));
        }
    }
    gather();
    write_out(0);
}

template <typename Stream>
void basic_http_session<Stream>::gather() {
    out_count_ = 0;
    out_keep_alive_ = true;
    out_.clear();
    for (const auto& pending : responses_) {
        if (!pending.res || !out_keep_alive_) break;
        append_wire(*pending.res, out_);
        out_keep_alive_ = pending.keep_alive;
        ++out_count_;
    }
}

template <typename Stream>
void basic_http_session<Stream>::write_out(std::size_t from) {
    boost::asio::async_write(
        stream_, boost::asio::buffer(out_.data() + from, out_.size() - from),
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
}

template <typename Stream>
int basic_http_session<Stream>::stage_write(ws::write_slot& slot) {
    gather();
    slot.iov[0] = iovec{out_.data(), out_.size()};
    slot.count = 1;
    return beast::get_lowest_layer(stream_).socket().native_handle();
}

template <typename Stream>
void basic_http_session<Stream>::ring_written(long result) {
    if (result == static_cast<long>(out_.size())) return on_write({});
    if (result == ws::send_ring::k_not_submitted) {
        gather();  // the ring broke before or as it took this write: nothing of it was sent
        return write_out(0);
    }
    // Taken in part, or not yet: the rest waits for the socket.
    if (result >= 0 || result == -EAGAIN || result == -EWOULDBLOCK || result == -EINTR) {
        return write_out(static_cast<std::size_t>(std::max(result, 0L)));
    }
    // Reset or gone, or an error the ring made up: how much of the answers went is unknown, so
    // nothing more can be answered in order on this connection.
    shutdown(boost::asio::ip::tcp::socket::shutdown_both);
    on_write(beast::error_code(static_cast<int>(-result), boost::system::system_category()));
}

template <typename Stream>
void basic_http_session<Stream>::on_write(beast::error_code ec) {
    writing_ = false;
    responses_.erase(responses_.begin(), responses_.begin() + static_cast<std::ptrdiff_t>(out_count_));
    first_slot_ += out_count_;
    if (ec) return;
    if (!out_keep_alive_) {
        shutdown(boost::asio::ip::tcp::socket::shutdown_send);
        return;
    }
    if (!responses_.empty()) return write_front();
    if (out_.capacity() > k_kept_out_bytes) std::string{}.swap(out_);
    if (closing_) return shutdown(boost::asio::ip::tcp::socket::shutdown_both);
    if (deferred_) {
        auto request = std::move(*deferred_);
        deferred_.reset();
        route(request);
    }
    read_next();
}

template class basic_http_session<plain_http_stream>;
template class basic_http_session<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace zena::net
