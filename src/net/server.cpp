#include "net/server.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "net/http_session.hpp"
#include "net/tls.hpp"
#include "ws/close_codes.hpp"

namespace zena::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

beast::ssl_stream<beast::tcp_stream> https_session_stream(ws::plain_socket&& socket, asio::ssl::context& ctx) {
    return beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), ctx);
}

}  // namespace

server::server(const std::vector<std::unique_ptr<session::loop>>& loops, session::shared& sessions,
               api::server_api& api, admin::console* admin)
    : settings_(sessions.settings),
      hubs_(sessions.hubs),
      services_{sessions,
                api,
                admin,
                settings_.allowed_origins.value,
                address_limits{address_limit_settings{
                    .max_connections_per_address = static_cast<std::size_t>(settings_.max_connections_per_address),
                    .handshakes_per_second = settings_.handshakes_per_address_per_second,
                    .max_tracked = static_cast<std::size_t>(settings_.max_tracked_addresses)}},
                ws::endpoint::limits{.max_message_bytes = static_cast<std::size_t>(settings_.max_message_bytes),
                                     .send_queue_max_bytes = static_cast<std::size_t>(settings_.send_queue_max_bytes),
                                     .close_timeout = settings_.close_timeout,
                                     .budget = {.frames = {static_cast<double>(settings_.client_frames_per_second),
                                                           static_cast<double>(settings_.client_frames_burst)},
                                                .message_timeout = settings_.message_timeout},
                                     .metrics = &sessions.metrics}} {
    for (const auto& loop : loops) {
        workers_.push_back(std::make_unique<worker>(*loop));
        auto* w = workers_.back().get();
        w->engine = &sessions.broker;
        w->start_session = [this, w](ws::plain_socket socket, const std::shared_ptr<asio::ssl::context>& tls) {
            if (tls) {
                std::make_shared<https_session>(https_session_stream(std::move(socket), *tls), *w, services_)->run();
            } else {
                std::make_shared<http_session>(plain_http_stream(std::move(socket)), *w, services_)->run();
            }
        };
    }
    auto& io0 = workers_[0]->loop.io;
    acceptor_.emplace(io0);
    signals_.emplace(io0, SIGINT, SIGTERM);
    reload_signal_.emplace(io0, SIGHUP);
    drain_timer_.emplace(io0);
    accept_retry_timer_.emplace(io0);
}

server::~server() {
    for (auto& w : workers_) w->loop.io.stop();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
}

util::status server::listen() {
    if (!settings_.tls_cert_file.empty()) {
        std::string error;
        tls_ = make_tls_context(settings_.tls_cert_file, settings_.tls_key_file, error);
        if (!tls_) return util::error{error};
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(settings_.host, ec);
    if (ec) return util::error{"server.host '" + settings_.host + "' is not an IP address"};
    const tcp::endpoint endpoint{address, static_cast<std::uint16_t>(settings_.port)};
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        return util::error{"cannot listen on " + settings_.host + ":" + std::to_string(settings_.port) + ": " +
                           ec.message()};
    }
    port_ = acceptor_->local_endpoint().port();
    return {};
}

void server::run() {
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& w : workers_) {
        guards.push_back(asio::make_work_guard(w->loop.io));
        asio::post(w->loop.io, [this, wp = w.get()] {
            arm_heartbeat(*wp);
            arm_expiry(*wp);
        });
    }
    signals_->async_wait([this](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        spdlog::info("signal received signal={} draining_ms={}", signal, settings_.shutdown_drain.count());
        begin_drain();
    });
    await_reload();
    asio::post(workers_[0]->loop.io, [this] { do_accept(); });
    spdlog::info("listening host={} port={} threads={} path=/ws tls={}", settings_.host, port_, workers_.size(),
                 tls_ != nullptr);

    for (std::size_t i = 1; i < workers_.size(); ++i) {
        threads_.emplace_back([w = workers_[i].get()] { w->run(); });
    }
    workers_[0]->run();
    guards.clear();
    for (auto& t : threads_) t.join();
    threads_.clear();
    spdlog::info("stopped");
}

