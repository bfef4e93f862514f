#include "redis/pipeline.hpp"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace zena::redis {

pipeline::pipeline(pipeline_options options) : options_(std::move(options)), backoff_(options_.retry) {
    // spdlog's registry is made on first use; made here, before the thread, it is never made by
    // two threads at once (spdlog's own guard is invisible to TSan, its library not instrumented).
    (void)spdlog::default_logger_raw();
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread_ = std::thread([this] { run(); });
}

pipeline::~pipeline() {
    stop();
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void pipeline::stop() {
    {
        const std::lock_guard lock{mutex_};
        stopping_ = true;
    }
    wake_.notify_all();
    signal();
    if (thread_.joinable()) thread_.join();
}

void pipeline::signal() const {
    const std::uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
}

namespace {
std::string encode_args(const pipeline::args& command) {
    const std::vector<std::string_view> views(command.begin(), command.end());
    return encode(views);
}
}  // namespace

void pipeline::submit(const args& command, callback done) { submit_encoded(encode_args(command), std::move(done)); }

void pipeline::submit(const std::vector<args>& commands, std::vector<callback> done) {
    std::vector<std::string> encoded;
    encoded.reserve(commands.size());
    for (const auto& c : commands) encoded.push_back(encode_args(c));
    submit_encoded(std::move(encoded), std::move(done));
}

void pipeline::submit_encoded(std::string command, callback done) {
    bool by_fd = false;
    {
        const std::lock_guard lock{mutex_};
        queue_.push_back(item{std::move(command), std::move(done)});
        by_fd = std::exchange(fd_waiting_, false);
    }
    if (by_fd) return signal();
    wake_.notify_one();
}

void pipeline::submit_encoded(std::vector<std::string> commands, std::vector<callback> done) {
    bool by_fd = false;
    {
        const std::lock_guard lock{mutex_};
        for (std::size_t i = 0; i < commands.size(); ++i) {
            queue_.push_back(item{std::move(commands[i]), i < done.size() ? std::move(done[i]) : callback{}});
        }
        by_fd = std::exchange(fd_waiting_, false);
    }
    if (by_fd) return signal();
    wake_.notify_one();
}

std::string pipeline::last_error() const {
    const std::lock_guard lock{mutex_};
    return last_error_;
}

void pipeline::fail(std::deque<item>& items, bool written) {
    for (auto& i : items) {
        if (i.done) i.done(written ? reply::unanswered() : reply{});
    }
    items.clear();
}

bool pipeline::connect() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_attempt_) return false;
    std::string error;
    auto c = connection::open(options_.where, options_.timeout, error);
    if (c && options_.on_connect && !options_.on_connect(*c, error)) c.reset();
    if (!c) {
        if (up_.exchange(false, std::memory_order_acq_rel) || backoff_ == options_.retry) {
            spdlog::warn("{} unreachable at {}:{}: {}", options_.name, options_.where.host, options_.where.port, error);
        }
        next_attempt_ = now + backoff_;
        backoff_ = std::min(backoff_ * 2, options_.max_retry);
        const std::lock_guard lock{mutex_};
        last_error_ = std::move(error);
        return false;
    }
    if (!up_.exchange(true, std::memory_order_acq_rel)) {
        spdlog::info("{} connected to {}:{}", options_.name, options_.where.host, options_.where.port);
    }
    backoff_ = options_.retry;
    connection_ = std::move(c);
    return true;
}

void pipeline::lost(std::deque<item>& written) {
    spdlog::warn("{} connection lost: {}", options_.name,
                 connection_->broken() ? connection_->error() : std::string{"no reply in time"});
    {
        const std::lock_guard lock{mutex_};
        last_error_ = "connection lost: " + (connection_->broken() ? connection_->error() : std::string{"timeout"});
    }
    connection_.reset();
    up_.store(false, std::memory_order_release);
    next_attempt_ = std::chrono::steady_clock::now();  // one immediate attempt, then backoff
    // Written (some perhaps only in part) and not answered: Redis may run them yet.
    fail(written, true);
}

void pipeline::run() {
    std::deque<item> taken;
    std::deque<item> written;  // sent, their replies due in this order
    for (;;) {
        {
            std::unique_lock lock{mutex_};
            if (written.empty()) {
                // While Redis is away, wake for the next attempt even with nothing queued, so
                // that up() turns true as soon as it is back.
                const auto until = connection_ ? std::chrono::steady_clock::now() + std::chrono::seconds(1)
                                               : std::max(next_attempt_, std::chrono::steady_clock::now());
                wake_.wait_until(lock, until, [&] { return stopping_ || !queue_.empty(); });
            }
            if (stopping_) {
                taken.swap(queue_);
                lock.unlock();
                fail(written, true);
                fail(taken);
                return;
            }
            taken.swap(queue_);
        }
        if (!connection_ && !connect()) {
            fail(taken);
            continue;
        }
        const auto now = std::chrono::steady_clock::now();
        for (auto& i : taken) {
            connection_->append_encoded(i.command);  // written by wait_reply() below
            i.written = now;
            written.push_back(std::move(i));
        }
        taken.clear();
        if (written.empty()) continue;
        // Write what was appended, then wait for the next reply, or for submit() to write
        // wake_fd_ (what it queued is written at once, without waiting for the replies due).
        bool queued = false;
        {
            const std::lock_guard lock{mutex_};
            queued = !queue_.empty();
            fd_waiting_ = !queued;
        }
        if (queued) signal();  // submitted meanwhile: write, then come back for it
        const auto deadline = written.front().written + options_.timeout;
        // Rounded up: a wait of 0 ms with the deadline not yet reached would spin until it is.
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        auto r = connection_->wait_reply(std::max(left, std::chrono::milliseconds{0}), wake_fd_);
        {
            const std::lock_guard lock{mutex_};
            fd_waiting_ = false;
        }
        if (r.empty()) {
            if (connection_->broken() || std::chrono::steady_clock::now() >= deadline) {
                lost(written);
                continue;
            }
            std::uint64_t count = 0;  // woken: take what was submitted
            (void)!::read(wake_fd_, &count, sizeof count);
            continue;
        }
        // This reply, and every whole one already read, to their commands.
        for (;;) {
            auto next = std::move(written.front());
            written.pop_front();
            if (next.done) next.done(std::move(r));
            if (written.empty()) break;
            r = connection_->buffered_reply();
            if (r.empty()) break;
        }
        if (connection_->broken()) lost(written);
    }
}

}  // namespace zena::redis
