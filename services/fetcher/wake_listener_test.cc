#include "services/fetcher/wake_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/time/fake_clock.h"
#include "gtest/gtest.h"

namespace pocketmail::fetcher {
namespace {

const std::string kSecret = "a-wake-secret-of-some-length";
const std::string kKey = "pending/" + std::string(64, 'b') + "-0123456789abcdef.eml";
const absl::Time kNow = absl::FromUnixSeconds(1800000000);

std::string Body(const std::string& key, int64_t ts) {
  return absl::StrCat("{\"key\":\"", key, "\",\"ts\":", ts, "}");
}

TEST(VerifyWakePing, AcceptsAFreshCorrectlySignedPing) {
  std::string ts = "1800000000";
  auto key =
      VerifyWakePing(ts, SignWakePing(kSecret, ts, kKey), Body(kKey, 1800000000), kSecret, kNow);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, kKey);
}

TEST(VerifyWakePing, SignsExactlyTimestampNewlineKey) {
  // Computed independently: Python's hmac.new(secret, b"1800000000\n" + key, sha256).
  EXPECT_EQ(SignWakePing(kSecret, "1800000000", kKey),
            "c585e580b252b01644fc943ecc5bd9557c075192e9b55ac04b4343892e3f8a4a");
}

TEST(VerifyWakePing, RejectsAStalePing) {
  std::string ts = "1799999000";  // 1000 s old
  auto r =
      VerifyWakePing(ts, SignWakePing(kSecret, ts, kKey), Body(kKey, 1799999000), kSecret, kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(VerifyWakePing, RejectsAPingFromTheFuture) {
  std::string ts = "1800001000";
  auto r =
      VerifyWakePing(ts, SignWakePing(kSecret, ts, kKey), Body(kKey, 1800001000), kSecret, kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(VerifyWakePing, RejectsAWrongSecret) {
  std::string ts = "1800000000";
  auto r = VerifyWakePing(ts, SignWakePing("another-secret-entirely", ts, kKey),
                          Body(kKey, 1800000000), kSecret, kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(VerifyWakePing, RejectsUnsignedAndMalformed) {
  EXPECT_FALSE(VerifyWakePing("1800000000", "", Body(kKey, 1800000000), kSecret, kNow).ok());
  EXPECT_FALSE(
      VerifyWakePing("18e8", std::string(64, 'a'), Body(kKey, 1800000000), kSecret, kNow).ok());
  std::string ts = "1800000000";
  std::string sig = SignWakePing(kSecret, ts, kKey);
  EXPECT_FALSE(VerifyWakePing(ts, sig, "not json", kSecret, kNow).ok());
  EXPECT_FALSE(VerifyWakePing(ts, sig, Body(kKey, 1800000001), kSecret, kNow).ok());  // ts mismatch
}

int Post(int port, const std::string& headers, const std::string& body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  std::string req =
      absl::StrCat("POST /wake HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", headers,
                   "Content-Length: ", body.size(), "\r\n\r\n", body);
  ssize_t unused = write(fd, req.data(), req.size());
  (void)unused;
  char buf[256] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 12) return -1;
  return std::atoi(buf + 9);
}

std::string SignedHeaders(const std::string& ts) {
  return absl::StrCat("X-Pocketmail-Timestamp: ", ts,
                      "\r\nX-Pocketmail-Signature: ", SignWakePing(kSecret, ts, kKey), "\r\n");
}

TEST(WakeListener, SignedPingWakesUnsignedDoesNot) {
  FakeClock clock(kNow);
  std::atomic<int> wakes{0};
  auto l = WakeListener::Start(
      "127.0.0.1:0", kSecret,
      [&](const std::string& key) {
        EXPECT_EQ(key, kKey);
        ++wakes;
      },
      &clock);
  ASSERT_TRUE(l.ok()) << l.status();
  std::string ts = std::to_string(absl::ToUnixSeconds(kNow));
  std::string body = Body(kKey, absl::ToUnixSeconds(kNow));
  EXPECT_EQ(Post((*l)->port(), "", body), 401);
  EXPECT_EQ(wakes.load(), 0);
  EXPECT_EQ(Post((*l)->port(), SignedHeaders(ts), body), 204);
  EXPECT_EQ(wakes.load(), 1);
}

TEST(WakeListener, JudgesFreshnessOnItsClock) {
  FakeClock clock(kNow);
  std::atomic<int> wakes{0};
  auto l = WakeListener::Start(
      "127.0.0.1:0", kSecret, [&](const std::string&) { ++wakes; }, &clock);
  ASSERT_TRUE(l.ok()) << l.status();
  const std::string ts = std::to_string(absl::ToUnixSeconds(kNow));
  const std::string body = Body(kKey, absl::ToUnixSeconds(kNow));
  clock.Advance(kWakeFreshness - absl::Seconds(1));
  EXPECT_EQ(Post((*l)->port(), SignedHeaders(ts), body), 204);
  clock.Advance(absl::Seconds(2));  // now older than the window
  EXPECT_EQ(Post((*l)->port(), SignedHeaders(ts), body), 401);
  EXPECT_EQ(wakes.load(), 1);
}

TEST(WakeListener, RefusesNonLoopbackAndShortSecrets) {
  EXPECT_FALSE(WakeListener::Start("0.0.0.0:0", kSecret, [](const std::string&) {}).ok());
  EXPECT_FALSE(WakeListener::Start("127.0.0.1:0", "short", [](const std::string&) {}).ok());
}

}  // namespace
}  // namespace pocketmail::fetcher
