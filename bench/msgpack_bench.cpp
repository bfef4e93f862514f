// MessagePack against JSON (docs/protocol.md#messagepack, docs/decisions.md): what each costs the
// server per publish and what each puts on the wire per delivery, for the seed's eight events and
// a 2 KiB ask.response chunk.
//
//   framing/json/<event>       the JSON frame of a channel event, built once per publish (today's)
//   framing/msgpack/<event>    its binary twin, transcoded from that JSON once per publish when a
//                              msgpack connection exists (what the subprotocol adds)
//   framing/msgpack_cxx/<event> the same transcode through libmsgpack-cxx's packer (only when its
//                              header is found: -DZENA_MSGPACK_CXX_INCLUDE=<dir>), for the choice
//   client/json, client/msgpack, client/msgpack_cxx   a client's thread.view, decoded and checked
//
// Counters: wire_bytes (the frame as a connection without permessage-deflate gets it) and
// deflated_bytes (with it). Per delivery the frame is shared, so the server's per-delivery work is
// the same queueing either way; the bytes are what differ.
//   build/zena-msgpack-bench [--benchmark_filter=...] [--benchmark_min_time=0.1]
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "protocol/catalog.hpp"
#include "protocol/client_message.hpp"
#include "protocol/envelope.hpp"
#include "protocol/json_reader.hpp"
#include "protocol/json_writer.hpp"
#include "protocol/msgpack.hpp"

#if defined(ZENA_BENCH_MSGPACK_CXX)
#define MSGPACK_NO_BOOST
#include <msgpack.hpp>
#endif

