#pragma once
// One Pub/Sub connection to Redis, held by a thread of its own, subscribed to the channels its
// owner asks for: sharded Pub/Sub (SSUBSCRIBE, Redis 7) when the server offers it, classic
// SUBSCRIBE otherwise. Built on redis::connection, the project's one Redis client.
//
// - subscribe(channel, ready): the channel is wanted; `ready(true)` runs once Redis has confirmed
//   the subscription (at once when it already is), so that its owner reads a channel's position
//   only once nothing published after the read can pass it by; `ready(false)` when the line is
//   down meanwhile (the owner answers "unavailable" rather than wait). unsubscribe(channel): no longer.
//   Requests are written in batches, never one round trip per channel.
// - Each message of a wanted channel goes to `on_message`, in the order Redis sent them; after
//   each burst read from the line, `on_burst` (the owner hands a burst to its hubs at once).
// - When the line breaks the thread connects again (backoff from `retry` to `max_retry`) and
//   subscribes every wanted channel again. `on_down` runs when the line is lost (or the first
//   connect fails), `on_up` once every wanted channel is subscribed again: what was published
//   in between was not received, and the owner recovers it (engine/redis: from history).
// - post(task): runs `task` on the subscriber's thread (the owner's continuations, so its
//   per-channel state needs no lock); `on_tick` runs every `tick` there too.
//
// Threading: subscribe, unsubscribe, post and up from any thread; every callback runs on the
// subscriber's thread. The destructor stops and joins the thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "redis/connection.hpp"
#include "util/string_hash.hpp"

namespace zena::redis {

struct subscriber_options {
    endpoint where;
    std::chrono::milliseconds timeout{2000};
    std::chrono::milliseconds retry{100};
    std::chrono::milliseconds max_retry{2000};
    std::chrono::milliseconds tick{100};
    std::function<void(std::string_view channel, std::string_view message)> on_message;
    std::function<void()> on_burst;
    std::function<void()> on_up;
    std::function<void()> on_down;
    std::function<void()> on_tick;
    std::string name = "redis pubsub";
};

class subscriber {
public:
    explicit subscriber(subscriber_options options);
    ~subscriber();
    subscriber(const subscriber&) = delete;
    subscriber& operator=(const subscriber&) = delete;
    // Stops and joins the thread now (the destructor does it too): after it no callback runs.
    // An owner whose callbacks reach other objects stops every thread first, then destroys.
    void stop();

    void subscribe(std::string channel, std::function<void(bool)> ready = {});
    void unsubscribe(std::string channel);
    void post(std::function<void()> task);

    // Connected, and every wanted channel subscribed.
    bool up() const { return up_.load(std::memory_order_acquire); }
    // Whether the server offers sharded Pub/Sub (known once connected; SPUBLISH goes with it).
    bool sharded() const { return sharded_.load(std::memory_order_acquire); }

private:
    struct request {
        enum kind { subscribe, unsubscribe, task } what;
        std::string channel;
        std::function<void()> fn;
        std::function<void(bool)> ready;
    };
    struct channel_state {
        bool wanted = false;
        int pending = 0;  // subscribe commands written and not yet confirmed
        bool active = false;
        bool resubscribing = false;  // part of the round after a connect that up() waits for
        std::vector<std::function<void(bool)>> waiters;
    };
    void run();
    bool connect();
    void lost();
    void handle(reply r);
    void apply(std::vector<request>& requests);
    void write_subscribe(const std::vector<std::string>& channels, bool on);
    void wake();

    subscriber_options options_;
    int wake_fd_ = -1;
    std::mutex mutex_;
    std::vector<request> requests_;
    bool stopping_ = false;
    std::atomic<bool> up_{false};
    std::atomic<bool> sharded_{true};
    // The thread's own:
    std::unique_ptr<connection> connection_;
    util::string_map<channel_state> channels_;
    std::size_t resubscribing_ = 0;  // channels of the round after a connect not yet confirmed
    std::chrono::milliseconds backoff_;
    std::thread thread_;
};

}  // namespace zena::redis
