#include "redis/line.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <exception>
#include <system_error>
#include <utility>

namespace zena::redis {
namespace {

// What one readable turn reads at most before the replies are handed over and the loop's other
// work gets its turn (the rest is read on the next).
constexpr std::size_t k_read_per_turn = 256 * 1024;
// out_'s written part is dropped once it is this large (or all of it was written).
constexpr std::size_t k_compact_at = 64 * 1024;

}  // namespace

struct line::io_state {
    explicit io_state(boost::asio::io_context& io, int fd) : socket(io, fd) {}
    // The socket belongs to the hiredis context (it closes it): released, never closed, here.
    boost::asio::posix::stream_descriptor socket;
};

line::line(boost::asio::io_context& io, std::unique_ptr<connection> c)
    : connection_(std::move(c)), io_(std::make_unique<io_state>(io, connection_->fd())) {}

std::shared_ptr<line> line::make(boost::asio::io_context& io, std::unique_ptr<connection> c) {
    return std::shared_ptr<line>(new line(io, std::move(c)));
}

line::~line() { close(); }

void line::send(std::string_view encoded) {
    if (!closed_) out_ += encoded;
}

void line::flush() {
    if (closed_ || waiting_writable_ || failed_) return;
    while (written_ < out_.size()) {
        const auto n = connection_->write_available(std::string_view{out_}.substr(written_));
        if (n < 0) return fail(connection_->error());
        if (n == 0) {
            // The socket is full (Redis reads slower than we write): the rest once it drains.
            waiting_writable_ = true;
            io_->socket.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                                   [self = shared_from_this()](const boost::system::error_code& ec) {
                                       self->waiting_writable_ = false;
                                       if (ec || self->closed_) return;
                                       self->flush();
                                   });
            break;
        }
        written_ += static_cast<std::size_t>(n);
    }
    if (written_ == out_.size()) {
        out_.clear();
        written_ = 0;
    } else if (written_ >= k_compact_at) {
        out_.erase(0, written_);
        written_ = 0;
    }
}

void line::read(std::function<void()> on_readable, std::function<void()> on_broken) {
    on_readable_ = std::move(on_readable);
    on_broken_ = std::move(on_broken);
    wait_readable();
}

void line::wait_readable() {
    if (closed_) return;
    io_->socket.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               if (ec || self->closed_) return;
                               const bool ok = self->connection_->read_available(k_read_per_turn);
                               // Whole replies read before a break are still handed over.
                               if (self->on_readable_) self->on_readable_();
                               if (self->closed_) return;
                               if (!ok) return self->fail(self->connection_->error());
                               self->wait_readable();
                           });
}

void line::fail(std::string why) {
    if (failed_ || closed_) return;
    failed_ = true;
    why_ = std::move(why);
    // Told from a handler of its own, so that an owner never sees its line break inside flush().
    boost::asio::post(io_->socket.get_executor(), [self = shared_from_this()] {
        if (self->closed_) return;
        if (auto broken = std::move(self->on_broken_)) broken();
    });
}

std::string line::error() const {
    if (!why_.empty()) return why_;
    return connection_->error();
}

void line::close() {
    if (closed_) return;
    closed_ = true;
    on_readable_ = nullptr;
    on_broken_ = nullptr;
    boost::system::error_code ignored;
    (void)io_->socket.cancel(ignored);
    (void)io_->socket.release();  // hiredis closes the socket with its context
    connection_.reset();
}

struct connector::timer_state {
    explicit timer_state(boost::asio::io_context& io) : timer(io) {}
    boost::asio::steady_timer timer;
    bool armed = false;
};

connector::connector(boost::asio::io_context& io, std::chrono::milliseconds retry, std::chrono::milliseconds max_retry)
    : io_(io), retry_(retry), max_retry_(max_retry), backoff_(retry), timer_(std::make_unique<timer_state>(io)) {}

connector::~connector() { stop(); }

void connector::start(attempt_fn attempt, done_fn done) {
    if (busy_) return;
    busy_ = true;
    join();  // the last attempt's thread, which has ended
    // The owner's `done` holds the owner, and the owner holds this connector: it is alive when
    // the posted result runs.
    auto finish =
        std::make_shared<done_fn>([this, done = std::move(done)](std::unique_ptr<connection> c, std::string error) {
            busy_ = false;
            join();
            done(std::move(c), std::move(error));
        });
    try {
        thread_ = std::thread([&io = io_, attempt = std::move(attempt), finish]() mutable {
            std::string error;
            auto c = attempt(error);
            // Moved, not copied: this thread keeps no hold on the owner once it has posted.
            boost::asio::post(io, [c = std::move(c), error = std::move(error), finish = std::move(finish)]() mutable {
                (*finish)(std::move(c), std::move(error));
            });
        });
    } catch (const std::system_error& e) {
        // No thread to be had (the process's limit): this attempt fails, and the backoff tries
        // again later, rather than the exception ending the loop that called us.
        boost::asio::post(io_, [finish, why = std::string{"cannot start a thread to connect: "} + e.what()] {
            (*finish)(nullptr, why);
        });
    }
}

bool connector::due() const { return std::chrono::steady_clock::now() >= next_attempt_; }

void connector::failed() {
    next_attempt_ = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, max_retry_);
}

void connector::succeeded() { backoff_ = retry_; }

void connector::retry_now() { next_attempt_ = std::chrono::steady_clock::now(); }

void connector::when_due(std::function<void()> start_next) {
    if (!timer_ || timer_->armed) return;
    timer_->armed = true;
    timer_->timer.expires_at(next_attempt_);
    // `start_next` holds the owner, and so this connector, until the handler has run.
    timer_->timer.async_wait([this, start_next = std::move(start_next)](const boost::system::error_code& ec) {
        // Stopped: the timer is gone. A wait that had already expired when stop() destroyed the
        // timer still runs, with no error, so the timer is checked too.
        if (ec || !timer_) return;
        timer_->armed = false;
        start_next();
    });
}

void connector::stop() {
    timer_.reset();
    join();
}

void connector::join() {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

struct context_thread::state {
    boost::asio::io_context io{1};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
};

context_thread::context_thread() : state_(std::make_unique<state>()) {
    thread_ = std::thread([s = state_.get()] { s->io.run(); });
}

context_thread::~context_thread() { stop({}); }

boost::asio::io_context& context_thread::io() { return state_->io; }

void context_thread::stop(std::function<void()> last) {
    if (!thread_.joinable()) return;
    try {
        boost::asio::post(state_->io, [s = state_.get(), last = std::move(last)] {
            if (last) last();
            s->work.reset();
        });
    } catch (...) {
        // post throws only when it cannot allocate. The owner's teardown could then never run
        // and its callers would wait forever: stop here instead.
        std::terminate();
    }
    thread_.join();
}

boost::asio::io_context& context_or_own(boost::asio::io_context* given, std::unique_ptr<context_thread>& own) {
    if (given) return *given;
    own = std::make_unique<context_thread>();
    return own->io();
}

void stop_on(std::unique_ptr<context_thread>& own, std::function<void()> teardown) {
    if (own) return own->stop(std::move(teardown));
    teardown();
}

}  // namespace zena::redis
