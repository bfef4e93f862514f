#include "redis/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "redis/line.hpp"

namespace zena::redis {

using steady = std::chrono::steady_clock;

struct pipeline::state : std::enable_shared_from_this<state> {
    struct item {
        std::string command;  // encoded
        callback done;
        steady::time_point written{};
    };

    state(pipeline_options o, boost::asio::io_context& context)
        : options(std::move(o)),
          io(context),
          connecting(io, options.retry, options.max_retry),
          reply_timer(std::in_place, io) {}

    pipeline_options options;
    boost::asio::io_context& io;
    // Any thread's, under the mutex:
    mutable std::mutex mutex;
    std::deque<item> queue;
    bool posted = false;  // a flush() is posted and has not taken the queue yet
    bool stopping = false;
    std::string last_error;
    std::atomic<bool> up{false};
    // The context thread's:
    std::shared_ptr<line> link;
    connector connecting;
    bool stopped = false;
    std::deque<item> held;     // submitted while an attempt to connect is under way
    std::deque<item> written;  // sent, their replies due in this order
    std::optional<boost::asio::steady_timer> reply_timer;
    bool reply_timer_armed = false;

    // `fill` adds to the queue, under the mutex.
    template <typename Fill>
    void submit(Fill&& fill) {
        {
            const std::lock_guard lock{mutex};
            if (stopping) return;
            fill(queue);
            if (std::exchange(posted, true)) return;
        }
        // What this handler of the loop submits goes out in one write, once it returns.
        boost::asio::post(io, [self = shared_from_this()] { self->flush(); });
    }

    void flush() {
        std::deque<item> taken;
        {
            const std::lock_guard lock{mutex};
            taken.swap(queue);
            posted = false;
        }
        if (stopped) return fail(taken);
        // A line whose write failed is told so by a handler of its own; what comes before that
        // handler must not be written to it (nor answered "may have been applied").
        if (link && link->broken()) lost();
        if (link) return send(taken);
        if (connecting.busy() || connecting.due()) {
            for (auto& i : taken) held.push_back(std::move(i));
            return attempt();
        }
        fail(taken);  // Redis unreachable, and the next attempt not due: answered at once
    }

    void send(std::deque<item>& items) {
        if (items.empty()) return;
        const auto now = steady::now();
        for (auto& i : items) {
            link->send(i.command);
            i.written = now;
            written.push_back(std::move(i));
        }
        items.clear();
        link->flush();
        arm_reply_timer();
    }

    // Empty replies to `items`: `was_written`, they may have been executed (reply::unanswered()).
    static void fail(std::deque<item>& items, bool was_written = false) {
        auto taken = std::move(items);
        items.clear();
        for (auto& i : taken) {
            if (i.done) i.done(was_written ? reply::unanswered() : reply{});
        }
    }

    void attempt() {
        if (stopped || link) return;
        connecting.start(
            [where = options.where, timeout = options.timeout,
             setup = options.on_connect](std::string& error) -> std::unique_ptr<connection> {
                auto c = connection::open(where, timeout, error);
                if (c && setup && !setup(*c, error)) c.reset();
                return c;
            },
            [self = shared_from_this()](std::unique_ptr<connection> c, std::string error) {
                self->connected(std::move(c), std::move(error));
            });
    }

    void connected(std::unique_ptr<connection> c, std::string error) {
        if (stopped) return;
        if (!c) {
            if (up.exchange(false, std::memory_order_acq_rel) || connecting.first_step()) {
                spdlog::warn("{} unreachable at {}:{}: {}", options.name, options.where.host, options.where.port,
                             error);
            }
            connecting.failed();
            {
                const std::lock_guard lock{mutex};
                last_error = std::move(error);
            }
            fail(held);
            return schedule_retry();
        }
        if (!up.exchange(true, std::memory_order_acq_rel)) {
            spdlog::info("{} connected to {}:{}", options.name, options.where.host, options.where.port);
        }
        connecting.succeeded();
        link = line::make(io, std::move(c));
        link->read_for(shared_from_this());
        send(held);
    }

