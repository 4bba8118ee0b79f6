// Test support: the whole pipeline on one machine, with real peers.
//
//   moto S3 over HTTPS with SigV4 checking (tests/peers/s3/s3_peer.py)
//   the mail store: real Maddy (tests/peers/maddy), set up by the installer,
//   delivered into over LMTP (or its submission endpoint); or the scripted
//   SMTP stand-in with AUTH writing Maildirs (tests/peers/smtp/smtp_peer.py),
//   for tests that need faults Maddy cannot be made to produce on demand
//   the four service binaries, each its own process, talking over unix sockets
//   (or, with `combined`, the one pocketmaild process serving all four)
//
// Everything binds 127.0.0.1 with ports chosen by the kernel and lives under
// one short scratch dir. Services can be killed (SIGKILL) and restarted.
#ifndef POCKETMAIL_TESTS_E2E_PIPELINE_HARNESS_H_
#define POCKETMAIL_TESTS_E2E_PIPELINE_HARNESS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/s3/s3_client.h"
#include "grpcpp/grpcpp.h"
#include "tests/peers/imap/dovecot_peer.h"
#include "tests/peers/maddy/maddy_peer.h"
#include "tests/peers/peer_process.h"

namespace pocketmail::testing {

// Where the injector delivers.
enum class MailStore {
  // Real Maddy over LMTP on its unix socket: the installer's default.
  kMaddyLmtp,
  // Real Maddy's submission endpoint (SMTP AUTH on loopback): the option.
  kMaddySubmission,
  // The scripted SMTP peer: 4xx on demand (fail_pct), a held reply to the
  // final dot (hold_s), mailboxes the router lists but the store lacks.
  // Maddy can be made to do none of these at a chosen moment.
  kSmtpStandIn,
};

struct HarnessOptions {
  std::string mail_domain = "example.org";
  MailStore mail_store = MailStore::kSmtpStandIn;
  // Maddy's max_message_size (MAIL_MAX_MESSAGE_SIZE) with a Maddy store.
  std::string maddy_max_message_size = "32M";
  // Mailboxes the mail store knows and the account command lists. With
  // Maddy, inbox@ and admin@ are the installer's own; the others are added
  // with its add-mailbox.
  std::vector<std::string> mailboxes = {"inbox@example.org", "admin@example.org",
                                        "alice@example.org", "bob@example.org",
                                        "carol@example.org"};
  // Accounts the router lists but the SMTP peer (Maddy) doesn't know yet:
  // mail for them is rejected 501 5.1.1 until SmtpControl("ADD_MAILBOX ...").
  std::vector<std::string> router_only_accounts;
  int poll_seconds = 1;
  int fetch_concurrency = 4;
  // Extra environment for every service (e.g. RETRY_BASE_S).
  std::map<std::string, std::string> service_env;
  bool start_services = true;
  // Give the injector IMAP credentials for every mailbox, so the delivery
  // probe works. With the stand-in this also runs Dovecot over its Maildirs;
  // Maddy has its own IMAP.
  bool with_imap = false;
  // Run the four services as one process (services/pocketmaild) instead of
  // four. Service names still work everywhere: each means that one process.
  bool combined = false;
  // Start the S3 peer with --count-requests (its /__peer/stats then counts
  // requests by kind; see S3PeerStats in tests/peers/s3/s3_peer.h).
  bool s3_count_requests = false;
  // Prepended to every service command line, e.g. {"proot", "-0", "-b",
  // "/proc"} to run the same binaries under ptrace as proot-distro does on the
  // phone. Stopping a wrapped service signals its whole process group, since
  // a wrapper such as proot ignores SIGTERM itself.
  std::vector<std::string> service_wrapper;
};

// A message as the Worker stores it (the bucket contract).
struct StoredMessage {
  std::string key;
  std::string raw;
  std::string to;
  std::string from;
};

// A message as the mail store holds it.
struct DeliveredMessage {
  std::string mailbox;      // from the store's Delivered-To field
  std::string return_path;  // MAIL FROM as the store saw it
  std::string trace_key;    // X-Pocketmail-Key value
  std::string data;         // the DATA bytes, after the fields the store added
  // The names of the fields the store put in front, in order (Maddy over
  // LMTP: Delivered-To, Return-Path; over submission Received too).
  std::vector<std::string> added_fields;
};

class PipelineHarness {
 public:
  static constexpr const char* kServices[] = {"ledger", "router", "injector", "fetcher"};

  static absl::StatusOr<std::unique_ptr<PipelineHarness>> Start(HarnessOptions options = {});
  ~PipelineHarness();

