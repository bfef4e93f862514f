#pragma once
// The engine seam's cluster: what the server API asks of every node of a deployment (counts,
// disconnects, server-side subscriptions, stats, who is online) and which nodes are alive. One
// interface, two implementations: this process alone (local_cluster, engine.type = memory) and
// the nodes sharing Redis (engine/redis: a request published on a control channel, each node's
// answer published back to the asking node, which waits for as many answers as Redis says
// nodes received the request).
//
// Threading: any method from any thread; `done` exactly once, on any thread. The request
// handler runs on the engine's thread (Redis) or the caller's (local); it must answer once.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace zena::engine {

// A live node, as it last told the registry.
struct node_info {
    std::string id;
    std::string address;  // where it listens (host:port)
    std::uint64_t connections = 0;
    std::uint64_t users = 0;
    std::int64_t started_ms = 0;  // Unix ms
    std::int64_t updated_ms = 0;  // its last refresh
};

class cluster {
public:
    virtual ~cluster() = default;

    // What a node answers to `kind` with `args` (each node runs the same handler); set once,
    // before serving.
    using answer_fn = std::function<void(std::string answer)>;
    using handler = std::function<void(std::string_view kind, std::string_view args, answer_fn answer)>;
    virtual void on_request(handler h) = 0;

    // Asks every live node (this one too); `done` gets their answers (in no order), or an error
    // when the engine cannot be reached. Nodes that do not answer within the engine's timeout
    // are left out.
    using survey_done = std::function<void(util::result<std::vector<std::string>>)>;
    virtual void survey(std::string kind, std::string args, survey_done done) = 0;

    // The live nodes (this one included).
    using nodes_done = std::function<void(util::result<std::vector<node_info>>)>;
    virtual void nodes(nodes_done done) = 0;
};

// The cluster of one process: every request is answered by this node's handler.
class local_cluster final : public cluster {
public:
    explicit local_cluster(std::function<node_info()> self) : self_(std::move(self)) {}
    void on_request(handler h) override { handler_ = std::move(h); }
    void survey(std::string kind, std::string args, survey_done done) override {
        handler_(kind, args,
                 [done = std::move(done)](std::string answer) { done(std::vector<std::string>{std::move(answer)}); });
    }
    void nodes(nodes_done done) override { done(std::vector<node_info>{self_()}); }

private:
    std::function<node_info()> self_;
    handler handler_;
};

}  // namespace zena::engine
