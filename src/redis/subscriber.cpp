#include "redis/subscriber.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "redis/line.hpp"
#include "util/string_hash.hpp"

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

struct subscriber::state : std::enable_shared_from_this<state> {
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

    state(subscriber_options o, boost::asio::io_context& context)
        : options(std::move(o)),
          io(context),
          connecting(io, options.retry, options.max_retry),
          tick_timer(std::in_place, io) {}

    subscriber_options options;
    boost::asio::io_context& io;
    // Any thread's:
    std::mutex mutex;
    std::vector<request> requests;  // under the mutex
    std::vector<request> held;      // the context thread's: asked while an attempt was under way
    bool posted = false;            // under the mutex: an apply_requests() is posted
    bool stopping = false;          // under the mutex
    std::atomic<bool> up{false};
    std::atomic<bool> sharded{true};
    // The context thread's:
    std::shared_ptr<line> link;
    connector connecting;
    bool stopped = false;
    bool announced_down = false;
    util::string_map<channel_state> channels;
    std::size_t resubscribing = 0;  // channels of the round after a connect not yet confirmed
    std::optional<boost::asio::steady_timer> tick_timer;

    void start() {
        if (stopped) return;  // stopped before the context ran (a context no thread ran yet)
        arm_tick();
        attempt();
    }

    void add(request r) {
        {
            const std::lock_guard lock{mutex};
            if (stopping) return;
            requests.push_back(std::move(r));
            if (std::exchange(posted, true)) return;
        }
        boost::asio::post(io, [self = shared_from_this()] { self->apply_requests(); });
    }

    void apply_requests() {
        std::vector<request> taken;
        {
            const std::lock_guard lock{mutex};
            taken.swap(requests);
            posted = false;
        }
        if (stopped) return;
        if (link && link->broken()) lost();  // as in pipeline::flush: the line's own handler may not have run yet
        if (connecting.busy()) {
            // Applied once the attempt under way has ended: a channel asked for while the line
            // comes up waits for it rather than being told "down".
            for (auto& r : taken) held.push_back(std::move(r));
            return;
        }
        if (!held.empty()) {
            auto before = std::move(held);
            held.clear();
            for (auto& r : taken) before.push_back(std::move(r));
            taken = std::move(before);
        }
        apply(taken);
    }

    void write_subscribe(const std::vector<std::string>& names, bool on) {
        if (!link || names.empty()) return;
        const bool shard = sharded.load(std::memory_order_relaxed);
        const std::string_view verb =
            on ? (shard ? "SSUBSCRIBE" : "SUBSCRIBE") : (shard ? "SUNSUBSCRIBE" : "UNSUBSCRIBE");
        for (std::size_t from = 0; from < names.size(); from += k_channels_per_command) {
            std::vector<std::string_view> argv{verb};
            const auto to = std::min(names.size(), from + k_channels_per_command);
            for (auto i = from; i < to; ++i) argv.emplace_back(names[i]);
            link->send(encode(argv));
        }
    }

    // Applies the requests in the order they were made: subscriptions and unsubscriptions go to
    // Redis in that order too (a channel left and taken again within one batch, a page reload,
    // ends subscribed), in as few commands as the order allows.
    void apply(std::vector<request>& taken) {
        std::vector<std::string> names;
        bool subscribing = true;  // what `names` asks for
        const auto turn = [&](bool on) {
            if (on == subscribing) return;
            write_subscribe(names, subscribing);
            names.clear();
            subscribing = on;
        };
        for (auto& r : taken) {
            if (r.what == request::task) {
                if (r.fn) r.fn();
                continue;
            }
            auto& st = channels[r.channel];
            if (r.what == request::subscribe) {
                if (r.ready) {
                    if (st.active) {
                        r.ready(true);
                    } else if (!link) {
                        r.ready(false);
                    } else {
                        st.waiters.push_back(std::move(r.ready));
                    }
                }
                if (st.wanted) continue;
                st.wanted = true;
                if (link) {
                    ++st.pending;
                    turn(true);
                    names.push_back(r.channel);
                }
                continue;
            }
            if (!st.wanted) continue;
            st.wanted = false;
            st.active = false;
            if (st.resubscribing) {
                st.resubscribing = false;
                --resubscribing;
            }
            for (auto& w : st.waiters) w(false);
            st.waiters.clear();
            if (link) {
                turn(false);
                names.push_back(r.channel);
            }
            if (st.pending == 0) channels.erase(r.channel);
        }
        write_subscribe(names, subscribing);
        taken.clear();
        if (link) link->flush();
        if (link && resubscribing == 0 && !up.load(std::memory_order_relaxed)) {
            up.store(true, std::memory_order_release);
            if (options.on_up) options.on_up();
        }
    }

