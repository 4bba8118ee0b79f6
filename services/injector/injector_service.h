// The Injector service (pocketmail.injector.v1.Injector): streams one
// message from the client into the local mail server over a pooled SMTP (or
// LMTP) session and reports the classified outcome. InjectorCore does the
// work in plain absl::Status terms; InjectorServiceImpl, the gRPC service, is
// a thin adapter that feeds it the stream. The combined binary
// (services/pocketmaild) calls the core directly.
//
// Per call: the first request must be the Envelope, then chunks of at most
// 1 MiB. The envelope is validated before any SMTP traffic (trace key:
// printable ASCII; addresses: no control characters, '<', '>' or spaces);
// a bad envelope, a chunk over 1 MiB, anything but chunks after the envelope,
// or a byte count different from size_bytes is INVALID_ARGUMENT, and the final
// "." is never sent for it (the SMTP connection is dropped instead). Chunks go
// to the server as they arrive: a 25 MiB message is never held in memory.
//
// The delivered bytes are "X-Pocketmail-Key: <key>\r\n" followed by the
// client's bytes verbatim (only line endings normalized to CRLF on the wire).
// Whenever an SMTP outcome was determined — including connection failures to
// the mail server, which are TEMPORARY — the gRPC status is OK and the
// outcome is in the response. One log line per message; never the body or
// the password.
//
// Probe asks the DeliveryProbe whether a key reached a mailbox (see
// delivery_probe.h). A key that is not a valid trace key, or that holds '"'
// or '\' (it could not be searched for safely), and an empty mailbox are
// INVALID_ARGUMENT; every other answer — FAILED included — is an OK status
// with the result in the response. Without a probe, every mailbox is
// NO_PROBE. One log line per probe: key, mailbox, result; never a password.
//
// Thread-safe. The pool and the probe are not owned and must outlive the
// core and the service.
#ifndef POCKETMAIL_SERVICES_INJECTOR_INJECTOR_SERVICE_H_
#define POCKETMAIL_SERVICES_INJECTOR_INJECTOR_SERVICE_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/smtp/delivery_result.h"
#include "common/smtp/session_pool.h"
#include "common/time/clock.h"
#include "pocketmail/injector/v1/injector.grpc.pb.h"
#include "services/injector/delivery_probe.h"

namespace pocketmail::injector {

struct InjectorOptions {
  size_t max_chunk_bytes = 1 << 20;
  // How long a call waits for a free SMTP session (bounded also by the call's
  // deadline) before it reports TEMPORARY.
  absl::Duration session_wait = absl::Seconds(60);
  // Not owned; the pool's sessions should read the same one.
  Clock* clock = RealClock::Get();
};

struct BodySource;  // where a message's bytes come from (injector_service.cc)

// An error status is what the RPC returns as its gRPC status.
class InjectorCore {
 public:
  InjectorCore(smtp::SessionPool* pool, InjectorOptions options, const DeliveryProbe* probe)
      : pool_(pool), options_(options), probe_(probe) {}

  // The message from a buffer, handed to the session in max_chunk_bytes
  // pieces as over gRPC.
  absl::StatusOr<v1::InjectResponse> Inject(const v1::Envelope& envelope, absl::string_view message,
                                            absl::Time deadline);
  // The message from `body` (the gRPC adapter's stream).
  absl::StatusOr<v1::InjectResponse> Deliver(const v1::Envelope& envelope, const BodySource& body);
  absl::StatusOr<v1::ProbeResponse> Probe(const v1::ProbeRequest& request, absl::Time deadline);

  const InjectorOptions& options() const { return options_; }

 private:
  smtp::SessionPool* const pool_;
  const InjectorOptions options_;
  const DeliveryProbe* const probe_;
};

class InjectorServiceImpl final : public v1::Injector::Service {
 public:
  explicit InjectorServiceImpl(smtp::SessionPool* pool, InjectorOptions options = {},
                               const DeliveryProbe* probe = nullptr)
      : core_(pool, options, probe) {}

  InjectorCore& core() { return core_; }

  grpc::Status Inject(grpc::ServerContext* context, grpc::ServerReader<v1::InjectRequest>* reader,
                      v1::InjectResponse* response) override;

  grpc::Status Probe(grpc::ServerContext* context, const v1::ProbeRequest* request,
                     v1::ProbeResponse* response) override;

 private:
  InjectorCore core_;
};

// The response fields for a delivery result (reply text and detail bounded,
// valid UTF-8).
void FillResponse(const smtp::DeliveryResult& result, v1::InjectResponse* response);

}  // namespace pocketmail::injector

#endif  // POCKETMAIL_SERVICES_INJECTOR_INJECTOR_SERVICE_H_