namespace {

struct sample {
    const char* type;
    std::string payload;
};

std::vector<sample> samples() {
    std::vector<sample> out = {
        {"sync.started", R"({"accountId":"acc-1","provider":"gmail"})"},
        {"sync.progress", R"({"accountId":"acc-1","totalThreads":500,"processedThreads":120})"},
        {"sync.completed", R"({"accountId":"acc-1","threadsProcessed":500,"success":false,"error":"quota"})"},
        {"thread.new", R"({"threadId":"thread-123","accountId":"account-456"})"},
        {"thread.updated",
         R"({"threadId":"thread-123","classification":"offer","category":"deal","nextActionOwner":"agent"})"},
        {"deal.risk",
         R"({"dealId":"deal-123","riskLevel":"high","riskFlags":["silent-buyer"],"riskReason":"No reply in 7 days"})"},
        {"task.created",
         R"({"taskId":"task-1","label":"Call vendor","dueDate":"2026-12-01T09:00:00.000Z","dealId":"deal-123","source":"ai"})"},
        {"ask.response",
         R"({"chunk":"The offer","isComplete":true,"streamId":"q1","sources":[{"type":"thread","id":"thread-123","title":"Offer on 12 Main St"}],"suggestedActions":["Reply"]})"},
    };
    // A 2 KiB chunk of an answer being streamed: prose, as a model writes it.
    std::string chunk;
    const std::string_view prose = "The buyer's agent replied on Tuesday with a revised offer of 1.2M and asked for ";
    while (chunk.size() < 2048) chunk += prose;
    chunk.resize(2048);
    std::string payload = R"({"chunk":)";
    zena::protocol::append_json_string(payload, chunk);
    payload += R"(,"isComplete":false,"streamId":"q7"})";
    out.push_back({"ask.response_2KiB", payload});
    return out;
}

zena::ws::shared_frame json_frame(const sample& s) {
    return zena::protocol::make_channel_frame(s.type, s.payload, "user:alice", "k2x9c1aa0", 42);
}

void count_bytes(benchmark::State& state, const zena::ws::frame& f) {
    state.counters["wire_bytes"] = static_cast<double>(f.wire().size());
    state.counters["deflated_bytes"] = static_cast<double>(f.deflated_wire().size());
}

void framing_json(benchmark::State& state, const sample& s) {
    for (auto _ : state) benchmark::DoNotOptimize(json_frame(s));
    count_bytes(state, *json_frame(s));
}

void framing_msgpack(benchmark::State& state, const sample& s) {
    const auto json = json_frame(s);
    for (auto _ : state) benchmark::DoNotOptimize(zena::protocol::make_msgpack_frame(*json));
    count_bytes(state, *zena::protocol::make_msgpack_frame(*json));
}

const zena::protocol::catalog& shipped() {
    static const auto c = [] {
        std::string error;
        return *zena::protocol::catalog::parse(zena::protocol::builtin_catalog_json(), error);
    }();
    return c;
}

constexpr std::string_view k_thread_view = R"({"type":"thread.view","payload":{"threadId":"thread-123"}})";

void client_json(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(zena::protocol::parse_client_message(k_thread_view, shipped()));
}

void client_msgpack(benchmark::State& state) {
    std::string bytes;
    zena::protocol::json_to_msgpack(k_thread_view, bytes);
    for (auto _ : state) {
        std::string json;
        zena::protocol::msgpack_to_json(bytes, json);
        benchmark::DoNotOptimize(zena::protocol::parse_client_message(json, shipped()));
    }
}

#if defined(ZENA_BENCH_MSGPACK_CXX)
// The library's packer, fed by the same simdjson walk (it has no JSON reader of its own).
void pack(msgpack::packer<msgpack::sbuffer>& p, simdjson::dom::element e) {
    using type = simdjson::dom::element_type;
    switch (e.type()) {
        case type::OBJECT: {
            const auto o = e.get_object().value_unsafe();
            p.pack_map(static_cast<std::uint32_t>(o.size()));
            for (const auto f : o) {
                p.pack_str(static_cast<std::uint32_t>(f.key.size()));
                p.pack_str_body(f.key.data(), static_cast<std::uint32_t>(f.key.size()));
                pack(p, f.value);
            }
            return;
        }
        case type::ARRAY: {
            const auto a = e.get_array().value_unsafe();
            p.pack_array(static_cast<std::uint32_t>(a.size()));
            for (const auto v : a) pack(p, v);
            return;
        }
        case type::STRING: {
            const auto s = e.get_string().value_unsafe();
            p.pack_str(static_cast<std::uint32_t>(s.size()));
            p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
            return;
        }
        case type::INT64: p.pack(e.get_int64().value_unsafe()); return;
        case type::UINT64: p.pack(e.get_uint64().value_unsafe()); return;
        case type::DOUBLE: p.pack_double(e.get_double().value_unsafe()); return;
        case type::BOOL: e.get_bool().value_unsafe() ? p.pack_true() : p.pack_false(); return;
        case type::NULL_VALUE: p.pack_nil(); return;
    }
}

void framing_msgpack_cxx(benchmark::State& state, const sample& s) {
    const auto json = json_frame(s);
    thread_local simdjson::dom::parser parser;
    std::size_t size = 0;
    for (auto _ : state) {
        simdjson::dom::element root;
        if (parser.parse(json->payload().data(), json->payload().size()).get(root) != simdjson::SUCCESS) {
            state.SkipWithError("parse");
        }
        msgpack::sbuffer buffer;
        msgpack::packer<msgpack::sbuffer> p(buffer);
        pack(p, root);
        // As a frame, to compare like with like.
        benchmark::DoNotOptimize(zena::ws::frame::make(zena::ws::opcode::binary, {buffer.data(), buffer.size()}));
        size = buffer.size();
    }
    state.counters["msgpack_bytes"] = static_cast<double>(size);
}

// The library's unpacker, bounded as ours is, then JSON written from its object.
void write_json(std::string& out, const msgpack::object& o) {
    switch (o.type) {
        case msgpack::type::NIL: out += "null"; return;
        case msgpack::type::BOOLEAN: out += o.via.boolean ? "true" : "false"; return;
        case msgpack::type::POSITIVE_INTEGER: out += std::to_string(o.via.u64); return;
        case msgpack::type::NEGATIVE_INTEGER: out += std::to_string(o.via.i64); return;
        case msgpack::type::STR: zena::protocol::append_json_string(out, {o.via.str.ptr, o.via.str.size}); return;
        case msgpack::type::ARRAY:
            out += '[';
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
                if (i) out += ',';
                write_json(out, o.via.array.ptr[i]);
            }
            out += ']';
            return;
        case msgpack::type::MAP:
            out += '{';
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                if (i) out += ',';
                write_json(out, o.via.map.ptr[i].key);
                out += ':';
                write_json(out, o.via.map.ptr[i].val);
            }
            out += '}';
            return;
        default: out += "null"; return;
    }
}

void client_msgpack_cxx(benchmark::State& state) {
    std::string bytes;
    zena::protocol::json_to_msgpack(k_thread_view, bytes);
    const msgpack::unpack_limit limits(64, 64, 65536, 0, 0, 32);
    for (auto _ : state) {
        const auto handle = msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr, limits);
        std::string json;
        write_json(json, handle.get());
        benchmark::DoNotOptimize(zena::protocol::parse_client_message(json, shipped()));
    }
}
#endif

const bool registered = [] {
    static const auto all = samples();
    for (const auto& s : all) {
        benchmark::RegisterBenchmark((std::string("framing/json/") + s.type).c_str(), framing_json, s);
        benchmark::RegisterBenchmark((std::string("framing/msgpack/") + s.type).c_str(), framing_msgpack, s);
#if defined(ZENA_BENCH_MSGPACK_CXX)
        benchmark::RegisterBenchmark((std::string("framing/msgpack_cxx/") + s.type).c_str(), framing_msgpack_cxx, s);
#endif
    }
    benchmark::RegisterBenchmark("client/json", client_json);
    benchmark::RegisterBenchmark("client/msgpack", client_msgpack);
#if defined(ZENA_BENCH_MSGPACK_CXX)
    benchmark::RegisterBenchmark("client/msgpack_cxx", client_msgpack_cxx);
#endif
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
