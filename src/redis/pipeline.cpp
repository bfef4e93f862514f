#include "redis/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>

namespace zena::redis {

pipeline::pipeline(pipeline_options options) : options_(std::move(options)), backoff_(options_.retry) {
    // spdlog's registry is made on first use; made here, before the thread, it is never made by
    // two threads at once (spdlog's own guard is invisible to TSan, its library not instrumented).
    (void)spdlog::default_logger_raw();
    thread_ = std::thread([this] { run(); });
}

pipeline::~pipeline() { stop(); }

void pipeline::stop() {
    {
        const std::lock_guard lock{mutex_};
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
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
    {
        const std::lock_guard lock{mutex_};
        queue_.push_back(item{std::move(command), std::move(done)});
    }
    wake_.notify_one();
}

void pipeline::submit_encoded(std::vector<std::string> commands, std::vector<callback> done) {
    {
        const std::lock_guard lock{mutex_};
        for (std::size_t i = 0; i < commands.size(); ++i) {
            queue_.push_back(item{std::move(commands[i]), i < done.size() ? std::move(done[i]) : callback{}});
        }
    }
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

void pipeline::run() {
    std::deque<item> round;
    for (;;) {
        {
            std::unique_lock lock{mutex_};
            // While Redis is away, wake for the next attempt even with nothing queued, so that
            // up() turns true as soon as it is back.
            const auto until = connection_ ? std::chrono::steady_clock::now() + std::chrono::seconds(1)
                                           : std::max(next_attempt_, std::chrono::steady_clock::now());
            wake_.wait_until(lock, until, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) {
                round.swap(queue_);
                lock.unlock();
                fail(round);
                return;
            }
            round.swap(queue_);
        }
        if (!connection_ && !connect()) {
            fail(round);
            continue;
        }
        if (round.empty()) continue;
        for (const auto& i : round) connection_->append_encoded(i.command);
        std::size_t answered = 0;
        for (; answered < round.size(); ++answered) {
            auto r = connection_->next_reply();
            if (r.empty()) break;
            if (round[answered].done) round[answered].done(std::move(r));
        }
        if (answered < round.size() || connection_->broken()) {
            spdlog::warn("{} connection lost: {}", options_.name, connection_->error());
            {
                const std::lock_guard lock{mutex_};
                last_error_ = "connection lost: " + connection_->error();
            }
            connection_.reset();
            up_.store(false, std::memory_order_release);
            next_attempt_ = std::chrono::steady_clock::now();  // one immediate attempt, then backoff
            round.erase(round.begin(), round.begin() + static_cast<std::ptrdiff_t>(answered));
            // Written (some perhaps only in part) and not answered: Redis may run them yet.
            fail(round, true);
        }
        round.clear();
    }
}

}  // namespace zena::redis
