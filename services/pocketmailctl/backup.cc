#include "services/pocketmailctl/backup.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/config/private_dir.h"

namespace pocketmail::ctl {
namespace {

constexpr const char* kMaddyFiles[] = {"imapsql.db", "credentials.db"};

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) EVP_DigestUpdate(ctx, buf, in.gcount());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += absl::StrFormat("%02x", digest[i]);
  return hex;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

absl::StatusOr<int64_t> QueryInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string err = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open ", db_path, ": ", err));
  }
  sqlite3_stmt* stmt = nullptr;
  int64_t value = 0;
  absl::Status status;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    status = absl::InternalError(absl::StrCat(db_path, ": ", sqlite3_errmsg(db)));
  } else if (sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (!status.ok()) return status;
  return value;
}

}  // namespace

absl::Status SnapshotSqlite(const std::string& source, const std::string& dest) {
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  auto fail = [&](const std::string& what) {
    std::string err =
        absl::StrCat(what, ": ", src ? sqlite3_errmsg(src) : "", dst ? sqlite3_errmsg(dst) : "");
    sqlite3_close(src);
    sqlite3_close(dst);
    return absl::UnavailableError(err);
  };
  if (sqlite3_open_v2(source.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return fail(absl::StrCat("open ", source));
  }
  std::string tmp = dest + ".tmp";
  unlink(tmp.c_str());
  if (sqlite3_open_v2(tmp.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    return fail(absl::StrCat("create ", tmp));
  }
  chmod(tmp.c_str(), 0600);
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
  if (b == nullptr) return fail("backup init");
  int rc;
  // Small steps with pauses let the live service keep writing between them;
  // a write mid-backup restarts it, which the loop absorbs.
  while ((rc = sqlite3_backup_step(b, 256)) == SQLITE_OK || rc == SQLITE_BUSY ||
         rc == SQLITE_LOCKED) {
    if (rc != SQLITE_OK) sqlite3_sleep(20);
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) return fail(absl::StrCat("backup of ", source));
  sqlite3_close(src);
  sqlite3_close(dst);
  if (rename(tmp.c_str(), dest.c_str()) != 0)
    return absl::InternalError(absl::StrCat("rename ", tmp));
  return absl::OkStatus();
}

absl::StatusOr<BackupReport> Backup(const BackupPaths& paths, const std::string& dir) {
  if (absl::Status s = config::EnsurePrivateDir(dir, "backup dir"); !s.ok()) return s;
  BackupReport report;
  std::map<std::string, std::string> sums;
  if (!paths.maddy_dir.empty()) {
    for (const char* name : kMaddyFiles) {
      std::string src = absl::StrCat(paths.maddy_dir, "/", name);
      if (!Exists(src)) return absl::NotFoundError(absl::StrCat("Maddy database missing: ", src));
      if (absl::Status s = SnapshotSqlite(src, absl::StrCat(dir, "/", name)); !s.ok()) return s;
      report.files.push_back(name);
    }
    report.maddy_snapshot_ms = absl::ToUnixMillis(absl::Now());
  }
  // The ledger last: see the header.
  if (absl::Status s = SnapshotSqlite(paths.ledger_db, dir + "/ledger.db"); !s.ok()) return s;
  report.ledger_snapshot_ms = absl::ToUnixMillis(absl::Now());
  report.files.push_back("ledger.db");
  auto seq = QueryInt(dir + "/ledger.db", "SELECT value FROM ledger_meta WHERE name = 'last_seq'");
  report.ledger_last_seq = seq.ok() ? *seq : 0;
  if (report.maddy_snapshot_ms > 0) {
    auto between = QueryInt(dir + "/ledger.db",
                            absl::StrCat("SELECT COUNT(*) FROM messages WHERE delivered_ms >= ",
                                         report.maddy_snapshot_ms - 1000));
    report.delivered_between_snapshots = between.ok() ? *between : 0;
  }
  std::string stamp = absl::StrCat("created_ms=", report.ledger_snapshot_ms,
                                   "\nmaddy_snapshot_ms=", report.maddy_snapshot_ms,
                                   "\nledger_snapshot_ms=", report.ledger_snapshot_ms,
                                   "\nledger_last_seq=", report.ledger_last_seq, "\n");
  for (const std::string& f : report.files) {
    auto sum = Sha256File(absl::StrCat(dir, "/", f));
    if (!sum.ok()) return sum.status();
    absl::StrAppend(&stamp, "sha256.", f, "=", *sum, "\n");
  }
  std::string stamp_path = dir + "/STAMP";
  int fd = open(stamp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, stamp.data(), stamp.size()) != static_cast<ssize_t>(stamp.size()) ||
      fsync(fd) != 0) {
    if (fd >= 0) close(fd);
    return absl::InternalError(absl::StrCat("cannot write ", stamp_path));
  }
  close(fd);
  return report;
}

absl::StatusOr<BackupReport> Restore(const std::string& dir, const BackupPaths& paths,
                                     bool allow_partial) {
  std::ifstream in(dir + "/STAMP");
  if (!in) return absl::NotFoundError(absl::StrCat(dir, "/STAMP missing: not a pocketmail backup"));
  std::map<std::string, std::string> stamp;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (kv.size() == 2) stamp[kv[0]] = kv[1];
  }
  BackupReport report;
  absl::SimpleAtoi(stamp["maddy_snapshot_ms"], &report.maddy_snapshot_ms);
  absl::SimpleAtoi(stamp["ledger_snapshot_ms"], &report.ledger_snapshot_ms);
  absl::SimpleAtoi(stamp["ledger_last_seq"], &report.ledger_last_seq);
  bool has_maddy = stamp.count("sha256.imapsql.db") > 0;
  if (!has_maddy && !allow_partial) {
    return absl::FailedPreconditionError(
        "this backup has no Maddy databases: restoring only the ledger against a newer mailbox "
        "could "
        "re-inject mail that is already there; pass --ledger-only to do it anyway");
  }
  std::vector<std::pair<std::string, std::string>> moves = {{"ledger.db", paths.ledger_db}};
  if (has_maddy) {
    if (paths.maddy_dir.empty())
      return absl::InvalidArgumentError("the backup holds Maddy's databases: give --maddy-dir");
    for (const char* name : kMaddyFiles)
      moves.push_back({name, absl::StrCat(paths.maddy_dir, "/", name)});
  }
  for (const auto& [name, target] : moves) {  // verify everything before touching anything
    auto sum = Sha256File(absl::StrCat(dir, "/", name));
    if (!sum.ok()) return sum.status();
    if (*sum != stamp[absl::StrCat("sha256.", name)]) {
      return absl::DataLossError(
          absl::StrCat(name, " does not match the STAMP checksum; refusing to restore"));
    }
  }
  for (const auto& [name, target] : moves) {
    for (const char* suffix : {"-wal", "-shm"}) unlink((target + suffix).c_str());
    if (absl::Status s = SnapshotSqlite(absl::StrCat(dir, "/", name), target); !s.ok()) return s;
    report.files.push_back(target);
  }
  return report;
}

}  // namespace pocketmail::ctl
