#include "common/server/service_host.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/config/private_dir.h"
#include "common/log/log.h"
#include "common/server/bearer_token_auth.h"
#include "common/server/health_service.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/support/server_interceptor.h"

namespace pocketmail::server {
namespace {

// Self-pipe: the signal handler only writes one byte; Wait() does the work.
int g_signal_pipe[2] = {-1, -1};

void OnTerminationSignal(int) {
  char byte = 1;
  ssize_t unused = ::write(g_signal_pipe[1], &byte, 1);
  (void)unused;
}

absl::Status InstallSignalHandlers() {
  static std::once_flag once;
  static absl::Status result;
  std::call_once(once, [] {
    if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      result = absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
      return;
    }
    struct sigaction sa {};
    sa.sa_handler = OnTerminationSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a dropped SMTP/HTTP peer must not kill the service
  });
  return result;
}

// A socket file left by a crashed process is removed; one that still accepts
// connections belongs to a running instance, and we refuse to steal it.
absl::Status ClaimSocketPath(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long (max 107 bytes): ", path));
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a socket"));
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  if (live) return absl::AlreadyExistsError(absl::StrCat("another instance is serving ", path));
  unlink(path.c_str());
  return absl::OkStatus();
}

absl::Status CheckLoopback(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("TCP address needs host:port");
  std::string host = address.substr(0, colon);
  if (host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
    return absl::InvalidArgumentError(
        absl::StrCat("TCP listening is loopback-only (127.0.0.1, [::1]); got ", host));
  }
  return absl::OkStatus();
}

// The TCP listener's credentials: every call must carry the operator or the
// gateway token (bearer_token_auth.h).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TcpCredentials(
    const ServerOptions& options) {
  if (options.token_file.empty()) {
    return absl::InvalidArgumentError("TCP listening requires POCKETMAIL_TOKEN_FILE");
  }
  auto operator_token = config::ReadSecretFile(options.token_file);
  if (!operator_token.ok()) return operator_token.status();
  std::string gateway_token;
  if (!options.gateway_token_file.empty()) {
    auto read = config::ReadSecretFile(options.gateway_token_file);
    if (!read.ok()) return read.status();
    gateway_token = *std::move(read);
  }
  // One token in both files would give the gateway the operator's power.
  if (gateway_token == *operator_token) {
    return absl::InvalidArgumentError(
        "POCKETMAIL_GATEWAY_TOKEN_FILE holds the same token as POCKETMAIL_TOKEN_FILE; the two must "
        "differ");
  }
  // Local credentials: plaintext on the wire (grpcurl -plaintext works), but
  // gRPC treats the channel as authenticated-capable, so the metadata
  // processor runs on every call arriving over TCP.
  auto creds = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  creds->SetAuthMetadataProcessor(
      std::make_shared<BearerTokenAuth>(*operator_token, gateway_token));
  return creds;
}

// Counts the calls the server is running: gRPC creates one interceptor per
// call and destroys it when the call is over. Shutdown uses it to tell
// "in-flight calls are done" apart from "idle clients are still connected".
class CallCounter : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new CallGuard(this);
  }
  // True once no call is running; false if `timeout` passed first.
  bool WaitForNone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
  }

 private:
  class CallGuard : public grpc::experimental::Interceptor {
   public:
    explicit CallGuard(CallCounter* counter) : counter_(counter) {
      absl::MutexLock lock(&counter_->mu_);
      ++counter_->running_;
    }
    ~CallGuard() override {
      absl::MutexLock lock(&counter_->mu_);
      --counter_->running_;
    }
    void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
      methods->Proceed();
    }

   private:
    CallCounter* const counter_;
  };

  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

struct ServiceHost::Impl {
  CallCounter* calls = nullptr;  // owned by `server`
  // Declared before `server`, so it outlives it: the server calls into it.
  HealthService health{{}};
  std::unique_ptr<grpc::Server> server;
  std::atomic<bool> shutting_down{false};
};

