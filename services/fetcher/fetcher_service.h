// pocketmail.fetcher.v1.Fetcher over a DrainScheduler.
#ifndef POCKETMAIL_SERVICES_FETCHER_FETCHER_SERVICE_H_
#define POCKETMAIL_SERVICES_FETCHER_FETCHER_SERVICE_H_

#include "pocketmail/fetcher/v1/fetcher.grpc.pb.h"
#include "services/fetcher/dead_letter_replay.h"
#include "services/fetcher/drain_scheduler.h"

namespace pocketmail::fetcher {

class FetcherService final : public ::pocketmail::fetcher::v1::Fetcher::Service {
 public:
  FetcherService(DrainScheduler& scheduler, DeadLetterReplay& replay, s3::ObjectStore& store)
      : scheduler_(scheduler), replay_(replay), store_(store) {}

  grpc::Status DrainNow(grpc::ServerContext* context, const v1::DrainNowRequest* request,
                        v1::DrainNowResponse* response) override;
  grpc::Status Status(grpc::ServerContext* context, const v1::StatusRequest* request,
                      v1::StatusResponse* response) override;
  grpc::Status Replay(grpc::ServerContext* context, const v1::ReplayRequest* request,
                      v1::ReplayResponse* response) override;
  grpc::Status ListBucket(grpc::ServerContext* context, const v1::ListBucketRequest* request,
                          v1::ListBucketResponse* response) override;

 private:
  DrainScheduler& scheduler_;
  DeadLetterReplay& replay_;
  s3::ObjectStore& store_;
};

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_FETCHER_SERVICE_H_
