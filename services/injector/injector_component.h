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

namespace pocketmail::injector {

std::vector<config::Spec> InjectorSpecs();

class InjectorComponent {
 public:
  // INVALID_ARGUMENT: bad settings. Connects to Maddy lazily, per call.
  static absl::StatusOr<std::unique_ptr<InjectorComponent>> Create(
      const config::Settings& settings);

  InjectorServiceImpl& service() { return *service_; }

 private:
  InjectorComponent() = default;
  std::unique_ptr<DeliveryProbe> probe_;
  std::unique_ptr<smtp::SessionPool> pool_;
  std::unique_ptr<InjectorServiceImpl> service_;
};

}  // namespace pocketmail::injector

#endif  // POCKETMAIL_SERVICES_INJECTOR_INJECTOR_COMPONENT_H_