std::vector<config::Spec> StandardSpecs(const std::string& service_name,
                                        std::vector<config::Spec> service_specs) {
  std::string upper;
  for (char c : service_name) upper.push_back(static_cast<char>(std::toupper(c)));
  std::vector<config::Spec> specs = {
      {"POCKETMAIL_RUNTIME_DIR", DefaultRuntimeDir(),
       "directory (mode 0700) holding the service sockets"},
      {absl::StrCat("POCKETMAIL_", upper, "_TCP"), "",
       "optional 127.0.0.1:PORT to also listen on TCP (bearer token required)"},
      {"POCKETMAIL_TOKEN_FILE", "", "0600 file with the bearer token TCP callers must present"},
      {"POCKETMAIL_GATEWAY_TOKEN_FILE", "",
       "optional 0600 file with a second TCP token limited to read-only calls (docs/GRPC.md)"},
      {"POCKETMAIL_LOG_LEVEL", "info", "debug, info, warn or error"},
  };
  for (auto& s : service_specs) specs.push_back(std::move(s));
  return specs;
}

ServerOptions OptionsFromSettings(const std::string& service_name, const config::Settings& s) {
  std::string upper;
  for (char c : service_name) upper.push_back(static_cast<char>(std::toupper(c)));
  ServerOptions o;
  o.service_name = service_name;
  o.runtime_dir = s.Get("POCKETMAIL_RUNTIME_DIR");
  o.tcp_address = s.Get(absl::StrCat("POCKETMAIL_", upper, "_TCP"));
  o.token_file = s.Get("POCKETMAIL_TOKEN_FILE");
  o.gateway_token_file = s.Get("POCKETMAIL_GATEWAY_TOKEN_FILE");
  std::string level = s.Get("POCKETMAIL_LOG_LEVEL");
  if (level == "debug") log::SetMinLevel(log::Level::kDebug);
  if (level == "warn") log::SetMinLevel(log::Level::kWarn);
  if (level == "error") log::SetMinLevel(log::Level::kError);
  return o;
}

std::optional<config::Settings> LoadServiceSettings(const std::string& service_name, int argc,
                                                    char** argv, std::vector<config::Spec> specs,
                                                    int* exit_code) {
  log::SetService(service_name);
  // Message bodies (up to 25 MiB) are allocated and freed in big pieces;
  // served from mmap they go back to the OS when freed instead of staying in
  // a malloc arena (measured: the fetcher's peak RSS 134 → 53 MiB).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // gRPC runs a dozen threads; glibc would give each its own arena, and each
  // arena keeps its own freed memory. Two are plenty for our call rates.
  mallopt(M_ARENA_MAX, 2);
  // Debian's Abseil keeps a lock-order graph on every Mutex acquisition (gRPC
  // and our code lock several times per RPC); profiled, that was a visible
  // share of each service's CPU per message. Lock order is the tests' job.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto settings = config::Settings::Load(argc, argv, StandardSpecs(service_name, std::move(specs)));
  if (!settings.ok()) {
    if (absl::IsNotFound(settings.status())) {  // --help: the message is the usage text
      std::fputs(std::string(settings.status().message()).c_str(), stdout);
      *exit_code = 0;
    } else {
      log::Error("bad configuration", {{"error", std::string(settings.status().message())}});
      *exit_code = 2;
    }
    return std::nullopt;
  }
  for (const std::string& line : settings->Describe()) log::Debug("setting", {{"value", line}});
  *exit_code = 0;
  return *std::move(settings);
}

