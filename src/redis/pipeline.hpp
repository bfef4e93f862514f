#pragma once
// Commands to one Redis, pipelined: callers on any thread submit commands with a callback; one
// thread of the pipeline's own writes what was submitted, several commands per write, and hands
// each reply to its command's callback, in order. It writes new commands while the replies of
// earlier ones are still due (it waits for a reply or for new commands, whichever comes first),
// so Redis always has work: a command never waits for a whole earlier batch to be answered.
// A thousand publishes submitted while a round trip is under way cost one more write, not a
// thousand. Used by the Redis engine (engine/redis); built on redis::connection, the project's
// one Redis client.
//
// When Redis cannot be reached, every command fails at once (its callback gets an empty reply)
// rather than waiting: a caller answers "unavailable" in microseconds. A command already
// written when the line broke, or unanswered `timeout` after it was written (a paused or
// overloaded Redis), gets an empty reply with `outcome_unknown()`, and so does every command
// written after it: Redis may have executed them, or may still. The
// connection is then closed, so nothing else goes to that Redis on it. The pipeline tries to
// connect again at most every `retry` (doubling up to `max_retry` while it keeps failing), so a
// dead Redis costs one refused connect per period, not one per command. `up()` says whether the
// last attempt worked. After each (re)connect `on_connect` runs on the pipeline's thread with
// the new connection, before any queued command (the engine loads its scripts there).
//
// Threading: submit() and up() from any thread. Callbacks run on the pipeline's thread, in
// submission order; they may submit again (never wait there for another command's reply).
// The destructor stops the thread; commands still queued get an empty reply.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "redis/connection.hpp"

namespace zena::redis {

struct pipeline_options {
    endpoint where;
    std::chrono::milliseconds timeout{2000};  // connect, each write, and each reply after its command's write
    std::chrono::milliseconds retry{100};
    std::chrono::milliseconds max_retry{2000};
    // On the pipeline's thread after each connect; false (with `error` set) drops the connection.
    std::function<bool(connection&, std::string& error)> on_connect;
    std::string name = "redis";  // in log lines
};

class pipeline {
public:
    using args = std::vector<std::string>;
    // An empty reply: not sent (nothing reached Redis), or sent and not answered
    // (reply::outcome_unknown(): Redis may have executed it).
    using callback = std::function<void(reply)>;

    explicit pipeline(pipeline_options options);
    ~pipeline();
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;
    // Stops and joins the thread now (the destructor does it too); what is still queued gets an
    // empty reply. A command submitted after it is never sent: its callback never runs.
    void stop();

    void submit(const args& command, callback done);
    // Several commands, written one after the other with nothing between them.
    void submit(const std::vector<args>& commands, std::vector<callback> done);
    // The same, encoded by the caller (command_writer): a hot path builds its command in one
    // string, on its own thread, instead of a string per argument.
    void submit_encoded(std::string command, callback done);
    void submit_encoded(std::vector<std::string> commands, std::vector<callback> done);

    bool up() const { return up_.load(std::memory_order_acquire); }
    // The last connection error, for /readyz and the logs.
    std::string last_error() const;

private:
    struct item {
        std::string command;  // encoded
        callback done;
        std::chrono::steady_clock::time_point written{};
    };
    void run();
    bool connect();
    // The line broke or a reply is late: the connection goes, and `written` gets unknown outcomes.
    void lost(std::deque<item>& written);
    void signal() const;  // wakes the thread waiting on wake_fd_
    // Empty replies to `items`: `written`, they may have been executed (reply::unanswered()).
    void fail(std::deque<item>& items, bool written = false);

    pipeline_options options_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<item> queue_;
    bool stopping_ = false;
    // The thread waits on wake_fd_ (replies are due) rather than on wake_: submit() writes it.
    bool fd_waiting_ = false;
    int wake_fd_ = -1;  // an eventfd
    std::string last_error_;
    std::atomic<bool> up_{false};
    std::unique_ptr<connection> connection_;  // the thread's own
    std::chrono::steady_clock::time_point next_attempt_{};
    std::chrono::milliseconds backoff_;
    std::thread thread_;
};

}  // namespace zena::redis
