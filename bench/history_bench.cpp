// Micro benchmarks of the memory history (engine/memory/memory_history, Google Benchmark): what a
// stored event costs in memory and in time, with the sockets and the HTTP API taken away.
//
// - BM_HistoryFill/channels/events/payload: a fresh history, `events` appends round-robin over
//   `channels` channels, each a new event (as a publish makes one) of a `payload`-byte JSON
//   payload. Counters per stored event: `accounted_B` (memory_history::bytes(), the budget's own
//   count), `heap_B` (what malloc holds more after the fill than before, the events included:
//   mallinfo2 in-use + mmapped bytes), `frame_B` (the frame a connection gets). Time per append.
// - BM_HistoryAppendFull/channels/history_size: appends to channels that are already full (each
//   append drops the oldest): the steady state of a busy server.
// - BM_HistoryReadSince/missed: a resume's read, the `missed` events after a position, in a history
//   of 10,000 channels: what the reconnect storm (bench/README.md, `resume`) asks per connection.
//
//   build/zena-history-bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/memory/memory_history.hpp"
#include "protocol/json_reader.hpp"

namespace {

using zena::engine::event;
using zena::engine::history_limits;
using zena::engine::memory_history;
using zena::engine::memory_history_options;

std::size_t heap_in_use() {
    const auto m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

std::string payload_of(std::size_t n, std::size_t bytes) {
    // {"chunk":"S<n> xxx…","isComplete":false,"streamId":"bench"}: the load generator's shape.
    const std::string head = "S" + std::to_string(n) + " ";
    const std::size_t fixed = 49 + head.size();
    return R"({"chunk":")" + head + std::string(bytes > fixed ? bytes - fixed : 0, 'x') +
           R"(","isComplete":false,"streamId":"bench"})";
}

std::shared_ptr<const event> make_event(std::size_t n, std::size_t payload_bytes) {
    auto e = std::make_shared<event>();
    e->type = "ask.response";
    // As the API makes it (api/server_api: the parsed payload, minified): its capacity is the
    // server's, not this file's concatenations'.
    simdjson::dom::element parsed;
    if (zena::protocol::thread_json_parser().parse(payload_of(n, payload_bytes)).get(parsed) != simdjson::SUCCESS) {
        std::abort();
    }
    e->payload = zena::protocol::minify_json(parsed);
    e->message.delivery = zena::ws::delivery_class::ordered;
    return e;
}

std::vector<std::string> channel_names(std::size_t channels) {
    std::vector<std::string> names;
    names.reserve(channels);
    for (std::size_t c = 0; c < channels; ++c) names.push_back("hist:c" + std::to_string(c));
    return names;
}

memory_history_options unbounded() {
    memory_history_options options;
    options.max_bytes = std::size_t{4} << 30U;  // no budget eviction in these runs
    return options;
}

void BM_HistoryFill(benchmark::State& state) {
    const auto channels = static_cast<std::size_t>(state.range(0));
    const auto count = static_cast<std::size_t>(state.range(1));
    const auto payload_bytes = static_cast<std::size_t>(state.range(2));
    const auto names = channel_names(channels);
    const history_limits limits;  // 1,000 events per channel, 24 h: nothing is dropped here
    double accounted = 0;
    double heap = 0;
    double frame = 0;
    for (auto _ : state) {
        state.PauseTiming();
        malloc_trim(0);
        const auto heap_0 = heap_in_use();
        std::vector<std::shared_ptr<const event>> events;
        events.reserve(count);
        for (std::size_t i = 0; i < count; ++i) events.push_back(make_event(i, payload_bytes));
        auto h = std::make_unique<memory_history>(unbounded());
        std::size_t frame_bytes = 0;
        state.ResumeTiming();
        for (std::size_t i = 0; i < count; ++i) {
            h->append(names[i % channels], std::move(events[i]), limits, [&](auto r) {
                if (r.ok()) frame_bytes += r.value().message.frame->wire().size();
            });
        }
        state.PauseTiming();
        events = {};  // the history holds the events now; the vector's slots are not the history's
        accounted = static_cast<double>(h->bytes()) / static_cast<double>(count);
        heap = static_cast<double>(heap_in_use() - heap_0) / static_cast<double>(count);
        frame = static_cast<double>(frame_bytes) / static_cast<double>(count);
        h.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
    state.counters["accounted_B"] = accounted;
    state.counters["heap_B"] = heap;
    state.counters["frame_B"] = frame;
    state.counters["heap/accounted"] = heap / accounted;
}
BENCHMARK(BM_HistoryFill)
    ->ArgNames({"channels", "events", "payload"})
    ->Args({1000, 100000, 120})
    ->Args({1000, 100000, 200})
    ->Args({10000, 200000, 120})
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

void BM_HistoryAppendFull(benchmark::State& state) {
    const auto channels = static_cast<std::size_t>(state.range(0));
    history_limits limits;
    limits.max_events = static_cast<std::size_t>(state.range(1));
    const auto names = channel_names(channels);
    memory_history h(unbounded());
    std::size_t n = 0;
    for (std::size_t i = 0; i < channels * (limits.max_events + 1); ++i, ++n) {
        h.append(names[n % channels], make_event(n, 120), limits, [](auto) {});
    }
    for (auto _ : state) {
        h.append(names[n % channels], make_event(n, 120), limits, [](auto r) { benchmark::DoNotOptimize(r); });
        ++n;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistoryAppendFull)->ArgNames({"channels", "history_size"})->Args({1000, 100})->Args({1000, 1000});

void BM_HistoryReadSince(benchmark::State& state) {
    const auto missed = static_cast<std::size_t>(state.range(0));
    constexpr std::size_t channels = 10000;
    const auto names = channel_names(channels);
    memory_history h(unbounded());
    const history_limits limits;
    std::vector<zena::engine::position> positions(channels);
    for (std::size_t c = 0; c < channels; ++c) {
        h.top(names[c], [&](auto r) { positions[c] = r.value(); });
    }
    std::size_t n = 0;
    for (std::size_t k = 0; k < missed; ++k) {
        for (std::size_t c = 0; c < channels; ++c) h.append(names[c], make_event(n++, 120), limits, [](auto) {});
    }
    std::size_t c = 0;
    for (auto _ : state) {
        h.read(names[c], positions[c], 1000, [&](auto r) {
            if (!r.ok() || !r.value().recovered || r.value().events.size() != missed) state.SkipWithError("bad read");
            benchmark::DoNotOptimize(r);
        });
        c = (c + 1) % channels;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistoryReadSince)->ArgNames({"missed"})->Arg(20)->Arg(100);

}  // namespace

BENCHMARK_MAIN();
