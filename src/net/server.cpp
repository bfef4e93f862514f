#include "net/server.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "net/http_session.hpp"
#include "net/tls.hpp"

namespace zena::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

void worker::admit(ws::plain_socket socket, std::shared_ptr<asio::ssl::context> tls) {
    if (handshaking_ < k_max_handshaking && waiting_.empty()) {
        ++handshaking_;
        return start_session(std::move(socket), std::move(tls));
    }
    waiting_.push_back({std::move(socket), std::move(tls)});
    arm_handshake_timer();
}

void worker::handshake_done() {
    --handshaking_;
    ++finished_since_tick_;
    if (handshaking_ < k_max_handshaking) start_next(1);
}

void worker::start_next(std::size_t count) {
    if (io.stopped()) return;  // shutting down: the waiting sockets just close
    for (; count > 0 && !waiting_.empty(); --count) {
        auto next = std::move(waiting_.front());
        waiting_.pop_front();
        ++handshaking_;
        // From the loop, not inside the session that just finished.
        asio::post(io, [this, next = std::move(next)]() mutable {
            start_session(std::move(next.socket), std::move(next.tls));
        });
    }
}

void worker::arm_handshake_timer() {
    if (timer_armed_) return;
    timer_armed_ = true;
    finished_since_tick_ = 0;
    handshake_timer_.expires_after(k_handshake_tick);
    handshake_timer_.async_wait([this](const boost::system::error_code& ec) {
        timer_armed_ = false;
        if (ec || waiting_.empty()) return;
        // No handshake finished in a whole tick: the ones in progress are slow (or stalled on
        // purpose). They keep their own deadline; the line moves on without them.
        if (finished_since_tick_ == 0) start_next(k_max_handshaking);
        arm_handshake_timer();
    });
}

void worker::run() {
    hub::hub_set::enter(index);
    // A turn runs the handlers that are ready, then writes what they queued. Waiting longer
    // batches more frames into each connection's write, but delays them all. The turn goes on
    // while it has lasted less than the flush it is saving up for is expected to take (a few
    // microseconds per connection with frames), so batching at most doubles a frame's wait; at
    // least k_min_turn, at most k_max_handlers handlers, and no more than a full batch
    // (batch_full). API answers held back by the pacing (after_flush) go out after the flush.
    using clock = std::chrono::steady_clock;
    constexpr std::size_t k_max_handlers = 4096;
    constexpr auto k_min_turn = std::chrono::microseconds(50);
    constexpr auto k_flush_cost = std::chrono::nanoseconds(3000);  // per connection with frames
    for (;;) {
        const auto start = clock::now();
        std::size_t ran = 0;
        while (ran < k_max_handlers && io.poll_one() > 0) {
            ++ran;
            if (batch_full()) break;
            if (ran % 16 != 0) continue;
            const auto budget = std::max<clock::duration>(k_min_turn, k_flush_cost * flush.size());
            if (clock::now() - start > budget) break;
        }
        flush.run();
        if (io.stopped()) return;
        const bool answered = !after_flush_.empty();
        if (answered) {
            auto answers = std::exchange(after_flush_, {});
            for (auto& answer : answers) answer();
        }
        if (ran == 0 && !answered && io.run_one() == 0) return;  // nothing was ready: wait for the next event
    }
}

namespace {

beast::ssl_stream<beast::tcp_stream> https_session_stream(ws::plain_socket&& socket, asio::ssl::context& ctx) {
    return beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), ctx);
}

}  // namespace

namespace {

std::size_t thread_count(const config::settings& settings) {
    if (settings.threads > 0) return static_cast<std::size_t>(settings.threads);
    return std::max(1U, std::thread::hardware_concurrency());
}

auth::origin_policy origins_of(const config::settings& settings) {
    std::string error;
    return *auth::origin_policy::parse(settings.allowed_origins, error);  // validated at load
}

}  // namespace

