#include "common/s3/s3_errors.h"

#include <curl/curl.h>

#include "gtest/gtest.h"

namespace pocketmail::s3 {
namespace {

using absl::StatusCode;

std::string ErrorBody(const std::string& code, const std::string& message = "msg") {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" +
         message + "</Message></Error>";
}

TEST(StatusForS3Error, TemporaryFailuresAreUnavailable) {
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 500, ErrorBody("InternalError"), false).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 503, ErrorBody("SlowDown"), false).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 502, "", false).code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 429, "", false).code(), StatusCode::kUnavailable);
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 400, ErrorBody("RequestTimeout"), false).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(
      StatusForS3Error("PutObject", "k", 409, ErrorBody("ConditionalRequestConflict"), true).code(),
      StatusCode::kUnavailable);
}

TEST(StatusForS3Error, MissingObjectIsNotFound) {
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 404, ErrorBody("NoSuchKey"), false).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(StatusForS3Error("HeadObject", "k", 404, "", false).code(), StatusCode::kNotFound);
}

TEST(StatusForS3Error, MissingBucketIsNeverNotFound) {
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 404, ErrorBody("NoSuchBucket"), false).code(),
            StatusCode::kFailedPrecondition);
}

TEST(StatusForS3Error, ForbiddenIsPermissionDenied) {
  EXPECT_EQ(
      StatusForS3Error("ListObjectsV2", "", 403, ErrorBody("SignatureDoesNotMatch"), false).code(),
      StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusForS3Error("HeadObject", "k", 403, "", false).code(),
            StatusCode::kPermissionDenied);
}

TEST(StatusForS3Error, PreconditionFailedIsAlreadyExistsOnlyForPutIfAbsent) {
  EXPECT_EQ(StatusForS3Error("PutObject", "k", 412, ErrorBody("PreconditionFailed"), true).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusForS3Error("PutObject", "k", 412, "", true).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 412, ErrorBody("PreconditionFailed"), false).code(),
            StatusCode::kFailedPrecondition);
}

TEST(StatusForS3Error, OtherClientErrorsArePermanent) {
  EXPECT_EQ(StatusForS3Error("PutObject", "k", 400, ErrorBody("InvalidArgument"), false).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusForS3Error("PutObject", "k", 413, "", false).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusForS3Error("PutObject", "k", 409, ErrorBody("BucketNotEmpty"), false).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusForS3Error("GetObject", "k", 301, ErrorBody("PermanentRedirect"), false).code(),
            StatusCode::kFailedPrecondition);
}

TEST(StatusForS3Error, ErrorUnderA200IsMappedByItsCode) {
  EXPECT_EQ(StatusForS3Error("CopyObject", "k", 200, ErrorBody("InternalError"), false).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(StatusForS3Error("CopyObject", "k", 200, ErrorBody("AccessDenied"), false).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusForS3Error("CopyObject", "k", 200, ErrorBody("SomethingNew"), false).code(),
            StatusCode::kUnavailable);
}

TEST(StatusForS3Error, MessageNamesOperationKeyStatusAndCode) {
  absl::Status s =
      StatusForS3Error("GetObject", "pending/a b.eml", 404,
                       ErrorBody("NoSuchKey", "The specified key does not exist."), false);
  EXPECT_EQ(s.message(),
            "S3 GetObject key=\"pending/a b.eml\": HTTP 404 NoSuchKey: The specified key does not "
            "exist.");
}

TEST(StatusForS3Error, HostileBytesAreEscapedAndBounded) {
  absl::Status s =
      StatusForS3Error("GetObject", "k\r\nX: y", 500,
                       ErrorBody("InternalError", std::string(5000, 'm') + "\x01"), false);
  EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos);
  EXPECT_LT(s.message().size(), 600u);
}

TEST(StatusForS3Error, GarbageBodyStillMapsByStatus) {
  absl::Status s = StatusForS3Error("GetObject", "k", 503, "<html>upstream down", false);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "S3 GetObject key=\"k\": HTTP 503");
}

TEST(StatusForTransportError, NetworkFailuresAreUnavailable) {
  for (int code : {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR,
                   CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR,
                   CURLE_PEER_FAILED_VERIFICATION, CURLE_COULDNT_RESOLVE_HOST}) {
    EXPECT_EQ(StatusForTransportError("GetObject", "k", code, "detail").code(),
              StatusCode::kUnavailable)
        << code;
  }
  EXPECT_NE(StatusForTransportError("GetObject", "k", CURLE_OPERATION_TIMEDOUT, "")
                .message()
                .find("timed out"),
            absl::string_view::npos);
  EXPECT_NE(StatusForTransportError("GetObject", "k", CURLE_PEER_FAILED_VERIFICATION, "")
                .message()
                .find("certificate verification failed"),
            absl::string_view::npos);
}

TEST(StatusForTransportError, MalformedRequestIsInvalidArgument) {
  EXPECT_EQ(StatusForTransportError("GetObject", "k", CURLE_URL_MALFORMAT, "").code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pocketmail::s3
