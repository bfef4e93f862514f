#pragma once
// What a step that can fail returns: a value, or an error that says what went wrong in words a
// person can act on. `status` is the same for a step with no value. No exceptions: callers test
// the result and pass the error on.
//
// Threading: value types.

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace zena::util {

struct error {
    std::string message;
};

template <typename T>
class [[nodiscard]] result {
public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
    result(error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT(google-explicit-constructor)

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const error& failure() const { return std::get<1>(v_); }
    const std::string& message() const { return failure().message; }

private:
    std::variant<T, error> v_;
};

class [[nodiscard]] status {
public:
    status() = default;
    status(error e) : error_(std::move(e)) {}  // NOLINT(google-explicit-constructor)

    bool ok() const { return !error_; }
    explicit operator bool() const { return ok(); }
    const error& failure() const { return *error_; }
    const std::string& message() const { return error_->message; }

private:
    std::optional<error> error_;
};

}  // namespace zena::util
