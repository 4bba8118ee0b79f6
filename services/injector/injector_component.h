// The injector as a part that can be hosted: its settings, the pool of SMTP
// (or LMTP) sessions to Maddy, the delivery probe and the gRPC service over
// them. The injector binary serves it alone; services/pocketmaild hosts it
// next to the others.
#ifndef POCKETMAIL_SERVICES_INJECTOR_INJECTOR_COMPONENT_H_
#define POCKETMAIL_SERVICES_INJECTOR_INJECTOR_COMPONENT_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/settings.h"
#include "common/smtp/session_pool.h"
#include "services/injector/delivery_probe.h"
#include "services/injector/injector_service.h"
#include "services/injector/probe_credentials.h"

namespace pocketmail::injector {

std::vector<config::Spec> InjectorSpecs();

// The injector's settings, checked and converted (the probe's credentials read
// from the environment and PROBE_CREDENTIALS_FILE).
struct InjectorConfig {
  smtp::SessionOptions smtp;
  int max_sessions = 4;  // INJECT_MAX_SESSIONS
  ProbeOptions probe;
  ProbeCredentials probe_credentials;
};

// INVALID_ARGUMENT names the setting that is malformed or out of range.
absl::StatusOr<InjectorConfig> ParseInjectorConfig(const config::Settings& settings);

class InjectorComponent {
 public:
  // INVALID_ARGUMENT: bad settings. Connects to Maddy lazily, per call.
  static absl::StatusOr<std::unique_ptr<InjectorComponent>> Create(
      const config::Settings& settings);
  static std::unique_ptr<InjectorComponent> Create(InjectorConfig config);

  InjectorServiceImpl& service() { return *service_; }

 private:
  InjectorComponent() = default;
  std::unique_ptr<DeliveryProbe> probe_;
  std::unique_ptr<smtp::SessionPool> pool_;
  std::unique_ptr<InjectorServiceImpl> service_;
};

}  // namespace pocketmail::injector

#endif  // POCKETMAIL_SERVICES_INJECTOR_INJECTOR_COMPONENT_H_
