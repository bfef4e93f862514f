// Micro benchmarks of the hub (Google Benchmark): what fan-out and targeted publishes cost the
// event-loop threads with the sockets taken away, and what a second thread buys (issue 17). The
// load generator takes one of this machine's two cores, so the end-to-end benchmark runs the
// server on one thread; this runs with both cores free.
//
// Each thread is the hub tests' task_thread (what hub_set needs of an event loop: post a task). A
// connection here does what ws::endpoint does when a frame is queued (append the shared frame
// to its queue, join its thread's flush list). The publishes are made on thread 0, as the API
// makes them on the event-loop thread that read the request: thread 0's hub runs inside the
// call, every other thread gets one task per publish (hub_set::on_every_hub). At the end of the
// turn each thread "flushes" the connections it queued to: with flush=0 it clears their queues;
// with flush=1 it also makes one writev(2) of each connection's frames to /dev/null, a system
// call per connection per turn as the real flush's sendmsg (cheaper than a TCP send, so a floor).
// A broadcast to everyone reaches the connections at the end of the turn, when each thread's hub
// visits them once with all the turn's broadcasts (hub::visit), before that flush.
//   build/zena-hub-bench [--benchmark_filter=...]
//   fanout/<connections>/<threads>/<publishes per turn>/<flush>: items = deliveries
//   targeted/<connections>/<threads>/<publishes per turn>/<flush>: items = publishes, each to
//     one user (one connection) picked at random, through the user's personal channel
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <functional>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "hub/hub_set.hpp"
#include "hub/task_thread.hpp"
#include "protocol/envelope.hpp"

namespace {

using zena::hub::hub_set;

// Per thread: the connections that queued frames since the last flush.
struct flush_list {
    std::vector<struct bench_connection*> dirty;
};

struct bench_connection final : zena::hub::connection {
    bench_connection(zena::hub::connection_id id, std::string user, flush_list& list)
        : connection(id, std::move(user)), list_(list) {}
    bool send(const zena::ws::outbound& message) override {
        zena::hub::hub::visit_pending();  // as every connection does first (hub::visit)
        if (queue.empty()) list_.dirty.push_back(this);
        queue.push_back(message.frame);
        return true;
    }
    bool send_gated(zena::hub::subscription&, const zena::ws::outbound& message, std::string_view,
                    std::uint64_t) override {
        return send(message);
    }
    bool subscribe_by_server(std::string_view) override { return false; }
    bool unsubscribe_by_server(std::string_view) override { return false; }
    void close(zena::ws::close_code, std::string_view) override {}
    bool heartbeat() override { return true; }

    std::vector<zena::ws::shared_frame> queue;

private:
    flush_list& list_;
};

// The threads, their hubs and `connections` connections (user u<i>), spread round-robin as the
// acceptor hands them out and added on their threads.
class bench_hubs {
public:
    bench_hubs(std::size_t connections, std::size_t threads, bool write_flush)
        : lists_(threads), write_flush_(write_flush) {
        std::vector<hub_set::post_fn> posts;
        for (std::size_t i = 0; i < threads; ++i) {
            loops_.push_back(std::make_unique<zena::hub::testing::task_thread>());
            posts.emplace_back([loop = loops_.back().get()](hub_set::task t) { loop->post(std::move(t)); });
        }
        hubs_ = std::make_unique<hub_set>(posts, registry_);
        on_each_thread([&](std::size_t t) {
            hub_set::enter(t);
            for (std::size_t i = t; i < connections; i += threads) {
                hubs_->local(t).add(std::make_shared<bench_connection>(i, "u" + std::to_string(i), lists_[t]));
            }
        });
        if (write_flush_) null_fd_ = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    }
    ~bench_hubs() {
        if (null_fd_ >= 0) ::close(null_fd_);
    }
    bench_hubs(const bench_hubs&) = delete;
    bench_hubs& operator=(const bench_hubs&) = delete;

    hub_set& hubs() { return *hubs_; }

    // Runs fn(t) on every thread t and waits for all of them.
    void on_each_thread(const std::function<void(std::size_t)>& fn) {
        std::latch finished(static_cast<std::ptrdiff_t>(loops_.size()));
        for (std::size_t t = 0; t < loops_.size(); ++t) {
            loops_[t]->post([&fn, &finished, t] {
                fn(t);
                finished.count_down();
            });
        }
        finished.wait();
    }

