#pragma once
// Whether this node should take traffic, beyond draining: conditions that make it unfit, each
// reported by the part that owns it (the Redis publish channel while it is not subscribed) and
// read by /readyz. Built by the app and passed in: the Redis ingest writes it, the server API
// holds it for the HTTP sessions (net::services reaches it through the API).
//
// Threading: any thread may report or read. A mutex guards the few conditions; it is taken when
// a condition changes and once per /readyz request, never on a delivery path. Probes must be
// cheap and must not call back into this object.

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zena::api {

class readiness {
public:
    // `what` is down, for `reason` (shown by /readyz). Reporting it again replaces the reason.
    void down(std::string_view what, std::string reason) {
        const std::lock_guard lock(mutex_);
        for (auto& [name, why] : down_) {
            if (name == what) {
                why = std::move(reason);
                return;
            }
        }
        down_.emplace_back(std::string{what}, std::move(reason));
    }

    // `what` is fit again.
    void up(std::string_view what) {
        const std::lock_guard lock(mutex_);
        std::erase_if(down_, [&](const auto& condition) { return condition.first == what; });
    }

    // A condition asked at each /readyz instead of reported: `probe` answers why the node is
    // unfit, or an empty string (the Redis engine: each shard's connections). Before serving.
    void probe(std::function<std::string()> probe) {
        const std::lock_guard lock(mutex_);
        probes_.push_back(std::move(probe));
    }

    // Empty when nothing is down; else the reasons, joined with "; ".
    std::string not_ready() const {
        const std::lock_guard lock(mutex_);
        std::string out;
        for (const auto& [name, why] : down_) {
            if (!out.empty()) out += "; ";
            out += why;
        }
        for (const auto& p : probes_) {
            auto why = p();
            if (why.empty()) continue;
            if (!out.empty()) out += "; ";
            out += why;
        }
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, std::string>> down_;  // (what, reason), in the order reported
    std::vector<std::function<std::string()>> probes_;
};

}  // namespace zena::api
