#pragma once
// The contract suites' way to wait for an engine's `done`: every call hands the engine a
// callback from `replies`, the test waits for it a bounded time (a missing answer fails the test
// instead of hanging it), and at the end of the test every callback must have been called
// exactly once.
//
// Threading: `make` and `wait` may be called from any thread; the callbacks may be called on any.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zena::contract {

// How long an engine may take to answer one call (a Redis round trip is well under it).
inline constexpr std::chrono::seconds k_reply_timeout{2};

class replies {
    struct counter {
        std::mutex mutex;
        std::condition_variable answered;
        int calls = 0;
    };

public:
    template <typename T>
    class slot {
    public:
        // The callback to hand to the engine: keeps the first value, counts every call.
        std::function<void(T)> callback() const {
            return [state = state_](T value) {
                const std::lock_guard lock(state->mutex);
                if (++state->calls == 1) state->value.emplace(std::move(value));
                state->answered.notify_all();
            };
        }

        // The value passed to `done`, or nullopt (and a failure) when it did not come in time.
        std::optional<T> wait() const {
            std::unique_lock lock(state_->mutex);
            if (!state_->answered.wait_for(lock, k_reply_timeout, [this] { return state_->calls > 0; })) {
                ADD_FAILURE() << "done was not called within " << k_reply_timeout.count() << " s";
                return std::nullopt;
            }
            return std::move(state_->value);
        }

    private:
        friend class replies;
        struct state : replies::counter {
            std::optional<T> value;
        };
        explicit slot(std::shared_ptr<state> s) : state_(std::move(s)) {}
        std::shared_ptr<state> state_;
    };

    template <typename T>
    slot<T> make() {
        auto s = std::make_shared<typename slot<T>::state>();
        const std::lock_guard lock(mutex_);
        made_.push_back(s);
        return slot<T>(std::move(s));
    }

    // Every callback made so far was called exactly once (a test's TearDown).
    void expect_each_called_once() const {
        const std::lock_guard lock(mutex_);
        for (const auto& c : made_) {
            const std::lock_guard counted(c->mutex);
            EXPECT_EQ(c->calls, 1) << "done must be called exactly once";
        }
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<counter>> made_;
};

// A channel-name prefix no other test, run or process shares, so that tests against a shared
// engine (one Redis) never see each other's keys: "ct-<8 random>-<test name>:".
inline std::string unique_prefix() {
    static constexpr std::string_view alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::random_device device;
    std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
    std::string prefix = "ct-";
    for (int i = 0; i < 8; ++i) prefix += alphabet[pick(device)];
    prefix += '-';
    if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) prefix += info->name();
    prefix += ':';
    return prefix;
}

}  // namespace zena::contract
