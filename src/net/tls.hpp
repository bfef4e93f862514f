#pragma once
// The server's TLS context (server.tls_cert_file, server.tls_key_file): TLS 1.2 and 1.3 only,
// certificate chain and key from PEM files. A reload (SIGHUP) builds a new context; handshakes
// after it use the new certificate, connections already open keep theirs.
//
// Threading: built and swapped on the accepting thread (worker 0); each session holds the
// context it started with through its ssl stream.

#include <memory>
#include <string>

#include "ws/asio.hpp"

namespace zena::net {

// A server context from the files, or null with `error` saying why.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& cert_file, const std::string& key_file,
                                                            std::string& error);

}  // namespace zena::net