    // Runs `publish` on thread 0 (as the API does) and waits until its last publish reached every
    // hub (`publish` gets the `done` to give that last one), then the end of the turn: each thread
    // flushes the connections it queued to.
    void turn(const std::function<void(std::function<void(std::size_t)>)>& publish) {
        std::latch delivered(1);
        loops_[0]->post([&] { publish([&delivered](std::size_t) { delivered.count_down(); }); });
        delivered.wait();
        on_each_thread([this](std::size_t t) { flush(t); });
    }

private:
    void flush(std::size_t t) {
        zena::hub::hub::visit_pending();  // the turn's broadcasts, as the event loop does first
        std::vector<iovec> iov;
        for (auto* c : lists_[t].dirty) {
            if (write_flush_) {
                iov.clear();
                for (const auto& f : c->queue) {
                    const auto wire = f->wire();
                    iov.push_back({const_cast<char*>(wire.data()), wire.size()});
                }
                if (::writev(null_fd_, iov.data(), static_cast<int>(iov.size())) < 0) std::abort();
            }
            c->queue.clear();
        }
        lists_[t].dirty.clear();
    }

    std::vector<std::unique_ptr<zena::hub::testing::task_thread>> loops_;
    zena::hub::user_registry registry_;
    std::unique_ptr<hub_set> hubs_;
    std::vector<flush_list> lists_;
    bool write_flush_;
    int null_fd_ = -1;
};

// A ~200-byte ask.response, as the end-to-end benchmark publishes: to everyone, or on a channel.
zena::ws::outbound bench_message(std::string_view channel) {
    const auto payload = R"({"chunk":")" + std::string(150, 'x') + R"(","isComplete":false,"streamId":"s"})";
    if (channel.empty()) return zena::ws::outbound{zena::protocol::make_event_frame("ask.response", payload)};
    return zena::ws::outbound{zena::protocol::make_channel_frame("ask.response", payload, channel, {}, 0)};
}

void fanout(benchmark::State& state) {
    const auto connections = static_cast<std::size_t>(state.range(0));
    const auto threads = static_cast<std::size_t>(state.range(1));
    const auto per_turn = static_cast<std::size_t>(state.range(2));
    bench_hubs bench(connections, threads, state.range(3) != 0);
    const auto message = bench_message({});
    for (auto _ : state) {
        bench.turn([&](std::function<void(std::size_t)> done) {
            const auto publish = [&message] {
                return [&message](zena::hub::hub& h) { return h.send_to_all(message); };
            };
            for (std::size_t m = 1; m < per_turn; ++m) bench.hubs().on_every_hub(publish(), {});
            bench.hubs().on_every_hub(publish(), std::move(done));
        });
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * connections * per_turn));
}

void targeted(benchmark::State& state) {
    const auto connections = static_cast<std::size_t>(state.range(0));
    const auto threads = static_cast<std::size_t>(state.range(1));
    const auto per_turn = static_cast<std::size_t>(state.range(2));
    bench_hubs bench(connections, threads, state.range(3) != 0);
    // 4,096 publishes to random users, framed beforehand (framing is the API's work, not the hub's).
    struct target {
        std::string channel;
        zena::ws::outbound message;
    };
    std::vector<target> targets;
    std::mt19937 rng(7);
    for (int i = 0; i < 4096; ++i) {
        auto channel = "user:u" + std::to_string(std::uniform_int_distribution<std::size_t>(0, connections - 1)(rng));
        auto message = bench_message(channel);
        targets.push_back({std::move(channel), std::move(message)});
    }
    std::size_t next = 0;
    std::size_t reached = 0;
    for (auto _ : state) {
        bench.turn([&](std::function<void(std::size_t)> done) {
            const auto publish = [&] {
                const auto* t = &targets[next++ % targets.size()];
                return [t](zena::hub::hub& h) { return h.send_to_channel(t->channel, t->message); };
            };
            for (std::size_t m = 1; m < per_turn; ++m) bench.hubs().on_every_hub(publish(), {});
            bench.hubs().on_every_hub(publish(), [&reached, done = std::move(done)](std::size_t n) {
                reached += n;
                done(n);
            });
        });
    }
    if (reached != static_cast<std::size_t>(state.iterations()))
        state.SkipWithError("a targeted publish reached no connection");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per_turn));
}

}  // namespace

// fanout/<connections>/<threads>/<publishes per turn>/<flush>
BENCHMARK(fanout)
    ->ArgNames({"connections", "threads", "per_turn", "flush"})
    ->ArgsProduct({{1000, 10000}, {1, 2}, {1, 8}, {0, 1}})
    ->Args({100000, 1, 8, 0})
    ->Args({100000, 2, 8, 0})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// targeted/<connections>/<threads>/<publishes per turn>/<flush>
BENCHMARK(targeted)
    ->ArgNames({"connections", "threads", "per_turn", "flush"})
    ->ArgsProduct({{10000}, {1, 2}, {1, 64}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
