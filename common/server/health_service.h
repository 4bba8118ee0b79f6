// grpc.health.v1.Health as a synchronous service.
//
// gRPC's built-in health service is written against the callback API, and
// the first callback service in a process starts gRPC's two "nexting"
// threads, which wake about four times a second each, forever, whether or
// not anyone calls (CallbackAlternativeCQ in gRPC 1.51). On an idle phone
// under proot that was the largest share of the services' wake-ups. This one
// runs on the same sync pollers as the services' own APIs and costs nothing
// while nobody asks.
//
// Check answers for "" (the whole process) and for the name of every service
// registered with it; other names are NOT_FOUND, as the health protocol says.
// Watch streams the current status, then each change.
#ifndef POCKETMAIL_COMMON_SERVER_HEALTH_SERVICE_H_
#define POCKETMAIL_COMMON_SERVER_HEALTH_SERVICE_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace pocketmail::server {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  // `service_names`: the fully qualified services Check also answers for.
  explicit HealthService(std::vector<std::string> service_names);

  // SERVING or NOT_SERVING for every name at once (a process is one unit).
  void SetServing(bool serving);
  // Ends running Watch streams (the server is shutting down).
  void Shutdown();

  grpc::Status Check(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  bool Knows(const std::string& name) const;

  const std::vector<std::string> names_;
  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on every change, for Watch
};

}  // namespace pocketmail::server

#endif  // POCKETMAIL_COMMON_SERVER_HEALTH_SERVICE_H_
