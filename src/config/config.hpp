#pragma once
// Configuration: defaults, then a TOML file (--config / ZENA_CONFIG), then environment
// variables, then flags; the later wins. Everything is checked here, at start: a bad value is
// a clear message naming the option, never a surprise later. --help and docs/configuration.md
// are both generated from the same option table.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/settings.hpp"
#include "util/result.hpp"

namespace zena::config {

using env_lookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment.
std::optional<std::string> process_env(std::string_view name);

struct load_result {
    settings values;
    util::status status;              // the first problem found, naming the option
    std::vector<std::string> errors;  // every problem found, in the order found (check-config)
    bool help = false;                // --help was asked for
    bool dev_mode = false;            // resolved from `mode` and whether a secret and an API key are set
};

// `args` are the command-line arguments after the program name (and subcommand).
load_result load(const std::vector<std::string>& args, const env_lookup& env);

// Checks values against each other (each was checked alone as it was read): the first problem.
util::status validate(const settings& s, bool dev_mode);
// The same checks, every problem found.
std::vector<std::string> validate_all(const settings& s, bool dev_mode);

// The Redis engine's shards: redis.urls, or redis.url alone; an error when neither names one.
util::result<std::vector<redis::endpoint>> redis_shards(const settings& s);

// The --help text.
std::string help_text();

// docs/configuration.md, generated from the option table.
std::string markdown_reference();

}  // namespace zena::config