  absl::Status StartService(const std::string& name);
  void KillService(const std::string& name);          // SIGKILL
  absl::Status StopService(const std::string& name);  // SIGTERM, graceful
  bool ServiceRunning(const std::string& name) const;
  // Runs the fetcher binary once with ONESHOT=1 (the other services must be
  // up) and returns its exit status as waitpid reports it.
  absl::StatusOr<int> RunFetcherOneshot(absl::Duration timeout);
  std::shared_ptr<grpc::Channel> Channel(const std::string& name) const;

  // PUTs `raw` for `to` in the bucket contract's format (per-recipient key,
  // metadata to/from/sha256/rawsize/receivedms), or with `legacy_key` the
  // original worker's pending/<sha256>.eml.
  absl::StatusOr<StoredMessage> PutPending(const std::string& raw, const std::string& to,
                                           const std::string& from, bool legacy_key = false,
                                           std::map<std::string, std::string> extra_metadata = {});
  // PUT an object with an arbitrary key and metadata (hostile cases).
  absl::Status PutRaw(const std::string& key, const std::string& body,
                      const std::map<std::string, std::string>& metadata);

  // All keys under `prefix`.
  absl::StatusOr<std::vector<std::string>> ListKeys(const std::string& prefix);
  // Asks the fetcher for a pass (DrainNow wait=true) until pending/ is empty
  // or nothing changes for a while.
  absl::Status DrainUntilEmpty(absl::Duration timeout);

  // Everything the mail store holds, across all mailboxes (Maddy: read back
  // over IMAP, FETCH BODY[]). A message whose leading fields cannot be
  // accounted for comes back with an empty `mailbox`.
  std::vector<DeliveredMessage> Delivered() const;
  // Adds a mailbox to the store while the services run (Maddy: the
  // installer's add-mailbox; the stand-in: ADD_MAILBOX).
  absl::Status AddMailbox(const std::string& address);
  // The real Maddy, or nullptr with the stand-in.
  MaddyPeer* maddy() const { return maddy_.get(); }

  s3::S3Client& bucket() { return *bucket_; }
  const std::string& scratch() const { return scratch_.path(); }
  const std::string& runtime_dir() const { return runtime_dir_; }
  int smtp_control_port() const { return smtp_control_port_; }
  int imap_port() const;  // 0 without with_imap (stand-in) / Maddy's IMAP
  // The IMAP password of `mailbox` (with_imap, or any Maddy store).
  std::string ImapPassword(const std::string& mailbox) const;
  // Sends one control line to the SMTP peer (e.g. "SET fail_pct=20"); returns its reply.
  absl::StatusOr<std::string> SmtpControl(const std::string& line);

  // For tests that put something (e.g. a fault proxy) between the services and
  // the peers: start with start_services = false, read the peers' addresses,
  // override the services' settings, then StartService() each of kServices.
  // The S3 peer's R2_* settings as the fetcher gets them by default.
  const std::map<std::string, std::string>& s3_env() const { return s3_env_; }
  int smtp_port() const { return smtp_port_; }
  // Sets (or overrides) one setting in the environment of services started from now on.
  void SetServiceEnv(const std::string& name, const std::string& value) {
    options_.service_env[name] = value;
  }

 private:
  PipelineHarness() = default;
  absl::Status StartPeers();
  absl::Status StartMaddy();
  std::map<std::string, std::string> ServiceEnv() const;
  // service_wrapper, then `binary`.
  std::vector<std::string> ServiceArgv(const std::string& binary) const;
  // The process that serves `name`: itself, or pocketmaild when combined.
  std::string ProcessOf(const std::string& name) const {
    return options_.combined ? "pocketmaild" : name;
  }

  HarnessOptions options_;
  ScratchDir scratch_;
  std::string runtime_dir_;
  PeerProcess s3_peer_;
  PeerProcess smtp_peer_;
  std::map<std::string, std::string> s3_env_;  // R2_* for the fetcher
  int smtp_port_ = 0;
  int smtp_control_port_ = 0;
  std::string maildir_;
  std::map<std::string, PeerProcess> services_;
  std::unique_ptr<DovecotPeer> imap_;
  std::unique_ptr<MaddyPeer> maddy_;
  std::vector<std::string> store_mailboxes_;  // what Delivered() reads
  std::unique_ptr<s3::S3Client> bucket_;
};

// sha256 of `data`, lowercase hex.
std::string Sha256Hex(const std::string& data);

}  // namespace pocketmail::testing

#endif  // POCKETMAIL_TESTS_E2E_PIPELINE_HARNESS_H_
