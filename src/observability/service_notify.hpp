#pragma once
// Telling the service manager how the process stands, systemd's notify protocol written by hand
// (sd_notify(3): one datagram of "KEY=value" lines to the AF_UNIX socket named by $NOTIFY_SOCKET),
// so a unit with Type=notify counts the server started only once it listens, without linking
// libsystemd. Without $NOTIFY_SOCKET (not under systemd, or another Type=) nothing is sent.
//
// Threading: any thread; each call opens, sends on and closes its own socket.

#include <string_view>

namespace zena::observability {

// Sends `state` (e.g. "READY=1\nSTATUS=listening") to `socket_path`: a filesystem path, or an
// abstract socket written with a leading '@'. False when the path is empty or unusable, or the
// datagram could not be sent; the server runs on either way.
bool notify_service_manager(std::string_view socket_path, std::string_view state);

// notify_service_manager($NOTIFY_SOCKET, state); false when the variable is not set.
bool notify_service_manager(std::string_view state);

}  // namespace zena::observability
