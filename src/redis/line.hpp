#pragma once
// The asynchronous side of the project's Redis client, shared by redis::pipeline and
// redis::subscriber: a connection made on a thread of its own (a blocking connect, AUTH, SELECT and
// the owner's setup, each bounded by the timeout, so an unreachable Redis never stalls an event
// loop), then driven by an io_context's thread: what is sent is written without blocking, what
// arrives is read into hiredis's reader when the socket is readable, and the owner takes the whole
// replies. The owners run on an event loop of the server (engine/redis: loop 0, so a publish
// crosses no thread) or, given none, on a thread of their own (`context_thread`).
//
// Threading: a line and its callbacks belong to its io_context's thread; a connector's
// `done` is posted there. Asio stays in line.cpp: this header only names io_context.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "redis/connection.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace zena::redis {

class line : public std::enable_shared_from_this<line> {
public:
    // Takes the connection (made by a connector's attempt); nothing is read until read().
    static std::shared_ptr<line> make(boost::asio::io_context& io, std::unique_ptr<connection> c);
    ~line();
    line(const line&) = delete;
    line& operator=(const line&) = delete;

    // Appends an encoded command (command_writer, encode()); written by flush().
    void send(std::string_view encoded);
    // Writes what was sent, as much as the socket takes now; the rest once it is writable.
    void flush();
    // Calls `on_readable` each time something arrived (take the replies with next()), and
    // `on_broken` once if the line breaks (a read or write failed, or Redis closed it). Neither
    // runs after close().
    void read(std::function<void()> on_readable, std::function<void()> on_broken);
    // read() for an owner held by a shared_ptr: its readable() and lost(), while it lives.
    template <typename Owner>
    void read_for(const std::shared_ptr<Owner>& owner) {
        const std::weak_ptr<Owner> weak = owner;
        read(
            [weak] {
                if (auto o = weak.lock()) o->readable();
            },
            [weak] {
                if (auto o = weak.lock()) o->lost();
            });
    }
    // The next whole reply already read, or an empty one.
    reply next() { return connection_->buffered_reply(); }
    bool broken() const { return connection_->broken() || failed_; }
    std::string error() const;
    // Stops reading and writing and closes the socket; the callbacks are dropped.
    void close();

private:
    struct io_state;
    line(boost::asio::io_context& io, std::unique_ptr<connection> c);
    void wait_readable();
    void fail(std::string why);

    std::unique_ptr<connection> connection_;
    std::unique_ptr<io_state> io_;
    std::string out_;
    std::size_t written_ = 0;  // of out_, already written
    bool waiting_writable_ = false;
    bool failed_ = false;
    bool closed_ = false;
    std::string why_;
    std::function<void()> on_readable_;
    std::function<void()> on_broken_;
};

// The attempts to connect of a line's owner (redis::pipeline, redis::subscriber), on an
// io_context. Each attempt (a blocking connect and setup) runs on a thread of its own and posts
// its result to the io_context: `done(connection or null, error)` runs on its thread, once the
// attempt no longer counts as under way. After a failure the next attempt is due `retry` later,
// doubling up to `max_retry` while they keep failing; a success resets that. At most one attempt
// at a time; stop() and the destructor wait for one under way (bounded by its timeout).
//
// Threading: everything on the io_context's thread (or with no thread running it).
class connector {
public:
    using attempt_fn = std::function<std::unique_ptr<connection>(std::string& error)>;
    using done_fn = std::function<void(std::unique_ptr<connection>, std::string error)>;
    connector(boost::asio::io_context& io, std::chrono::milliseconds retry, std::chrono::milliseconds max_retry);
    ~connector();
    connector(const connector&) = delete;
    connector& operator=(const connector&) = delete;

    // Starts an attempt, unless one is under way.
    void start(attempt_fn attempt, done_fn done);
    bool busy() const { return busy_; }
    // Whether the next attempt may start now.
    bool due() const;
    // Whether the backoff is still at its first step (no failure since the last success): the
    // owners log a failure only then, not once per attempt.
    bool first_step() const { return backoff_ == retry_; }
    void failed();     // the next attempt is due one backoff from now; the backoff doubles
    void succeeded();  // the backoff starts again from `retry`
    void retry_now();  // the next attempt is due at once (a line was just lost)
    // `start_next` runs when the next attempt is due, once however often this is asked before;
    // never after stop().
    void when_due(std::function<void()> start_next);
    // No attempt from now on: the timer goes, and an attempt under way is waited for (its result
    // is still posted; the owner drops it).
    void stop();

private:
    struct timer_state;
    void join();

    boost::asio::io_context& io_;
    std::chrono::milliseconds retry_;
    std::chrono::milliseconds max_retry_;
    std::chrono::milliseconds backoff_;
    std::chrono::steady_clock::time_point next_attempt_{};
    bool busy_ = false;
    std::unique_ptr<timer_state> timer_;
    std::thread thread_;
};

// An io_context with a thread of its own running it, for a pipeline or subscriber given no
// event loop. stop() lets the context finish what is posted, then joins the thread.
class context_thread {
public:
    context_thread();
    ~context_thread();
    context_thread(const context_thread&) = delete;
    context_thread& operator=(const context_thread&) = delete;
    boost::asio::io_context& io();
    // Runs `last` on the thread, then ends it (the owner's teardown): returns when it has.
    void stop(std::function<void()> last);

private:
    struct state;
    std::unique_ptr<state> state_;
    std::thread thread_;
};

// Where a pipeline or subscriber runs: the context it was `given`, or else one of its own, made
// in `own`.
boost::asio::io_context& context_or_own(boost::asio::io_context* given, std::unique_ptr<context_thread>& own);
// Runs an owner's `teardown` where it must: on its own thread when it has one (then joined),
// else here (on the given context's thread, or with no thread running that context).
void stop_on(std::unique_ptr<context_thread>& own, std::function<void()> teardown);

}  // namespace zena::redis
