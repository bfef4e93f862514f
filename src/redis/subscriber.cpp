#include "redis/subscriber.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

namespace zena::redis {
namespace {

constexpr std::size_t k_channels_per_command = 1000;

// Whether `info` (INFO server) names a Redis of version 7 or later: sharded Pub/Sub.
bool offers_sharded(std::string_view info) {
    constexpr std::string_view k_key = "redis_version:";
    const auto at = info.find(k_key);
    if (at == std::string_view::npos) return false;
    int major = 0;
    for (auto i = at + k_key.size(); i < info.size() && info[i] >= '0' && info[i] <= '9'; ++i) {
        major = major * 10 + (info[i] - '0');
        if (major > 1000) break;
    }
    return major >= 7;
}

}  // namespace

subscriber::subscriber(subscriber_options options) : options_(std::move(options)), backoff_(options_.retry) {
    // spdlog's registry is made on first use; made here, before the thread, it is never made by
    // two threads at once (spdlog's own guard is invisible to TSan, its library not instrumented).
    (void)spdlog::default_logger_raw();
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread_ = std::thread([this] { run(); });
}

subscriber::~subscriber() {
    stop();
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void subscriber::stop() {
    {
        const std::lock_guard lock{mutex_};
        stopping_ = true;
    }
    wake();
    if (thread_.joinable()) thread_.join();
}

void subscriber::wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

void subscriber::subscribe(std::string channel, std::function<void(bool)> ready) {
    {
        const std::lock_guard lock{mutex_};
        requests_.push_back(request{request::subscribe, std::move(channel), {}, std::move(ready)});
    }
    wake();
}

void subscriber::unsubscribe(std::string channel) {
    {
        const std::lock_guard lock{mutex_};
        requests_.push_back(request{request::unsubscribe, std::move(channel), {}, {}});
    }
    wake();
}

void subscriber::post(std::function<void()> task) {
    {
        const std::lock_guard lock{mutex_};
        requests_.push_back(request{request::task, {}, std::move(task), {}});
    }
    wake();
}

void subscriber::write_subscribe(const std::vector<std::string>& channels, bool on) {
    if (!connection_ || channels.empty()) return;
    const bool sharded = sharded_.load(std::memory_order_relaxed);
    const std::string_view verb =
        on ? (sharded ? "SSUBSCRIBE" : "SUBSCRIBE") : (sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE");
    for (std::size_t from = 0; from < channels.size(); from += k_channels_per_command) {
        std::vector<std::string_view> argv{verb};
        const auto to = std::min(channels.size(), from + k_channels_per_command);
        for (auto i = from; i < to; ++i) argv.emplace_back(channels[i]);
        connection_->append(argv);
    }
}

void subscriber::apply(std::vector<request>& requests) {
    std::vector<std::string> on;
    std::vector<std::string> off;
    for (auto& r : requests) {
        if (r.what == request::task) {
            if (r.fn) r.fn();
            continue;
        }
        auto& st = channels_[r.channel];
        if (r.what == request::subscribe) {
            if (r.ready) {
                if (st.active) {
                    r.ready(true);
                } else if (!connection_) {
                    r.ready(false);
                } else {
                    st.waiters.push_back(std::move(r.ready));
                }
            }
            if (st.wanted) continue;
            st.wanted = true;
            if (connection_) {
                ++st.pending;
                on.push_back(r.channel);
            }
            continue;
        }
        if (!st.wanted) continue;
        st.wanted = false;
        st.active = false;
        if (st.resubscribing) {
            st.resubscribing = false;
            --resubscribing_;
        }
        for (auto& w : st.waiters) w(false);
        st.waiters.clear();
        if (connection_) off.push_back(r.channel);
        if (st.pending == 0) channels_.erase(r.channel);
    }
    write_subscribe(on, true);
    write_subscribe(off, false);
    requests.clear();
    if (connection_ && resubscribing_ == 0 && !up_.load(std::memory_order_relaxed)) {
        up_.store(true, std::memory_order_release);
        if (options_.on_up) options_.on_up();
    }
}

bool subscriber::connect() {
    std::string error;
    auto c = connection::open(options_.where, options_.timeout, error);
    if (c) {
        const std::string_view info[] = {"INFO", "server"};
        auto r = c->command(info);
        if (r.empty()) {
            error = "INFO failed: " + c->error();
            c.reset();
        } else {
            sharded_.store(r.ok() && offers_sharded(r.str()), std::memory_order_release);
        }
    }
    if (!c) {
        if (backoff_ == options_.retry) {
            spdlog::warn("{} unreachable at {}:{}: {}", options_.name, options_.where.host, options_.where.port, error);
        }
        return false;
    }
    spdlog::info("{} connected to {}:{} (sharded pubsub: {})", options_.name, options_.where.host, options_.where.port,
                 sharded_.load() ? "yes" : "no");
    backoff_ = options_.retry;
    connection_ = std::move(c);
    std::vector<std::string> all;
    resubscribing_ = 0;
    for (auto& [name, st] : channels_) {
        if (!st.wanted) continue;
        st.pending = 1;
        st.active = false;
        st.resubscribing = true;
        ++resubscribing_;
        all.push_back(name);
    }
    write_subscribe(all, true);
    return true;
}

void subscriber::lost() {
    spdlog::warn("{} connection lost: {}", options_.name, connection_ ? connection_->error() : std::string{});
    connection_.reset();
    const bool was_up = up_.exchange(false, std::memory_order_acq_rel);
    for (auto it = channels_.begin(); it != channels_.end();) {
        auto& st = it->second;
        st.active = false;
        st.pending = 0;
        st.resubscribing = false;
        for (auto& w : st.waiters) w(false);
        st.waiters.clear();
        it = st.wanted ? std::next(it) : channels_.erase(it);
    }
    resubscribing_ = 0;
    if (was_up && options_.on_down) options_.on_down();
}

void subscriber::handle(reply r) {
    if (!r.ok()) {
        spdlog::warn("{}: {}", options_.name, r.error_text());
        return;
    }
    if (!r.is_array() || r.size() < 3) return;
    const auto kind = str_of(r.element(0));
    const auto channel = str_of(r.element(1));
    if (kind == "smessage" || kind == "message") {
        const auto it = channels_.find(channel);
        if (it != channels_.end() && it->second.wanted && options_.on_message) {
            options_.on_message(channel, str_of(r.element(2)));
        }
        return;
    }
    if (kind != "ssubscribe" && kind != "subscribe") return;
    const auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    auto& st = it->second;
    if (st.pending > 0) --st.pending;
    if (st.pending > 0) return;
    if (!st.wanted) {
        channels_.erase(it);
        return;
    }
    st.active = true;
    auto waiters = std::move(st.waiters);
    st.waiters.clear();
    if (st.resubscribing) {
        st.resubscribing = false;
        --resubscribing_;
    }
    for (auto& w : waiters) w(true);
    if (resubscribing_ == 0 && !up_.load(std::memory_order_relaxed)) {
        up_.store(true, std::memory_order_release);
        if (options_.on_up) options_.on_up();
    }
}

void subscriber::run() {
    std::vector<request> requests;
    auto next_tick = std::chrono::steady_clock::now() + options_.tick;
    bool announced_down = false;
    auto next_attempt = std::chrono::steady_clock::now();
    for (;;) {
        {
            const std::lock_guard lock{mutex_};
            if (stopping_) break;
            requests.swap(requests_);
        }
        std::uint64_t drained = 0;
        [[maybe_unused]] const auto n = ::read(wake_fd_, &drained, sizeof drained);
        const auto now = std::chrono::steady_clock::now();
        if (now >= next_tick) {
            next_tick = now + options_.tick;
            if (options_.on_tick) options_.on_tick();
        }
        if (!connection_) {
            if (now < next_attempt || !connect()) {
                if (now >= next_attempt) {
                    next_attempt = now + backoff_;
                    backoff_ = std::min(backoff_ * 2, options_.max_retry);
                }
                apply(requests);  // subscriptions are remembered; waiters answered false
                if (!announced_down) {
                    announced_down = true;
                    if (options_.on_down) options_.on_down();
                }
                pollfd p{wake_fd_, POLLIN, 0};
                const auto until = std::min(next_attempt, next_tick);
                const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
                ::poll(&p, 1, static_cast<int>(std::max<long long>(wait, 1)));
                continue;
            }
            announced_down = false;
        }
        apply(requests);
        auto r = connection_->wait_reply(options_.tick, wake_fd_);
        if (r.empty()) {
            if (connection_->broken()) {
                lost();
                announced_down = true;
                next_attempt = std::chrono::steady_clock::now();  // one attempt at once, then backoff
            }
            continue;
        }
        handle(std::move(r));
        for (;;) {
            auto more = connection_->buffered_reply();
            if (more.empty()) break;
            handle(std::move(more));
        }
        if (connection_->broken()) {
            lost();
            announced_down = true;
            next_attempt = std::chrono::steady_clock::now();
            continue;
        }
        if (options_.on_burst) options_.on_burst();
    }
    connection_.reset();
    for (auto& [name, st] : channels_) {
        for (auto& w : st.waiters) w(false);
    }
}

}  // namespace zena::redis