    void arm_tick() {
        tick_timer->expires_after(options.tick);
        tick_timer->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (ec || self->stopped) return;
            if (self->options.on_tick) self->options.on_tick();
            if (!self->stopped) self->arm_tick();
        });
    }

    void attempt() {
        if (stopped || link) return;
        connecting.start(
            // The state outlives the attempt: teardown() joins it.
            [where = options.where, timeout = options.timeout,
             shard = &sharded](std::string& error) -> std::unique_ptr<connection> {
                auto c = connection::open(where, timeout, error);
                if (!c) return c;
                const std::string_view info[] = {"INFO", "server"};
                auto r = c->command(info);
                if (r.empty()) {
                    error = "INFO failed: " + c->error();
                    return nullptr;
                }
                shard->store(r.ok() && offers_sharded(r.str()), std::memory_order_release);
                return c;
            },
            [self = shared_from_this()](std::unique_ptr<connection> c, std::string error) {
                self->connected(std::move(c), std::move(error));
            });
    }

    void connected(std::unique_ptr<connection> c, std::string error) {
        if (stopped) return;
        if (!c) {
            if (connecting.first_step()) {
                spdlog::warn("{} unreachable at {}:{}: {}", options.name, options.where.host, options.where.port,
                             error);
            }
            connecting.failed();
            if (!announced_down) {
                announced_down = true;
                if (options.on_down) options.on_down();
            }
            apply_requests();  // what was asked meanwhile: remembered, its waiters told "down"
            return schedule_retry();
        }
        spdlog::info("{} connected to {}:{} (sharded pubsub: {})", options.name, options.where.host, options.where.port,
                     sharded.load() ? "yes" : "no");
        connecting.succeeded();
        announced_down = false;
        link = line::make(io, std::move(c));
        std::vector<std::string> all;
        resubscribing = 0;
        for (auto& [name, st] : channels) {
            if (!st.wanted) continue;
            st.pending = 1;
            st.active = false;
            st.resubscribing = true;
            ++resubscribing;
            all.push_back(name);
        }
        write_subscribe(all, true);
        link->read_for(shared_from_this());
        apply_requests();  // what was asked meanwhile; up() at once when nothing is wanted
        if (link) link->flush();
    }

    void schedule_retry() {
        if (stopped || link || connecting.busy()) return;
        connecting.when_due([self = shared_from_this()] { self->attempt(); });
    }

    void readable() {
        while (link) {
            auto r = link->next();
            if (r.empty()) break;
            handle(std::move(r));
        }
        if (!link) return;
        if (link->broken()) return lost();
        if (options.on_burst) options.on_burst();
    }

    void handle(reply r) {
        if (!r.ok()) {
            spdlog::warn("{}: {}", options.name, r.error_text());
            return;
        }
        if (!r.is_array() || r.size() < 3) return;
        const auto kind = str_of(r.element(0));
        const auto channel = str_of(r.element(1));
        if (kind == "smessage" || kind == "message") {
            const auto it = channels.find(channel);
            if (it != channels.end() && it->second.wanted && options.on_message) {
                options.on_message(channel, str_of(r.element(2)));
            }
            return;
        }
        if (kind != "ssubscribe" && kind != "subscribe") return;
        const auto it = channels.find(channel);
        if (it == channels.end()) return;
        auto& st = it->second;
        if (st.pending > 0) --st.pending;
        if (st.pending > 0) return;
        if (!st.wanted) {
            channels.erase(it);
            return;
        }
        st.active = true;
        auto waiters = std::move(st.waiters);
        st.waiters.clear();
        if (st.resubscribing) {
            st.resubscribing = false;
            --resubscribing;
        }
        for (auto& w : waiters) w(true);
        if (resubscribing == 0 && !up.load(std::memory_order_relaxed)) {
            up.store(true, std::memory_order_release);
            if (options.on_up) options.on_up();
        }
    }

    void lost() {
        if (!link) return;
        spdlog::warn("{} connection lost: {}", options.name, link->error());
        link->close();
        link.reset();
        const bool was_up = up.exchange(false, std::memory_order_acq_rel);
        for (auto it = channels.begin(); it != channels.end();) {
            auto& st = it->second;
            st.active = false;
            st.pending = 0;
            st.resubscribing = false;
            for (auto& w : st.waiters) w(false);
            st.waiters.clear();
            it = st.wanted ? std::next(it) : channels.erase(it);
        }
        resubscribing = 0;
        announced_down = true;
        if (was_up && options.on_down) options.on_down();
        connecting.retry_now();  // one attempt at once, then backoff
        attempt();
    }

    // On the context's thread, or with no thread running it.
    void teardown() {
        if (stopped) return;
        stopped = true;
        {
            const std::lock_guard lock{mutex};
            stopping = true;
            requests.clear();
        }
        if (link) link->close();
        link.reset();
        tick_timer.reset();
        up.store(false, std::memory_order_release);
        connecting.stop();
        for (auto& [name, st] : channels) {
            for (auto& w : st.waiters) w(false);
            st.waiters.clear();
        }
    }
};

subscriber::subscriber(subscriber_options options) {
    // spdlog's registry is made on first use; made here, before any thread, it is never made by
    // two threads at once (spdlog's own guard is invisible to TSan, its library not instrumented).
    (void)spdlog::default_logger_raw();
    auto& io = context_or_own(options.context, own_);
    state_ = std::make_shared<state>(std::move(options), io);
    boost::asio::post(io, [s = state_] { s->start(); });
}

subscriber::~subscriber() { stop(); }

void subscriber::stop() {
    stop_on(own_, [s = state_] { s->teardown(); });
}

void subscriber::subscribe(std::string channel, std::function<void(bool)> ready) {
    state_->add(state::request{state::request::subscribe, std::move(channel), {}, std::move(ready)});
}

void subscriber::unsubscribe(std::string channel) {
    state_->add(state::request{state::request::unsubscribe, std::move(channel), {}, {}});
}

void subscriber::post(std::function<void()> task) {
    state_->add(state::request{state::request::task, {}, std::move(task), {}});
}

bool subscriber::up() const { return state_->up.load(std::memory_order_acquire); }

bool subscriber::sharded() const { return state_->sharded.load(std::memory_order_acquire); }

}  // namespace zena::redis