    // While Redis is away, the next attempt is made when due even with nothing queued, so that
    // up() turns true as soon as it is back.
    void schedule_retry() {
        if (stopped || link || connecting.busy()) return;
        connecting.when_due([self = shared_from_this()] { self->attempt(); });
    }

    // This reply, and every whole one already read, to their commands.
    void readable() {
        while (link && !written.empty()) {
            auto r = link->next();
            if (r.empty()) break;
            auto next = std::move(written.front());
            written.pop_front();
            if (next.done) next.done(std::move(r));
        }
        if (link && link->broken()) return lost();
        arm_reply_timer();
    }

    // Fires when the oldest command due was written `timeout` ago, and finds out whether it is
    // still due.
    void arm_reply_timer() {
        if (stopped || reply_timer_armed || written.empty()) return;
        reply_timer_armed = true;
        reply_timer->expires_at(written.front().written + options.timeout);
        reply_timer->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            self->reply_timer_armed = false;
            if (ec || self->stopped || self->written.empty()) return;
            if (steady::now() >= self->written.front().written + self->options.timeout) return self->lost();
            self->arm_reply_timer();
        });
    }

    // The line broke or a reply is late: the connection goes, and `written` gets unknown outcomes.
    void lost() {
        if (!link) return;
        const bool broken = link->broken();
        const auto why = broken ? link->error() : std::string{"no reply in time"};
        spdlog::warn("{} connection lost: {}", options.name, why);
        {
            const std::lock_guard lock{mutex};
            last_error = "connection lost: " + (broken ? why : std::string{"timeout"});
        }
        link->close();
        link.reset();
        up.store(false, std::memory_order_release);
        connecting.retry_now();  // one immediate attempt, then backoff
        // Written (some perhaps only in part) and not answered: Redis may run them yet.
        fail(written, true);
        schedule_retry();
    }

    // On the context's thread, or with no thread running it.
    void teardown() {
        if (stopped) return;
        stopped = true;
        std::deque<item> taken;
        {
            const std::lock_guard lock{mutex};
            stopping = true;
            taken.swap(queue);
        }
        if (link) link->close();
        link.reset();
        reply_timer.reset();
        up.store(false, std::memory_order_release);
        fail(written, true);
        fail(held);
        fail(taken);
        connecting.stop();  // an attempt under way ends within its timeout; its result is dropped
    }
};

pipeline::pipeline(pipeline_options options) {
    // spdlog's registry is made on first use; made here, before any thread, it is never made by
    // two threads at once (spdlog's own guard is invisible to TSan, its library not instrumented).
    (void)spdlog::default_logger_raw();
    auto& io = context_or_own(options.context, own_);
    state_ = std::make_shared<state>(std::move(options), io);
    // The first attempt at once, so that up() turns true without traffic.
    boost::asio::post(io, [s = state_] { s->attempt(); });
}

pipeline::~pipeline() { stop(); }

void pipeline::stop() {
    stop_on(own_, [s = state_] { s->teardown(); });
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
    state_->submit([&](std::deque<state::item>& queue) { queue.push_back({std::move(command), std::move(done)}); });
}

void pipeline::submit_encoded(std::vector<std::string> commands, std::vector<callback> done) {
    state_->submit([&](std::deque<state::item>& queue) {
        for (std::size_t i = 0; i < commands.size(); ++i) {
            queue.push_back({std::move(commands[i]), i < done.size() ? std::move(done[i]) : callback{}});
        }
    });
}

bool pipeline::up() const { return state_->up.load(std::memory_order_acquire); }

std::string pipeline::last_error() const {
    const std::lock_guard lock{state_->mutex};
    return state_->last_error;
}

}  // namespace zena::redis
