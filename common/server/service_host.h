// The bootstrap every pocketmail service shares: a gRPC server on a unix
// socket under a 0700 runtime dir, optionally also on 127.0.0.1 TCP with a
// bearer token, plus server reflection and grpc.health.v1, and graceful
// shutdown on SIGTERM/SIGINT.
//
//   auto settings = config::Settings::Load(argc, argv, server::StandardSpecs("ledger", own_specs));
//   LedgerServiceImpl impl(...);
//   auto host = server::ServiceHost::Start(server::OptionsFromSettings("ledger", *settings),
//   {&impl});
//   (*host)->Wait();   // returns after SIGTERM, once in-flight calls finished
#ifndef POCKETMAIL_COMMON_SERVER_SERVICE_HOST_H_
#define POCKETMAIL_COMMON_SERVER_SERVICE_HOST_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/settings.h"
#include "grpcpp/grpcpp.h"

namespace pocketmail::server {

struct ServerOptions {
  std::string service_name;  // "ledger", "router", "injector", "fetcher"
  std::string runtime_dir;   // created 0700 if missing; refused if group/other-accessible
  std::string tcp_address;   // "" = unix socket only; else "127.0.0.1:PORT" (loopback only)
  std::string
      token_file;  // required when tcp_address is set; 0600; the operator token (all methods)
  // Optional, 0600: the gateway token, limited to kGatewayMethods
  // (bearer_token_auth.h). Must differ from the operator token.
  std::string gateway_token_file;
  // Messages are streamed in ≤1 MiB chunks, but leave headroom for metadata.
  int max_message_bytes = 8 << 20;
  // Listen on the socket of each of these names (empty: just service_name's).
  // The combined binary serves all four services on all four sockets.
  std::vector<std::string> socket_names;
};

// Declares the settings every service has (runtime dir, TCP address, token
// files, log level) in front of the service's own specs.
std::vector<config::Spec> StandardSpecs(const std::string& service_name,
                                        std::vector<config::Spec> service_specs);
ServerOptions OptionsFromSettings(const std::string& service_name, const config::Settings& s);

// A service main's first step: loads StandardSpecs(service_name, specs) from
// argv and the environment and logs the effective settings (secrets masked).
// Returns nullopt when main should return *exit_code right away: 0 after
// printing --help, 2 after logging a configuration error.
std::optional<config::Settings> LoadServiceSettings(const std::string& service_name, int argc,
                                                    char** argv, std::vector<config::Spec> specs,
                                                    int* exit_code);

// The default runtime dir: $POCKETMAIL_RUNTIME_DIR, else $XDG_RUNTIME_DIR/pocketmail,
// else /tmp/pocketmail-<uid>.
std::string DefaultRuntimeDir();
std::string SocketPath(const std::string& runtime_dir, const std::string& service_name);

// A client channel to another service's unix socket in `runtime_dir`.
std::shared_ptr<grpc::Channel> ConnectToService(const std::string& runtime_dir,
                                                const std::string& service_name);

class ServiceHost {
 public:
  // Starts serving `services` (not owned; must outlive the host). Fails when the
  // runtime dir is unsafe, the socket can't be bound, or TCP is requested without
  // a readable 0600 token file (or with a gateway token equal to it).
  static absl::StatusOr<std::unique_ptr<ServiceHost>> Start(const ServerOptions& options,
                                                            std::vector<grpc::Service*> services);
  ~ServiceHost();

  // Blocks until SIGTERM/SIGINT or Shutdown(); then stops accepting calls, lets
  // in-flight ones finish (bounded), and removes the socket. `before_drain` runs
  // first, e.g. to stop a poll loop.
  void Wait(std::function<void()> before_drain = nullptr);
  void Shutdown();  // thread-safe; makes Wait() return

  // The first socket ("" once Wait() has removed them).
  const std::string& socket_path() const {
    static const std::string kNone;
    return socket_paths_.empty() ? kNone : socket_paths_.front();
  }
  int tcp_port() const { return tcp_port_; }  // 0 when TCP is off

 private:
  ServiceHost() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> socket_paths_;
  int tcp_port_ = 0;
};

// Logs why a service could not start and returns its exit code: 2 for a
// configuration error (INVALID_ARGUMENT), else 1.
int ExitForStartupError(const absl::Status& status);

// A service's main after its setup: serves `services` with the settings'
// ServerOptions until SIGTERM (see Wait), and returns the process exit code:
// 0, or ExitForStartupError's when serving could not start.
int ServeUntilStopped(const std::string& service_name, const config::Settings& settings,
                      std::vector<grpc::Service*> services,
                      std::function<void()> before_drain = nullptr);

}  // namespace pocketmail::server

#endif  // POCKETMAIL_COMMON_SERVER_SERVICE_HOST_H_
