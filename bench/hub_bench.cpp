// Micro benchmarks of the hub (Google Benchmark): what a broadcast costs the event-loop threads
// with the sockets taken away, and how it scales from one thread to two. The load generator
// takes one of this machine's two cores, so the end-to-end benchmark runs the server on one
// thread; this says what a second thread adds.
//
// Each thread is the hub tests' task_thread (what hub_set needs of an event loop: post a task). A
// connection here does what ws::endpoint does when a frame is queued (append the shared frame
// to its queue, join its thread's flush list); the "flush" then clears the queues without a
// system call.
//   build/zena-hub-bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <functional>
#include <latch>
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

void broadcast(benchmark::State& state) {
    const auto connections = static_cast<std::size_t>(state.range(0));
    const auto threads = static_cast<std::size_t>(state.range(1));
    const auto per_turn = static_cast<std::size_t>(state.range(2));  // messages per flush
    std::vector<std::unique_ptr<zena::hub::testing::task_thread>> loops;
    std::vector<hub_set::post_fn> posts;
    for (std::size_t i = 0; i < threads; ++i) {
        loops.push_back(std::make_unique<zena::hub::testing::task_thread>());
        posts.emplace_back([loop = loops.back().get()](hub_set::task t) { loop->post(std::move(t)); });
    }
    zena::hub::user_registry registry;
    hub_set hubs(posts, registry);
    std::vector<flush_list> lists(threads);
    // Runs fn(t) on every thread t and waits for all of them.
    const auto on_each_thread = [&](const std::function<void(std::size_t)>& fn) {
        std::latch finished(static_cast<std::ptrdiff_t>(threads));
        for (std::size_t t = 0; t < threads; ++t) {
            loops[t]->post([&fn, &finished, t] {
                fn(t);
                finished.count_down();
            });
        }
        finished.wait();
    };
    // Connections spread round-robin, as the acceptor hands them out; added on their threads.
    on_each_thread([&](std::size_t t) {
        for (std::size_t i = t; i < connections; i += threads) {
            hubs.local(t).add(std::make_shared<bench_connection>(i, "u" + std::to_string(i), lists[t]));
        }
    });
    const zena::ws::outbound message{zena::protocol::make_event_frame(
        "ask.response", R"({"chunk":")" + std::string(150, 'x') + R"(","isComplete":false,"streamId":"s"})")};

    for (auto _ : state) {
        std::latch delivered(1);
        for (std::size_t m = 0; m < per_turn; ++m) {
            std::function<void(std::size_t)> last;
            if (m + 1 == per_turn) last = [&delivered](std::size_t) { delivered.count_down(); };
            hubs.on_every_hub([&message](zena::hub::hub& h) { return h.send_to_all(message); }, std::move(last));
        }
        delivered.wait();
        // The end of the turn: each thread's flush empties the queues it filled.
        on_each_thread([&lists](std::size_t t) {
            for (auto* c : lists[t].dirty) c->queue.clear();
            lists[t].dirty.clear();
        });
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * connections * per_turn));
    state.counters["connections"] = static_cast<double>(connections);
    state.counters["threads"] = static_cast<double>(threads);
}

}  // namespace

// broadcast/<connections>/<threads>/<messages per turn>
BENCHMARK(broadcast)
    ->ArgNames({"connections", "threads", "per_turn"})
    ->Args({10000, 1, 1})
    ->Args({10000, 2, 1})
    ->Args({10000, 1, 8})
    ->Args({10000, 2, 8})
    ->Args({100000, 1, 8})
    ->Args({100000, 2, 8})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
