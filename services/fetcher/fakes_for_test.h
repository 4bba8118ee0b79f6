// In-memory stand-ins for the fetcher's collaborators, for unit tests of the
// saga and the scheduler only. Every call is appended to a shared event log so
// tests can assert the ordering contract. Integration tests use the real
// services and peers instead (tests/e2e).
#ifndef POCKETMAIL_SERVICES_FETCHER_FAKES_FOR_TEST_H_
#define POCKETMAIL_SERVICES_FETCHER_FAKES_FOR_TEST_H_

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/s3/object_store.h"
#include "services/fetcher/content_check.h"
#include "services/fetcher/pipeline_clients.h"
#include "services/ledger/state_machine.h"

namespace pocketmail::fetcher::testing {

// The bucket contract's per-recipient key for `body`: the fetcher checks the
// downloaded bytes against the hash it names.
inline std::string ContractKey(absl::string_view body,
                               uint64_t recipient_hash = 0x0123456789abcdef) {
  StreamingSha256 sha;
  sha.Update(body);
  return absl::StrFormat("pending/%s-%016x.eml", sha.HexDigest(), recipient_hash);
}

struct EventLog {
  std::mutex mu;
  std::vector<std::string> events;
  void Add(std::string e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(std::move(e));
  }
  bool Contains(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& x : events)
      if (x == e) return true;
    return false;
  }
};

class FakeObjectStore : public s3::ObjectStore {
 public:
  explicit FakeObjectStore(EventLog& log) : log_(log) {}

  void Put(const std::string& key, std::string body, std::map<std::string, std::string> metadata) {
    std::lock_guard<std::mutex> lock(mu_);
    objects_[key] = {
        {static_cast<int64_t>(body.size()), "etag", "message/rfc822", std::move(metadata)},
        std::move(body)};
  }
  bool Has(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return objects_.count(key) > 0;
  }
  std::map<std::string, std::string> MetadataOf(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return objects_.at(key).head.metadata;
  }

  absl::Status get_error;   // returned by GetObject when set
  absl::Status list_error;  // returned by ListObjectsV2 when set

  absl::StatusOr<s3::ListPage> ListObjectsV2(const std::string& prefix, const std::string& token,
                                             int max_keys, const std::string&) override {
    log_.Add("list");
    if (!list_error.ok()) return list_error;
    std::lock_guard<std::mutex> lock(mu_);
    s3::ListPage page;
    for (auto it = objects_.upper_bound(token); it != objects_.end(); ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) continue;
      if (static_cast<int>(page.objects.size()) == max_keys) {
        page.truncated = true;
        page.next_continuation_token = page.objects.back().key;
        break;
      }
      page.objects.push_back({it->first, it->second.head.size, absl::UnixEpoch(), "etag"});
    }
    return page;
  }
  absl::StatusOr<s3::Object> GetObject(const std::string& key) override {
    log_.Add("get " + key);
    if (!get_error.ok()) return get_error;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return absl::NotFoundError("NoSuchKey");
    return it->second;
  }
  absl::StatusOr<s3::ObjectHead> HeadObject(const std::string& key) override {
    auto o = GetObject(key);
    if (!o.ok()) return o.status();
    return o->head;
  }
  absl::StatusOr<s3::ObjectHead> GetObjectStreaming(
      const std::string& key, const std::function<void(const s3::ObjectHead&)>& on_head,
      const std::function<bool(absl::string_view)>& sink) override {
    auto o = GetObject(key);
    if (!o.ok()) return o.status();
    on_head(o->head);
    if (!sink(o->body)) return absl::CancelledError("sink");
    return o->head;
  }
  absl::Status CopyObject(const std::string& src, const std::string& dst,
                          s3::MetadataDirective directive,
                          const std::map<std::string, std::string>& metadata) override {
    log_.Add(absl::StrCat("copy ", src, " ", dst));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(src);
    if (it == objects_.end()) return absl::NotFoundError("NoSuchKey");
    s3::Object copy = it->second;
    if (directive == s3::MetadataDirective::kReplace) copy.head.metadata = metadata;
    objects_[dst] = copy;
    return absl::OkStatus();
  }
  absl::Status DeleteObject(const std::string& key) override {
    log_.Add("delete " + key);
    std::lock_guard<std::mutex> lock(mu_);
    objects_.erase(key);
    return absl::OkStatus();
  }
  absl::Status PutObject(const std::string& key, absl::string_view body,
                         const std::map<std::string, std::string>& metadata, bool,
                         const std::string&) override {
    Put(key, std::string(body), metadata);
    return absl::OkStatus();
  }

 private:
  EventLog& log_;
  std::mutex mu_;
  std::map<std::string, s3::Object> objects_;
};

// Applies transitions as the real ledger judges them (the one table,
// services/ledger/state_machine.cc), so a saga test cannot pass with an
// illegal step; stores only what the saga reads back.
class FakeLedger : public LedgerClient {
 public:
  explicit FakeLedger(EventLog& log) : log_(log) {}
  absl::Status down;  // when set, every call fails with it
  std::map<std::string, ledgerpb::Message> rows;