std::string DefaultRuntimeDir() {
  if (const char* d = std::getenv("POCKETMAIL_RUNTIME_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    return absl::StrCat(x, "/pocketmail");
  }
  return absl::StrCat("/tmp/pocketmail-", geteuid());
}

std::string SocketPath(const std::string& runtime_dir, const std::string& service_name) {
  return absl::StrCat(runtime_dir, "/", service_name, ".sock");
}

std::shared_ptr<grpc::Channel> ConnectToService(const std::string& runtime_dir,
                                                const std::string& service_name) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  // Loopback peers restart in milliseconds (supervisor, crash tests); gRPC's
  // default reconnect backoff grows to two minutes, far too slow for that.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(absl::StrCat("unix:", SocketPath(runtime_dir, service_name)),
                                   grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<std::unique_ptr<ServiceHost>> ServiceHost::Start(
    const ServerOptions& options, std::vector<grpc::Service*> services) {
  log::SetService(options.service_name);
  if (absl::Status s = InstallSignalHandlers(); !s.ok()) return s;
  // The runtime dir holds the sockets: anyone who can reach a socket can call the service.
  if (absl::Status s = config::EnsurePrivateDir(options.runtime_dir, "runtime dir"); !s.ok())
    return s;
  std::vector<std::string> socket_paths;
  for (const std::string& name : options.socket_names.empty()
                                     ? std::vector<std::string>{options.service_name}
                                     : options.socket_names) {
    socket_paths.push_back(SocketPath(options.runtime_dir, name));
    if (absl::Status s = ClaimSocketPath(socket_paths.back()); !s.ok()) return s;
  }

  // Our own sync health service (health_service.h), not gRPC's callback one.
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // One completion queue with one or two pollers: a phone service sees a
  // handful of callers, and by default gRPC starts a queue and its pollers per
  // core, each thread costing wake-ups and stack.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
  // An idle poller wakes when its queue wait times out (gRPC's default: 10 s)
  // only to loop again; shutdown ends the wait at once, so wait long.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 600'000);
  for (const std::string& path : socket_paths) {
    builder.AddListeningPort(absl::StrCat("unix:", path), grpc::InsecureServerCredentials());
  }

  auto host = std::unique_ptr<ServiceHost>(new ServiceHost());
  host->impl_ = std::make_unique<Impl>();
  if (!options.tcp_address.empty()) {
    if (absl::Status s = CheckLoopback(options.tcp_address); !s.ok()) return s;
    auto creds = TcpCredentials(options);
    if (!creds.ok()) return creds.status();
    builder.AddListeningPort(options.tcp_address, *creds, &host->tcp_port_);
  }
  for (grpc::Service* service : services) builder.RegisterService(service);
  builder.RegisterService(&host->impl_->health);
  auto counter = std::make_unique<CallCounter>();
  host->impl_->calls = counter.get();
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::move(counter));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  host->impl_->server = builder.BuildAndStart();
  if (host->impl_->server == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", absl::StrJoin(socket_paths, ", "),
                     options.tcp_address.empty() ? "" : " or ", options.tcp_address));
  }
  for (const std::string& path : socket_paths) chmod(path.c_str(), 0600);
  host->socket_paths_ = socket_paths;
  host->impl_->health.SetServing(true);
  log::Info("serving", {{"socket", absl::StrJoin(socket_paths, ",")},
                        {"tcp", options.tcp_address.empty() ? "off" : options.tcp_address},
                        {"pid", static_cast<long long>(getpid())}});
  return host;
}

ServiceHost::~ServiceHost() {
  if (impl_ && impl_->server && !impl_->shutting_down) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  for (const std::string& path : socket_paths_) unlink(path.c_str());
}

void ServiceHost::Shutdown() { OnTerminationSignal(0); }

void ServiceHost::Wait(std::function<void()> before_drain) {
  char byte;
  while (true) {
    pollfd pfd{g_signal_pipe[0], POLLIN, 0};
    int n = poll(&pfd, 1, -1);
    if (n > 0 && ::read(g_signal_pipe[0], &byte, 1) == 1) break;
  }
  log::Info("shutting down");
  impl_->shutting_down = true;
  impl_->health.Shutdown();  // NOT_SERVING; health watches end
  if (before_drain) before_drain();
  // In-flight calls get a bounded grace period; streams (e.g. a watch) are
  // cancelled after it. gRPC's Shutdown(deadline) stops taking calls and waits
  // for the running ones, but also for every client to close its connection
  // after the GOAWAY: one idle client (a fetcher between polls) held a
  // restart for seconds. So the calls are waited for here, and once none is
  // left the idle connections are dropped, which lets Shutdown return.
  constexpr absl::Duration kGrace = absl::Seconds(10);
  std::thread stop_taking_calls(
      [this, kGrace] { impl_->server->Shutdown(absl::ToChronoTime(absl::Now() + kGrace)); });
  impl_->calls->WaitForNone(kGrace);
  grpc_server_cancel_all_calls(impl_->server->c_server());
  stop_taking_calls.join();
  impl_->server->Wait();
  for (const std::string& path : socket_paths_) unlink(path.c_str());
  socket_paths_.clear();
  log::Info("stopped");
}

int ExitForStartupError(const absl::Status& status) {
  const bool config = absl::IsInvalidArgument(status);
  log::Error(config ? "bad configuration" : "cannot start",
             {{"error", std::string(status.message())}});
  return config ? 2 : 1;
}

int ServeUntilStopped(const std::string& service_name, const config::Settings& settings,
                      std::vector<grpc::Service*> services, std::function<void()> before_drain) {
  auto host = ServiceHost::Start(OptionsFromSettings(service_name, settings), std::move(services));
  if (!host.ok()) return ExitForStartupError(host.status());
  (*host)->Wait(std::move(before_drain));
  return 0;
}

}  // namespace pocketmail::server