void server::shutdown() {
    asio::post(workers_[0]->loop.io, [this] { begin_drain(); });
}

void server::do_accept() {
    auto& target = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    acceptor_->async_accept(target.loop.io,
                            [this, &target](const boost::system::error_code& ec, ws::plain_socket socket) {
                                if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
                                if (ec) {
                                    // Out of descriptors, most likely: back off briefly instead of spinning.
                                    spdlog::warn("accept failed error=\"{}\"", ec.message());
                                    accept_retry_timer_->expires_after(std::chrono::milliseconds(50));
                                    accept_retry_timer_->async_wait([this](const boost::system::error_code& wait_ec) {
                                        if (!wait_ec) do_accept();
                                    });
                                    return;
                                }
                                boost::system::error_code ignored;
                                socket.set_option(tcp::no_delay(true), ignored);
                                // The TLS context is read here, on thread 0, where SIGHUP swaps it.
                                asio::post(target.loop.io, [&target, socket = std::move(socket), tls = tls_]() mutable {
                                    target.admit(std::move(socket), std::move(tls));
                                });
                                do_accept();
                            });
}

void server::await_reload() {
    reload_signal_->async_wait([this](const boost::system::error_code& ec, int) {
        if (ec) return;
        if (tls_) {
            std::string error;
            if (auto fresh = make_tls_context(settings_.tls_cert_file, settings_.tls_key_file, error)) {
                tls_ = std::move(fresh);  // new handshakes only; open connections keep theirs
                spdlog::info("tls reloaded cert={}", settings_.tls_cert_file);
            } else {
                spdlog::error("tls reload failed, keeping the previous certificate error=\"{}\"", error);
            }
        } else {
            spdlog::info("SIGHUP received; nothing to reload (no TLS configured)");
        }
        await_reload();
    });
}

void server::arm_heartbeat(worker& w) {
    w.heartbeat_timer.expires_after(settings_.heartbeat_interval);
    w.heartbeat_timer.async_wait([this, &w](const boost::system::error_code& ec) {
        if (ec) return;
        const auto terminated = hubs_.local(w.loop.index).heartbeat();
        if (terminated > 0) observability::metrics::add(services_.metrics().heartbeat_timeouts, terminated);
        arm_heartbeat(w);
    });
}

void server::arm_expiry(worker& w) {
    w.expiry_timer.expires_after(std::chrono::seconds(1));
    w.expiry_timer.async_wait([this, &w](const boost::system::error_code& ec) {
        if (ec) return;
        const auto expired = hubs_.local(w.loop.index).expire(auth::unix_now());
        if (expired > 0) observability::metrics::add(services_.metrics().tokens_expired, expired);
        arm_expiry(w);
    });
}

void server::begin_drain() {
    if (drain_started_) return;
    drain_started_ = true;
    services_.draining.store(true, std::memory_order_relaxed);
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    signals_->cancel(ignored);
    reload_signal_->cancel(ignored);
    accept_retry_timer_->cancel();
    spdlog::info("draining connections={}", hubs_.registry().connections());
    hubs_.on_every_hub([](hub::hub& h) { return h.close_all(ws::close_code::going_away, "server shutdown"); }, {});
    check_drained(std::chrono::steady_clock::now() + settings_.shutdown_drain);
}

void server::check_drained(std::chrono::steady_clock::time_point deadline) {
    if (hubs_.registry().connections() == 0 || std::chrono::steady_clock::now() >= deadline) {
        if (hubs_.registry().connections() > 0) {
            spdlog::warn("drain deadline passed connections_left={}", hubs_.registry().connections());
        }
        for (auto& w : workers_) w->loop.io.stop();
        return;
    }
    drain_timer_->expires_after(std::chrono::milliseconds(20));
    drain_timer_->async_wait([this, deadline](const boost::system::error_code& ec) {
        if (!ec) check_drained(deadline);
    });
}

}  // namespace zena::net