  absl::StatusOr<ledgerpb::BeginResponse> Begin(const ledgerpb::BeginRequest& r) override {
    log_.Add("ledger begin " + r.key());
    if (!down.ok()) return down;
    std::lock_guard<std::mutex> lock(mu_);
    ledgerpb::BeginResponse resp;
    auto it = rows.find(r.key());
    if (it == rows.end()) {
      ledgerpb::Message m;
      m.set_key(r.key());
      m.set_state(ledgerpb::STATE_PENDING);
      it = rows.emplace(r.key(), m).first;
      resp.set_created(true);
    }
    *resp.mutable_message() = it->second;
    return resp;
  }
  absl::StatusOr<ledgerpb::Message> Advance(const ledgerpb::AdvanceRequest& r) override {
    log_.Add(absl::StrCat("ledger ", ledgerpb::State_Name(r.from_state()), "->",
                          ledgerpb::State_Name(r.to_state())));
    if (!down.ok()) return down;
    std::lock_guard<std::mutex> lock(mu_);
    ledgerpb::Message& m = rows[r.key()];
    if (!ledger::IsLegalTransition(r.from_state(), r.to_state())) {
      return absl::FailedPreconditionError(absl::StrCat("illegal transition ",
                                                        ledger::StateName(r.from_state()), " → ",
                                                        ledger::StateName(r.to_state())));
    }
    // Like the ledger: an applied transition repeated changes nothing.
    if (m.state() == r.to_state() && r.from_state() != r.to_state()) return m;
    if (m.state() != r.from_state()) return absl::FailedPreconditionError("state mismatch");
    m.set_state(r.to_state());
    if (r.to_state() == ledgerpb::STATE_INJECTING) {
      m.set_attempts(m.attempts() + 1);
      m.set_mailbox(r.mailbox());
    }
    if (!r.error().empty()) m.set_last_error(r.error());
    if (r.next_attempt_ms() != 0) m.set_next_attempt_ms(r.next_attempt_ms());
    if (r.delivery_path() != 0) m.set_delivery_path(r.delivery_path());
    if (r.to_state() == ledgerpb::STATE_RETRY_WAIT) {
      if (r.ambiguous()) m.set_ambiguous(true);
    } else {
      m.set_ambiguous(false);
    }
    if (r.smtp_code() != 0) m.set_smtp_code(r.smtp_code());
    if (r.has_facts()) {
      m.set_recipient(r.facts().recipient());
      m.set_sender(r.facts().sender());
      m.set_subject(r.facts().subject());
      m.set_sha256(r.facts().sha256());
      m.set_received_ms(r.facts().received_ms());
    }
    if (r.content_mismatch()) m.set_content_mismatches(m.content_mismatches() + 1);
    return m;
  }

  // A single lease, like the ledger's (expiry ignored: tests release explicitly).
  std::string lease_holder;
  absl::StatusOr<ledgerpb::AcquireLeaseResponse> AcquireLease(
      const ledgerpb::AcquireLeaseRequest& r) override {
    if (!down.ok()) return down;
    std::lock_guard<std::mutex> lock(mu_);
    ledgerpb::AcquireLeaseResponse resp;
    if (lease_holder.empty() || lease_holder == r.holder()) lease_holder = r.holder();
    resp.set_granted(lease_holder == r.holder());
    resp.set_holder(lease_holder);
    return resp;
  }
  absl::Status ReleaseLease(const ledgerpb::ReleaseLeaseRequest& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (lease_holder == r.holder()) lease_holder.clear();
    return absl::OkStatus();
  }

 private:
  EventLog& log_;
  std::mutex mu_;
};

class FakeRouter : public RouterClient {
 public:
  explicit FakeRouter(EventLog& log) : log_(log) {}
  absl::Status fail;  // when set, Resolve fails with it
  absl::StatusOr<routerpb::ResolveResponse> Resolve(const std::string& address) override {
    log_.Add("resolve " + address);
    if (!fail.ok()) return fail;
    routerpb::ResolveResponse r;
    r.set_mailbox(address);
    r.set_rule(routerpb::RULE_EXACT);
    return r;
  }

 private:
  EventLog& log_;
};

class FakeInjector : public InjectorClient {
 public:
  explicit FakeInjector(EventLog& log) : log_(log) {
    reply.set_outcome(injectorpb::OUTCOME_CLASS_DELIVERED);
    reply.set_smtp_code(250);
  }
  injectorpb::InjectResponse reply;
  absl::Status transport_error;  // the call fails with it
  bool handed_over = true;       // ... before or after the whole message reached the injector
  std::vector<injectorpb::Envelope> envelopes;
  std::function<void(const injectorpb::Envelope&)> on_inject;  // e.g. block one key
  injectorpb::ProbeResponse probe;                             // what Probe answers
  absl::Status probe_error;
  int probes = 0;

  absl::StatusOr<injectorpb::ProbeResponse> Probe(const std::string& key,
                                                  const std::string& mailbox) override {
    log_.Add(absl::StrCat("probe ", key, " ", mailbox));
    std::lock_guard<std::mutex> lock(mu_);
    ++probes;
    if (!probe_error.ok()) return probe_error;
    return probe;
  }

  InjectResult Inject(const injectorpb::Envelope& e, absl::string_view) override {
    log_.Add("inject " + e.key());
    if (on_inject) on_inject(e);
    {
      std::lock_guard<std::mutex> lock(mu_);
      envelopes.push_back(e);
    }
    InjectResult result;
    if (!transport_error.ok()) {
      result.call = transport_error;
      result.handed_over = handed_over;
    } else {
      result.reply = reply;
    }
    return result;
  }

 private:
  EventLog& log_;
  std::mutex mu_;
};

}  // namespace pocketmail::fetcher::testing

#endif  // POCKETMAIL_SERVICES_FETCHER_FAKES_FOR_TEST_H_
