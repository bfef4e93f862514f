#pragma once

// The program, wired in one place: settings -> token verifier -> metrics -> upstream (webhook,
// Redis stream) -> event loops and hubs -> engine (broker, history) -> server API -> sessions'
// context -> listener (net::server) -> Redis ingest; and it owns start and stop. main() only
// parses the command line and calls run().

#include "auth/jwt.hpp"
#include "config/settings.hpp"
#include "protocol/catalog.hpp"
#include "util/result.hpp"

namespace zena::app {

// Runs the server until SIGTERM/SIGINT and the drain; returns the process exit code.
// `dev_mode` only changes what is printed at start (the credentials and a walk-through).
int run(const config::settings& settings, const protocol::catalog& catalog, bool dev_mode);

// The catalog named by the settings (catalog.path), or the one compiled in; an error when it
// cannot be read or is invalid.
util::result<protocol::catalog> load_catalog(const config::settings& settings);

// What the token verifier (and `zena-realtime token`) take from the settings.
auth::jwt_settings jwt_settings_of(const config::settings& settings);

}  // namespace zena::app