server::server(const config::settings& settings, const auth::jwt_verifier& verifier, const protocol::catalog& catalog,
               observability::metrics& metrics, client_event_handler on_client_event)
    : settings_(settings),
      hubs_(std::make_unique<hub::hub_set>(
          [&] {
              std::vector<hub::hub_set::post_fn> posts;
              for (std::size_t i = 0; i < thread_count(settings); ++i) {
                  posts.emplace_back([this, i](hub::hub_set::task t) { asio::post(workers_[i]->io, std::move(t)); });
              }
              return posts;
          }(),
          registry_)),
      api_(std::make_unique<api::server_api>(
          *hubs_, metrics, catalog, settings.api_key,
          api::api_limits{static_cast<std::size_t>(settings.max_users_per_publish), settings.catalog_permissive,
                          static_cast<std::size_t>(settings.max_batch_items)})),
      services_{settings,
                verifier,
                catalog,
                *api_,
                metrics,
                registry_,
                std::move(on_client_event),
                origins_of(settings),
                address_limits{address_limit_settings{static_cast<std::size_t>(settings.max_connections_per_address),
                                                      settings.handshakes_per_address_per_second,
                                                      static_cast<std::size_t>(settings.max_tracked_addresses)}},
                ws::endpoint::limits{static_cast<std::size_t>(settings.max_message_bytes),
                                     static_cast<std::size_t>(settings.send_queue_max_bytes),
                                     std::chrono::milliseconds(settings.handshake_timeout_ms)}} {
    for (std::size_t i = 0; i < hubs_->size(); ++i) {
        workers_.push_back(std::make_unique<worker>(i, hubs_->local(i), settings.invalid_message_log_per_second));
        auto* w = workers_.back().get();
        w->start_session = [this, w](ws::plain_socket socket, const std::shared_ptr<asio::ssl::context>& tls) {
            if (tls) {
                std::make_shared<https_session>(https_session_stream(std::move(socket), *tls), *w, services_)->run();
            } else {
                std::make_shared<http_session>(plain_http_stream(std::move(socket)), *w, services_)->run();
            }
        };
    }
    auto& io0 = workers_[0]->io;
    acceptor_.emplace(io0);
    signals_.emplace(io0, SIGINT, SIGTERM);
    reload_signal_.emplace(io0, SIGHUP);
    drain_timer_.emplace(io0);
    accept_retry_timer_.emplace(io0);
}

server::~server() {
    for (auto& w : workers_) w->io.stop();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
}

std::string server::listen() {
    if (!settings_.tls_cert_file.empty()) {
        std::string error;
        tls_ = make_tls_context(settings_.tls_cert_file, settings_.tls_key_file, error);
        if (!tls_) return error;
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(settings_.host, ec);
    if (ec) return "server.host '" + settings_.host + "' is not an IP address";
    const tcp::endpoint endpoint{address, static_cast<std::uint16_t>(settings_.port)};
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return "cannot listen on " + settings_.host + ":" + std::to_string(settings_.port) + ": " + ec.message();
    port_ = acceptor_->local_endpoint().port();
    return {};
}

void server::run() {
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& w : workers_) {
        guards.push_back(asio::make_work_guard(w->io));
        asio::post(w->io, [this, wp = w.get()] {
            arm_heartbeat(*wp);
            arm_expiry(*wp);
        });
    }
    signals_->async_wait([this](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        spdlog::info("signal received signal={} draining_ms={}", signal, settings_.shutdown_drain_ms);
        begin_drain();
    });
    await_reload();
    asio::post(workers_[0]->io, [this] { do_accept(); });
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
    asio::post(workers_[0]->io, [this] { begin_drain(); });
}

void server::do_accept() {
    auto& target = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    acceptor_->async_accept(target.io, [this, &target](const boost::system::error_code& ec, ws::plain_socket socket) {
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
        asio::post(target.io, [&target, socket = std::move(socket), tls = tls_]() mutable {
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
    w.heartbeat_timer.expires_after(std::chrono::milliseconds(settings_.heartbeat_interval_ms));
    w.heartbeat_timer.async_wait([this, &w](const boost::system::error_code& ec) {
        if (ec) return;
        const auto terminated = w.hub.heartbeat();
        if (terminated > 0) observability::metrics::add(services_.metrics.heartbeat_timeouts, terminated);
        arm_heartbeat(w);
    });
}

void server::arm_expiry(worker& w) {
    w.expiry_timer.expires_after(std::chrono::seconds(1));
    w.expiry_timer.async_wait([this, &w](const boost::system::error_code& ec) {
        if (ec) return;
        const auto expired = w.hub.expire(auth::unix_now());
        if (expired > 0) observability::metrics::add(services_.metrics.tokens_expired, expired);
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
    spdlog::info("draining connections={}", registry_.connections());
    hubs_->on_every_hub([](hub::hub& h) { return h.close_all(protocol::close_code::going_away, "server shutdown"); },
                        {});
    check_drained(std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.shutdown_drain_ms));
}

void server::check_drained(std::chrono::steady_clock::time_point deadline) {
    if (registry_.connections() == 0 || std::chrono::steady_clock::now() >= deadline) {
        if (registry_.connections() > 0) {
            spdlog::warn("drain deadline passed connections_left={}", registry_.connections());
        }
        for (auto& w : workers_) w->io.stop();
        return;
    }
    drain_timer_->expires_after(std::chrono::milliseconds(20));
    drain_timer_->async_wait([this, deadline](const boost::system::error_code& ec) {
        if (!ec) check_drained(deadline);
    });
}

}  // namespace zena::net
